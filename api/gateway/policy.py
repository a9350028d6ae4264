"""Who may call which WeCom path, and what each call counts against (protocol §10).

Allowlist patterns: segments of ``[A-Za-z0-9_]`` and ``*``, separated by ``/``; ``*``
matches any run of characters, ``/`` included (``externalcontact/*`` covers
``externalcontact/batch/get_by_user``). An empty list (the default) allows nothing. The
families the gateway never calls (``service/*``, ``license/*``, ``gettoken``) stay
refused whatever a pattern says (``wecom.gateway.validate_path`` runs first).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from wecom.gateway import DENIED_PATHS
from wecom.gateway import DENIED_PREFIXES

_PATTERN = re.compile(r"[A-Za-z0-9_*]{1,64}(/[A-Za-z0-9_*]{1,64}){0,7}")
MAX_PATTERNS = 100

# The API whose recipients count per member (WeCom: ≤ 30 messages a minute to one member
# from one app) and the JS-SDK ticket APIs (400 an hour per corp, 100 per app).
MESSAGE_SEND = "message/send"
JSAPI_CORP_TICKET = "get_jsapi_ticket"
JSAPI_AGENT_TICKET = "ticket/get"


def pattern_problem(pattern: object) -> str | None:
    """Return why ``pattern`` is not a valid allowlist entry, or None."""
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern):
        return f"{pattern!r}: segments of letters, digits, '_' and '*' separated by '/'"
    head = pattern.split("*", 1)[0]
    if pattern in DENIED_PATHS or head.startswith(DENIED_PREFIXES):
        return f"{pattern!r}: suite, provider and token APIs are never reachable"
    return None


def patterns_problems(patterns: object) -> list[str]:
    """Return every problem of an allowlist (a JSON list of patterns)."""
    if not isinstance(patterns, list):
        return ['a list of path patterns, e.g. ["user/*", "message/send"]']
    if len(patterns) > MAX_PATTERNS:
        return [f"at most {MAX_PATTERNS} patterns"]
    return [p for p in (pattern_problem(x) for x in patterns) if p]


def allowed(patterns: Iterable[str] | None, path: str) -> bool:
    """Return whether a validated ``path`` matches one of the client's patterns."""
    return any(fnmatch.fnmatchcase(path, p) for p in patterns or () if isinstance(p, str))


# --- quotas -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One counter a call must fit under: window "m" (minute) or "h" (hour)."""

    window: str
    field: str
    limit: int
    scope: str  # what the 429 names: corp_api_minute, member_minute, …


def outbound_address() -> str:
    return settings.WECOM_GATEWAY_OUTBOUND_ADDRESS or "default"


def checks_for(*, suite_id: str, corpid: str, path: str, body: bytes | None) -> list[Check]:
    """Return the counters one call of ``path`` for the tenant counts against.

    Ids only in the fields (they become Redis hash fields, never a secret).
    """
    s = settings
    address = outbound_address()
    found = [
        Check("m", f"c|{corpid}|{path}", s.WECOM_QUOTA_CORP_API_PER_MINUTE, "corp_api_minute"),
        Check("h", f"c|{corpid}|{path}", s.WECOM_QUOTA_CORP_API_PER_HOUR, "corp_api_hour"),
        Check("m", f"a|{address}|{path}", s.WECOM_QUOTA_ADDRESS_API_PER_MINUTE, "address_minute"),
        Check("h", f"a|{address}|{path}", s.WECOM_QUOTA_ADDRESS_API_PER_HOUR, "address_hour"),
    ]
    if path == JSAPI_CORP_TICKET:
        limit = s.WECOM_QUOTA_JSAPI_TICKET_CORP_PER_HOUR
        found.append(Check("h", f"j|c|{corpid}", limit, "jsapi_ticket_corp_hour"))
    elif path == JSAPI_AGENT_TICKET:
        limit = s.WECOM_QUOTA_JSAPI_TICKET_APP_PER_HOUR
        found.append(Check("h", f"j|a|{suite_id}|{corpid}", limit, "jsapi_ticket_app_hour"))
    elif path == MESSAGE_SEND:
        limit = s.WECOM_QUOTA_MESSAGE_PER_MEMBER_PER_MINUTE
        found += [
            Check("m", f"u|{suite_id}|{corpid}|{member}", limit, "member_minute")
            for member in message_members(body)
        ]
    return [c for c in found if c.limit > 0]


def message_members(body: bytes | None) -> list[str]:
    """Return the distinct members an app message names in ``touser`` ("a|b", not @all).

    Departments and tags (toparty, totag, @all) cannot be counted per member without
    asking WeCom who is in them; only named members count.
    """
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return []
    touser = data.get("touser") if isinstance(data, dict) else None
    if not isinstance(touser, str):
        return []
    return sorted({m for m in touser.split("|") if m and m != "@all" and len(m) <= 64})
