"""Counting refused callbacks: per minute, endpoint and reason, never with a payload."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db import IntegrityError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from callbacks.models import CallbackRejection
from callbacks.routes import Route
from wecom import messages
from wecom_provider.observability import metrics

logger = logging.getLogger(__name__)


def rejection_record(*, endpoint: str, reason: str) -> None:
    """Count a rejection in this minute's bucket (best effort: never fails the answer)."""
    minute = timezone.now().replace(second=0, microsecond=0)
    try:
        with transaction.atomic():
            updated = CallbackRejection.objects.filter(
                minute=minute, endpoint=endpoint, reason=reason
            ).update(count=F("count") + 1)
            if not updated:
                CallbackRejection.objects.create(
                    minute=minute, endpoint=endpoint, reason=reason, count=1
                )
    except IntegrityError:
        CallbackRejection.objects.filter(minute=minute, endpoint=endpoint, reason=reason).update(
            count=F("count") + 1
        )
    except DatabaseError:
        logger.warning("could not count a %s rejection", reason)


def binding_rejection_count(route: Route, event: messages.Event, violation) -> None:
    """Count a callback stored as rejected: per-minute counter and metric."""
    rejection_record(endpoint=route.endpoint, reason=violation.reason)
    metrics.CALLBACK_NOT_APPLIED_TOTAL.labels(
        endpoint=route.endpoint,
        info_type=(event.info_type or "")[:64],
        outcome="rejected",
        reason=violation.reason,
    ).inc()
