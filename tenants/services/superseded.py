"""Why an event changed nothing, told on the authorization's own history."""

from __future__ import annotations

from tenants import lifecycle
from tenants.lifecycle import EventSuperseded
from tenants.lifecycle import LifecycleEvent
from tenants.models import Authorization
from tenants.models import AuthorizationHistory


def supersede(
    authorization: Authorization, event: LifecycleEvent, *, newer: str, tie: str
) -> EventSuperseded:
    """Record on the history why ``event`` changed nothing; return the explanation.

    ``newer`` explains an event older than the stored one, ``tie`` one in the same second
    that WeCom's answer decided against.
    """
    older = lifecycle.verdict(authorization, event) == lifecycle.SUPERSEDE
    superseded = EventSuperseded(
        "older" if older else "tie",
        lifecycle.superseded_message(authorization, event, newer if older else tie),
    )
    record_superseded(authorization, event, str(superseded))
    return superseded


def record_superseded(authorization: Authorization, event: LifecycleEvent, message: str) -> None:
    """Explain, on the authorization's own history, an event that changed nothing."""
    AuthorizationHistory.objects.create(
        authorization=authorization,
        action="event_superseded",
        from_status=authorization.status,
        to_status=authorization.status,
        actor="callback" if event.wecom_clock else "system",
        detail={"event": event.type, "timestamp": event.timestamp, "reason": message[:300]},
    )
