"""What every callback event has, the field readers, and the registry of event types.

Events are frozen, slotted dataclasses. Each keeps ``raw``, the whole payload as a
dict, so fields we do not model are never lost. An event type registers itself with
``@registered(info_type, …)``; its ``build`` (a classmethod beside its fields) turns a
payload into the event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TypeVar

from wecom.safexml import MalformedMessage

_INT_RE = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every callback has, whichever URL it came from.

    ``info_type`` is InfoType (command/system URL) or Event (data URL).
    ``auth_corp_id`` is AuthCorpId, or ToUserName for data-URL events.
    ``timestamp`` is TimeStamp, or CreateTime for data-URL events.
    """

    info_type: str
    change_type: str | None = None
    suite_id: str | None = None
    auth_corp_id: str | None = None
    service_corp_id: str | None = None
    timestamp: int | None = None
    # Excluded from hashing: a dict is unhashable, and the typed fields plus the
    # timestamp already identify the event.
    raw: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        """Return the event of payload ``raw`` (``common``: its header_fields)."""
        return cls(**common)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """A callback type we do not model; ``raw`` holds every field, nested ones too."""


Builder = Callable[[dict[str, Any], dict[str, Any]], Event]
# (info_type, change_type) -> builder; change_type None matches any change type.
# Data-URL events share the table: 代开发 corp-side change_contact arrives as
# MsgType=event/Event=change_contact with the same fields (§7.1).
BUILDERS: dict[tuple[str, str | None], Builder] = {}

E = TypeVar("E", bound=type[Event])


def registered(*keys: str | tuple[str, str]) -> Callable[[E], E]:
    """Register the decorated event type for each info_type (or (info_type, change_type))."""

    def register(cls: E) -> E:
        for key in keys:
            full = (key, None) if isinstance(key, str) else key
            if full in BUILDERS:
                raise ValueError(f"{full} is registered twice")
            BUILDERS[full] = cls.build
        return cls

    return register


def header_fields(raw: dict[str, Any], info_type: str) -> dict[str, Any]:
    """Return the Event base fields of a payload."""
    timestamp = int_of(raw, "TimeStamp")
    if timestamp is None:
        timestamp = int_of(raw, "CreateTime")
    auth_corp_id = text_of(raw, "AuthCorpId")
    if auth_corp_id is None:
        # 应用版本付费 events (open_order, change_editon …) name the corp PaidCorpId.
        auth_corp_id = text_of(raw, "PaidCorpId")
    if auth_corp_id is None and "MsgType" in raw:
        auth_corp_id = text_of(raw, "ToUserName")
    return {
        "info_type": info_type,
        "change_type": text_of(raw, "ChangeType"),
        "suite_id": text_of(raw, "SuiteId"),
        "auth_corp_id": auth_corp_id,
        "service_corp_id": text_of(raw, "ServiceCorpId"),
        "timestamp": timestamp,
        "raw": raw,
    }


def dispatch_name(raw: dict[str, Any]) -> str:
    """Return the dispatch name: InfoType, else Event for MsgType=event, else MsgType."""
    info_type = text_of(raw, "InfoType")
    if info_type:
        return info_type
    msg_type = text_of(raw, "MsgType")
    if msg_type == "event":
        event = text_of(raw, "Event")
        if event:
            return event
    if msg_type:
        # A plain message (text, image…) or an event without a name: kept as
        # UnknownEvent under its MsgType.
        return msg_type
    raise MalformedMessage("payload has neither InfoType nor MsgType")


# --- field readers ----------------------------------------------------------------------------


def text_of(raw: dict[str, Any], key: str) -> str | None:
    """Return the text of a leaf field, or None when the field is absent."""
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedMessage(f"{key} must be a single text field")


def int_of(raw: dict[str, Any], key: str) -> int | None:
    """Return a field as int, or None when it is absent or empty."""
    value = text_of(raw, key)
    if not value:
        return None
    if not _INT_RE.fullmatch(value):
        raise MalformedMessage(f"{key} must be an integer")
    return int(value)


def _to_int(value: str) -> int:
    if not _INT_RE.fullmatch(value):
        raise MalformedMessage("list item must be an integer")
    return int(value)


_T = TypeVar("_T")


def _csv(raw: dict[str, Any], key: str, convert: Callable[[str], _T]) -> tuple[_T, ...] | None:
    """Return a comma-separated field as a tuple, or None when it is absent.

    Present but empty gives (), which is a real change (e.g. all leaders
    removed), unlike absent.
    """
    value = text_of(raw, key)
    if value is None:
        return None
    return tuple(convert(item.strip()) for item in value.split(",") if item.strip())


def str_csv(raw: dict[str, Any], key: str) -> tuple[str, ...] | None:
    return _csv(raw, key, str)


def int_csv(raw: dict[str, Any], key: str) -> tuple[int, ...] | None:
    return _csv(raw, key, _to_int)


def items_of(value: Any) -> list[dict[str, Any]]:
    """Return a possibly repeated or empty nested field as a list of dicts."""
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, dict) for v in values):
        raise MalformedMessage("expected nested elements")
    return values


def leaf_items(value: Any) -> tuple[str, ...]:
    """Return the text of each repeated leaf (e.g. MemChangeList/Item)."""
    if value is None or value == "":
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise MalformedMessage("expected text items")
    return tuple(values)


def required(raw: dict[str, Any], key: str) -> str:
    value = text_of(raw, key)
    if not value:
        raise MalformedMessage(f"{key} is required")
    return value


def required_int(raw: dict[str, Any], key: str) -> int:
    value = int_of(raw, key)
    if value is None:
        raise MalformedMessage(f"{key} is required")
    return value
