"""Command URL, customers (§8.2): external contacts, customer groups, customer tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wecom.events.base import Event
from wecom.events.base import int_of
from wecom.events.base import leaf_items
from wecom.events.base import registered
from wecom.events.base import required
from wecom.events.base import text_of


@registered("change_external_contact")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalContactChange(Event):
    """change_external_contact; which fields are set depends on change_type."""

    user_id: str | None = None
    external_user_id: str | None = None
    state: str | None = None
    welcome_code: str | None = None
    source: str | None = None
    fail_reason: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common,
            user_id=text_of(raw, "UserID"),
            external_user_id=text_of(raw, "ExternalUserID"),
            state=text_of(raw, "State"),
            welcome_code=text_of(raw, "WelcomeCode"),
            source=text_of(raw, "Source"),
            fail_reason=text_of(raw, "FailReason"),
        )


@registered("change_external_chat")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalChatChange(Event):
    """change_external_chat: create, update or dismiss of a customer group."""

    chat_id: str
    update_detail: str | None = None
    join_scene: int | None = None
    quit_scene: int | None = None
    mem_change_cnt: int | None = None
    mem_change_list: tuple[str, ...] = ()
    last_mem_ver: str | None = None
    cur_mem_ver: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        members = raw.get("MemChangeList")
        if isinstance(members, dict):
            members = members.get("Item")
        return cls(
            **common,
            chat_id=required(raw, "ChatId"),
            update_detail=text_of(raw, "UpdateDetail"),
            join_scene=int_of(raw, "JoinScene"),
            quit_scene=int_of(raw, "QuitScene"),
            mem_change_cnt=int_of(raw, "MemChangeCnt"),
            mem_change_list=leaf_items(members),
            last_mem_ver=text_of(raw, "LastMemVer"),
            cur_mem_ver=text_of(raw, "CurMemVer"),
        )


@registered("change_external_tag")
@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalTagChange(Event):
    """change_external_tag; ``id`` is empty on a shuffle of all groups."""

    id: str | None = None
    tag_type: str | None = None
    strategy_id: int | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common,
            id=text_of(raw, "Id"),
            tag_type=text_of(raw, "TagType"),
            strategy_id=int_of(raw, "StrategyId"),
        )
