"""Command URL, lifecycle (§8.1): tickets, install, change, cancel, reset, edition, sharing."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from wecom.events.base import Event
from wecom.events.base import registered
from wecom.events.base import required
from wecom.events.base import text_of
from wecom.safexml import RawValue


@registered("suite_ticket")
@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteTicket(Event):
    suite_ticket: str

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, suite_ticket=required(raw, "SuiteTicket"))


@registered("create_auth")
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateAuth(Event):
    auth_code: str
    state: str | None = None
    # ExtraInfo may be empty, text or nested (SKIT: AuthOpenKfIdList/OpenKfId[]).
    extra_info: RawValue | None = field(default=None, hash=False)

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common,
            auth_code=required(raw, "AuthCode"),
            state=text_of(raw, "State"),
            extra_info=raw.get("ExtraInfo"),
        )


@registered("change_auth")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeAuth(Event):
    state: str | None = None
    extra_info: RawValue | None = field(default=None, hash=False)

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, state=text_of(raw, "State"), extra_info=raw.get("ExtraInfo"))


@registered("cancel_auth")
@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAuth(Event):
    pass


@registered("reset_permanent_code")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResetPermanentCode(Event):
    auth_code: str

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(**common, auth_code=required(raw, "AuthCode"))


@registered("change_editon")
@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeEdition(Event):
    """change_editon (sic, §8.1): the corp's paid edition changed; re-read edition_info.

    Like every 应用版本付费 event it names the corp in PaidCorpId, read into
    ``auth_corp_id``.
    """


@registered("share_agent_change", "share_chain_change")
@dataclass(frozen=True, slots=True, kw_only=True)
class ShareAgentChange(Event):
    """share_agent_change / share_chain_change (``info_type`` tells which).

    On the command URL it carries the upstream CorpId and AgentId; the data-URL
    form (FromUserName=sys) carries only AgentID, so the rest stay None.
    """

    app_id: str | None = None
    corp_id: str | None = None
    agent_id: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        agent_id = text_of(raw, "AgentId")
        return cls(
            **common,
            app_id=text_of(raw, "AppId"),
            corp_id=text_of(raw, "CorpId"),
            agent_id=agent_id if agent_id is not None else text_of(raw, "AgentID"),
        )
