"""Data URL (§8.4, MsgType=event): unlicensed members, admin changes, the app's activity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wecom.events.base import Event
from wecom.events.base import int_of
from wecom.events.base import registered
from wecom.events.base import text_of


@dataclass(frozen=True, slots=True, kw_only=True)
class DataEvent(Event):
    """Base of data-URL events; ``auth_corp_id`` is ToUserName."""

    from_user_name: str | None = None
    agent_id: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, **_data_fields(raw))


def _data_fields(raw: dict[str, Any]) -> dict[str, Any]:
    return {"from_user_name": text_of(raw, "FromUserName"), "agent_id": text_of(raw, "AgentID")}


@registered("unlicensed_notify")
@dataclass(frozen=True, slots=True, kw_only=True)
class UnlicensedNotify(DataEvent):
    """An unlicensed member in the visible range opened the app (FromUserName)."""


@registered("change_app_admin")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeAppAdmin(DataEvent):
    """The app's admin list changed (FromUserName=sys): read it again."""


# Data-URL events about the app's own activity (path/90240, 90376; FromUserName=sys). The
# alerts carry EffectTime, when the restriction starts: low activity limits the customer
# data the app gets (from 2025-12-18); long disuse closes the app until an admin reopens it.
ACTIVITY_EVENTS = frozenset(
    {
        "low_active_alert",
        "low_active",
        "active_restored",
        "inactive_alert",
        "close_inactive_agent",
        "reopen_inactive_agent",
    }
)


@registered(*sorted(ACTIVITY_EVENTS))
@dataclass(frozen=True, slots=True, kw_only=True)
class AppActivity(DataEvent):
    """One of ACTIVITY_EVENTS (``info_type`` tells which); ``effect_time`` on the alerts."""

    effect_time: int | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, **_data_fields(raw), effect_time=int_of(raw, "EffectTime"))
