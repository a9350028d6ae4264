"""Command URL, contacts (§8.2): change_contact; change_type tells the kind apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wecom.events.base import Event
from wecom.events.base import int_csv
from wecom.events.base import int_of
from wecom.events.base import items_of
from wecom.events.base import registered
from wecom.events.base import required
from wecom.events.base import required_int
from wecom.events.base import str_csv
from wecom.events.base import text_of


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactEvent(Event):
    """Base of every change_contact event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtAttr:
    """One custom member attribute: type 0 is text, type 1 is a web link."""

    name: str | None
    type: int | None
    text: str | None = None
    web_title: str | None = None
    web_url: str | None = None


def _ext_attrs(raw: dict[str, Any]) -> tuple[ExtAttr, ...] | None:
    if "ExtAttr" not in raw:
        return None
    ext = raw["ExtAttr"]
    items = items_of(ext.get("Item")) if isinstance(ext, dict) else items_of(ext)
    result = []
    for item in items:
        text = item.get("Text")
        web = item.get("Web")
        result.append(
            ExtAttr(
                name=text_of(item, "Name"),
                type=int_of(item, "Type"),
                text=text_of(text, "Value") if isinstance(text, dict) else None,
                web_title=text_of(web, "Title") if isinstance(web, dict) else None,
                web_url=text_of(web, "Url") if isinstance(web, dict) else None,
            )
        )
    return tuple(result)


@dataclass(frozen=True, slots=True, kw_only=True)
class _UserEvent(ContactEvent):
    user_id: str
    open_user_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _UserAttributes(_UserEvent):
    """Member attributes; None means "not in this callback", never "cleared".

    A cleared text field arrives present and empty ("") and a cleared list as
    (); only absent fields are None. Sensitive fields (name, mobile…) reach only
    contact-sync and authorized 代开发 apps, so they are often absent.
    """

    name: str | None = None
    department: tuple[int, ...] | None = None
    main_department: int | None = None
    is_leader_in_dept: tuple[int, ...] | None = None
    direct_leader: tuple[str, ...] | None = None
    mobile: str | None = None
    position: str | None = None
    gender: int | None = None
    email: str | None = None
    biz_mail: str | None = None
    status: int | None = None
    avatar: str | None = None
    alias: str | None = None
    telephone: str | None = None
    ext_attr: tuple[ExtAttr, ...] | None = None

    @staticmethod
    def attributes(raw: dict[str, Any]) -> dict[str, Any]:
        return {
            "user_id": required(raw, "UserID"),
            "open_user_id": text_of(raw, "OpenUserID"),
            "name": text_of(raw, "Name"),
            "department": int_csv(raw, "Department"),
            "main_department": int_of(raw, "MainDepartment"),
            "is_leader_in_dept": int_csv(raw, "IsLeaderInDept"),
            "direct_leader": str_csv(raw, "DirectLeader"),
            "mobile": text_of(raw, "Mobile"),
            "position": text_of(raw, "Position"),
            "gender": int_of(raw, "Gender"),
            "email": text_of(raw, "Email"),
            "biz_mail": text_of(raw, "BizMail"),
            "status": int_of(raw, "Status"),
            "avatar": text_of(raw, "Avatar"),
            "alias": text_of(raw, "Alias"),
            "telephone": text_of(raw, "Telephone"),
            "ext_attr": _ext_attrs(raw),
        }


@registered(("change_contact", "create_user"))
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateUser(_UserAttributes):
    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, **cls.attributes(raw))


@registered(("change_contact", "update_user"))
@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateUser(_UserAttributes):
    """Only changed attributes are present; apply them and leave the rest alone.

    ``new_user_id`` is set on a rename: re-key the member from ``user_id``.
    """

    new_user_id: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, **cls.attributes(raw), new_user_id=text_of(raw, "NewUserID"))


@registered(("change_contact", "delete_user"))
@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteUser(_UserEvent):
    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common, user_id=required(raw, "UserID"), open_user_id=text_of(raw, "OpenUserID")
        )


@registered(("change_contact", "create_party"))
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateParty(ContactEvent):
    id: int
    name: str | None = None
    parent_id: int | None = None
    order: int | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common,
            id=required_int(raw, "Id"),
            name=text_of(raw, "Name"),
            parent_id=int_of(raw, "ParentId"),
            order=int_of(raw, "Order"),
        )


@registered(("change_contact", "update_party"))
@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateParty(ContactEvent):
    """Only changed fields are present: None means unchanged."""

    id: int
    name: str | None = None
    parent_id: int | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common,
            id=required_int(raw, "Id"),
            name=text_of(raw, "Name"),
            parent_id=int_of(raw, "ParentId"),
        )


@registered(("change_contact", "delete_party"))
@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteParty(ContactEvent):
    id: int

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, id=required_int(raw, "Id"))


@registered(("change_contact", "update_tag"))
@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateTag(ContactEvent):
    """Tag membership delta; any list may be absent (None) or empty."""

    tag_id: int
    add_user_items: tuple[str, ...] | None = None
    del_user_items: tuple[str, ...] | None = None
    add_party_items: tuple[int, ...] | None = None
    del_party_items: tuple[int, ...] | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common,
            tag_id=required_int(raw, "TagId"),
            add_user_items=str_csv(raw, "AddUserItems"),
            del_user_items=str_csv(raw, "DelUserItems"),
            add_party_items=int_csv(raw, "AddPartyItems"),
            del_party_items=int_csv(raw, "DelPartyItems"),
        )
