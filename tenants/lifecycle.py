"""Event-time order for authorizations, and what changed between two reads of one.

WeCom delivers lifecycle callbacks out of order: ``create_auth`` rides the priority
lane, retries and ops replays come late, and every one carries a TimeStamp of one
second's resolution. So each authorization remembers the TimeStamp of the newest
lifecycle event applied to it (``event_timestamp``, ``event_type``), and an event
is judged against it before it may change anything:

- **newer** than what is stored: applied;
- **older**: superseded. It changes nothing; its inbox row says why. A
  ``cancel_auth`` older than the current install never cancels it, a
  ``create_auth`` or ``reset_permanent_code`` older than a cancel never brings the
  authorization back;
- **the same second** (the tie rule): WeCom decides. The permanent code the tie is
  about is checked with ``get_auth_info``: if WeCom still accepts it, the install
  (or reset) that granted it is the later event; if WeCom refuses it (40084, 48004),
  the cancel is. A ``cancel_auth`` repeated in the second of the stored cancel is a
  duplicate.

An install from the provider's site (the redirect) has no WeCom TimeStamp: it is
placed at our clock. Because our clock and WeCom's are not one clock, an event at or
before a time of the other clock is a tie too, decided the same way.

``change_auth`` and the other re-read or state events (``change_editon``, the
activity events) are ordered on their own clocks and never move the lifecycle clock:
a re-read always reads the present, so the only thing an old one could do wrong is
report a change that belongs to an install since replaced. They are superseded when
older than the newest lifecycle event or than the newest event of their own kind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tenants.models import Authorization
from tenants.wecom import suite_api
from wecom.errors import WeComCorpGone

APPLY = "apply"
SUPERSEDE = "supersede"
DUPLICATE = "duplicate"
TIE = "tie"

# Lifecycle events that grant a permanent code (the others take it away).
GRANTS = frozenset({"create_auth", "reset_permanent_code", "redirect"})
# Stored event types timed by our clock, not WeCom's: an install redirect, and rows
# placed on the clock by the migration that introduced it.
OUR_CLOCK = frozenset({"redirect", "migrated"})


class EventNotApplied(Exception):
    """A callback handler decided to change nothing; the inbox row gets ``status``.

    ``reason`` is a short code (a metric label); the message explains the decision
    for the admin and never carries a secret.
    """

    status = "ignored"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class EventSuperseded(EventNotApplied):
    """The event is older than what the authorization already reflects."""

    status = "superseded"


class EventIgnored(EventNotApplied):
    """The event has nothing to act on (no authorization yet, or not active)."""

    status = "ignored"


@dataclass(frozen=True)
class LifecycleEvent:
    """A lifecycle event as ordering sees it: its type and its time."""

    type: str  # create_auth | cancel_auth | reset_permanent_code | redirect
    timestamp: int
    # False for the install redirect, timed by our clock rather than WeCom's.
    wecom_clock: bool = True

    @classmethod
    def of_callback(cls, info_type: str, timestamp: int | None) -> LifecycleEvent:
        # A callback without a TimeStamp is malformed; placing it at our clock keeps
        # it from winning over anything WeCom timed.
        if timestamp is None:
            return cls(info_type, int(time.time()), wecom_clock=False)
        return cls(info_type, int(timestamp))

    @classmethod
    def redirect(cls) -> LifecycleEvent:
        return cls("redirect", int(time.time()), wecom_clock=False)

    @property
    def grants_code(self) -> bool:
        return self.type in GRANTS

    def describe(self) -> str:
        return f"{self.type} of {self.timestamp}"


def snapshot(authorization: Authorization | None) -> tuple | None:
    """Return what a decision was based on; compared again under the row lock."""
    if authorization is None:
        return None
    return (
        authorization.status,
        authorization.event_timestamp,
        authorization.event_type,
        authorization.permanent_code_sealed,
    )


def verdict(authorization: Authorization | None, event: LifecycleEvent) -> str:
    """Return APPLY, SUPERSEDE, DUPLICATE or TIE for ``event`` against the stored clock."""
    if authorization is None or authorization.event_timestamp is None:
        return APPLY
    stored = authorization.event_timestamp
    if event.timestamp > stored:
        return APPLY
    if event.timestamp < stored and event.wecom_clock and authorization.event_type not in OUR_CLOCK:
        return SUPERSEDE
    cancelled = authorization.status == Authorization.Status.CANCELLED
    if event.timestamp == stored and not event.grants_code and cancelled:
        return DUPLICATE
    return TIE


def resolve_tie(
    authorization: Authorization | None, event: LifecycleEvent, *, granted_code: str = ""
) -> str:
    """Return APPLY or SUPERSEDE for a TIE by asking WeCom (see the module docstring).

    ``granted_code``: the permanent code the event brought (create_auth, reset,
    redirect). For a cancel, the stored code is the one in question. Transient WeCom
    errors propagate: the decision is retried later.
    """
    if authorization is None:  # a tie needs a stored event
        return APPLY
    if event.grants_code:
        alive = code_alive(authorization, granted_code)
        return APPLY if alive else SUPERSEDE
    stored_code = authorization.permanent_code if authorization.permanent_code_sealed else ""
    return SUPERSEDE if code_alive(authorization, stored_code) else APPLY


def code_alive(authorization: Authorization, permanent_code: str) -> bool:
    """Return True if WeCom accepts ``permanent_code`` for the authorization right now."""
    if not permanent_code:
        return False
    try:
        suite_api(authorization.suite).get_auth_info(
            auth_corpid=authorization.corp.corpid, permanent_code=permanent_code
        )
    except WeComCorpGone:  # 40084 wrong or cancelled code, 48004 no authorization …
        return False
    return True


def superseded_message(authorization: Authorization, event: LifecycleEvent, why: str) -> str:
    stored = f"{authorization.event_type or 'an event'} of {authorization.event_timestamp}"
    state = f"authorization is {authorization.status} since {stored}"
    return f"{event.describe()} not applied: {why} ({state})"


def lifecycle_clock(authorization: Authorization) -> int | None:
    """Return the stored lifecycle TimeStamp if WeCom timed it (None for our clock)."""
    if authorization.event_type in OUR_CLOCK:
        return None
    return authorization.event_timestamp


def later_than(authorization: Authorization, timestamp: int | None, *clocks: str) -> int | None:
    """Return the newest of the named timestamp fields if it is after ``timestamp``.

    ``event_timestamp`` counts only when WeCom timed it (see lifecycle_clock).
    """
    values = (
        lifecycle_clock(authorization) if c == "event_timestamp" else getattr(authorization, c)
        for c in clocks
    )
    newest = max((v for v in values if v is not None), default=None)
    if newest is not None and timestamp is not None and timestamp < newest:
        return newest
    return None


# --- what changed ----------------------------------------------------------------------------

# Agent fields worth telling products about (logos and names of fields WeCom may add
# are left out of the diff, not out of the stored auth_info).
AGENT_FIELDS = ("name", "auth_mode", "is_customized_app", "auth_from_thirdapp", "shared_from")
PRIVILEGE_LISTS = (
    "allow_party",
    "allow_user",
    "allow_tag",
    "extra_party",
    "extra_user",
    "extra_tag",
)


def state_of(authorization: Authorization) -> dict[str, Any]:
    """Return the parts of an authorization a change_auth diff compares."""
    return {
        "agents": list((authorization.auth_info or {}).get("agent") or []),
        "permissions": list(authorization.permissions or []),
        "edition": dict(authorization.edition or {}),
    }


def _list_change(before, after) -> dict[str, list]:
    before, after = list(before or []), list(after or [])
    added = [x for x in after if x not in before]
    removed = [x for x in before if x not in after]
    return {"added": added, "removed": removed} if added or removed else {}


def change_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return what differs between two ``state_of`` values; {} when nothing does.

    ``agents``: agentids added or removed, and changed fields of the others;
    ``privileges``: per agentid, ``level`` before/after and what each visible-range
    list gained or lost; ``permissions``: app permissions added or removed;
    ``edition``: before and after, when the edition was read and differs.
    """
    diff: dict[str, Any] = {}
    old = {str(a.get("agentid")): a for a in before.get("agents") or []}
    new = {str(a.get("agentid")): a for a in after.get("agents") or []}
    agents: dict[str, Any] = {}
    if added := [k for k in new if k not in old]:
        agents["added"] = added
    if removed := [k for k in old if k not in new]:
        agents["removed"] = removed
    changed: dict[str, Any] = {}
    privileges: dict[str, Any] = {}
    for agentid in (k for k in new if k in old):
        fields = {
            name: {"before": old[agentid].get(name), "after": new[agentid].get(name)}
            for name in AGENT_FIELDS
            if old[agentid].get(name) != new[agentid].get(name)
        }
        if fields:
            changed[agentid] = fields
        was = old[agentid].get("privilege") or {}
        now = new[agentid].get("privilege") or {}
        privilege: dict[str, Any] = {}
        if was.get("level") != now.get("level"):
            privilege["level"] = {"before": was.get("level"), "after": now.get("level")}
        for name in PRIVILEGE_LISTS:
            if change := _list_change(was.get(name), now.get(name)):
                privilege[name] = change
        if privilege:
            privileges[agentid] = privilege
    if changed:
        agents["changed"] = changed
    if agents:
        diff["agents"] = agents
    if privileges:
        diff["privileges"] = privileges
    if permissions := _list_change(before.get("permissions"), after.get("permissions")):
        diff["permissions"] = permissions
    if before.get("edition") != after.get("edition"):
        diff["edition"] = {"before": before.get("edition"), "after": after.get("edition")}
    return diff


def edition_of(info: dict[str, Any], agentid: int | None) -> dict[str, Any]:
    """Return this app's entry of ``edition_info.agent`` ({} when WeCom sends none).

    Only v1 get_auth_info / get_permanent_code carry edition_info, and only for apps
    with 应用版本付费 (protocol §5.2, §5.3).
    """
    agents = (info.get("edition_info") or {}).get("agent") or []
    if isinstance(agents, dict):
        agents = [agents]
    for entry in agents:
        if agentid is None or entry.get("agentid") == agentid:
            return dict(entry)
    return dict(agents[0]) if agents else {}
