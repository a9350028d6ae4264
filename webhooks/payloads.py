"""What a webhook body says, and what the delivery log may show of it.

Body (Standard Webhooks shape, ``type`` / ``timestamp`` / ``data``)::

    {"id": "evt_1234", "type": "external_contact.add_external_contact",
     "timestamp": "2026-12-04T21:00:00.123456+00:00",   # published on the feed
     "cursor": "1234",                                  # ?after= on /api/v1/events/
     "occurred_at": "2026-12-04T20:59:59+00:00",        # WeCom's TimeStamp, when known
     "suite_id": "ww…", "corpid": "wx…",
     "data": {…}}

``data`` is the feed entry's data; for an external-contact add it also carries the
short-lived ``WelcomeCode`` (20 s, usable once), which the polled feed never stores. The
log keeps bodies with every such code redacted.
"""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

# Codes a product may receive by push only (valid seconds, usable once).
SHORT_LIVED_CODES = frozenset({"WelcomeCode"})
REDACTED = "[redacted]"
EXCERPT_CHARS = 2000


def msg_id_for(cursor: int) -> str:
    """Return the webhook-id of a feed event: every attempt and replay share it."""
    return f"evt_{cursor}"


def body_for(entry, *, codes: dict | None = None) -> str:
    """Return the JSON body of feed ``entry`` (a FeedEvent) with ``codes`` merged in."""
    data = dict(entry.data or {})
    for key, value in (codes or {}).items():
        if key in SHORT_LIVED_CODES and value:
            data[key] = value
    occurred = _occurred_at(data)
    payload = {
        "id": msg_id_for(entry.pk),
        "type": entry.type,
        "timestamp": entry.created_at.isoformat(),
        "cursor": str(entry.pk),
        "occurred_at": occurred,
        "suite_id": entry.suite.suite_id if entry.suite_id else None,
        "corpid": entry.corp.corpid if entry.corp_id else None,
        "data": data,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _occurred_at(data: dict) -> str | None:
    for key in ("TimeStamp", "CreateTime"):
        value = data.get(key)
        if value is not None and str(value).isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC).isoformat()
    return None


def redacted(body: str) -> str:
    """Return ``body`` with every short-lived code replaced, truncated for the log."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body[:EXCERPT_CHARS]
    data = payload.get("data")
    if isinstance(data, dict):
        for key in SHORT_LIVED_CODES & set(data):
            data[key] = REDACTED
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    return text[:EXCERPT_CHARS]


def excerpt(raw: bytes) -> str:
    """Return the start of a receiver's answer as text, for the log."""
    return raw[:EXCERPT_CHARS].decode("utf-8", errors="replace")
