"""The dashboard's WeCom gateway panel: quota use per corp now, and the breakers open now.

Both come from Redis (api.gateway.quotas), where every web process counts its calls: the
current minute's and hour's windows, and the breakers WeCom's 45009/45033 opened. Each
corp links to its gateway calls in the audit log.
"""

from __future__ import annotations

import logging

import redis

from api.gateway import quotas
from ops import links

logger = logging.getLogger(__name__)

WARN_SHARE = 0.5
BAD_SHARE = 0.9


def _level(share: float) -> str:
    if share >= BAD_SHARE:
        return "bad"
    return "warn" if share >= WARN_SHARE else "ok"


def _calls(corpid: str) -> str:
    return links.changelist("api_auditlog", action__exact="wecom.call", q=corpid)


def section(*, limit: int = 20) -> dict:
    """Return the panel's context; ``available`` is False when Redis cannot be read."""
    try:
        usage = quotas.corp_usage(limit=limit)
        breakers = quotas.breakers_open()
    except redis.RedisError as exc:
        logger.warning("gateway panel: quota store unavailable (%s)", type(exc).__name__)
        return {"available": False, "corps": [], "breakers": []}
    corps = [
        {
            "corpid": row.corpid,
            "href": _calls(row.corpid),
            "minute": f"{row.minute_path or '-'}: {row.minute_used} / {row.minute_limit or '∞'}",
            "hour": f"{row.hour_path or '-'}: {row.hour_used} / {row.hour_limit or '∞'}",
            "share": f"{row.share:.0%}",
            "level": _level(row.share),
        }
        for row in usage
    ]
    open_now = [
        {
            "corpid": b.corpid,
            "path": b.path,
            "until": b.until,
            "seconds_left": b.seconds_left,
            "href": _calls(b.corpid),
        }
        for b in breakers
    ]
    return {"available": True, "corps": corps, "breakers": open_now}
