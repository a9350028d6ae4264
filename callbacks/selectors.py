"""Reads for the inbox: counts for the ops console and the sweeper's backlog."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from wecom import messages

# Payload fields shown masked in the admin: single-use codes and tickets.
MASKED_FIELDS = frozenset(
    {"AuthCode", "SuiteTicket", "WelcomeCode", "ResponseCode", "AccessToken", "RegisterCode"}
)


def inbox_counts(*, since: timedelta = timedelta(hours=1)) -> dict[str, int]:
    """Return pending, failed, superseded and rejected counts for the last ``since``."""
    start = timezone.now() - since
    recent = CallbackEvent.objects.filter(received_at__gte=start)
    rejected = CallbackRejection.objects.filter(minute__gte=start).aggregate(n=Sum("count"))["n"]
    return {
        "pending": CallbackEvent.objects.filter(
            status__in=[CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING]
        ).count(),
        "failed": recent.filter(status=CallbackEvent.Status.FAILED).count(),
        "superseded": recent.filter(status=CallbackEvent.Status.SUPERSEDED).count(),
        "received": recent.count(),
        "rejected": rejected or 0,
    }


def inbox_backlog() -> int:
    return CallbackEvent.objects.filter(
        status__in=[CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING]
    ).count()


def masked_payload(event: CallbackEvent) -> dict:
    """Return the decrypted payload as a dict with codes and tickets masked."""
    try:
        data = messages.parse_xml(event.payload)
    except messages.MessageError:
        return {"error": "payload could not be parsed"}
    return _mask(data)


def _mask(value):
    if isinstance(value, dict):
        return {
            key: ("•••• (hidden)" if key in MASKED_FIELDS and inner else _mask(inner))
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_mask(item) for item in value]
    return value
