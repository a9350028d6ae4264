"""Publishing to the product event feed (``FeedEvent``)."""

from __future__ import annotations

from django.db import IntegrityError
from django.db import transaction

from tenants.models import Corp
from tenants.models import FeedEvent
from tenants.models import Suite


def feed_publish(
    *,
    type: str,
    source_key: str,
    suite: Suite | None = None,
    corp: Corp | None = None,
    data: dict | None = None,
) -> FeedEvent | None:
    """Append one feed entry; return None if ``source_key`` was already published.

    ``source_key`` names the cause (an inbox row, an authorization change…), so a
    handler that runs twice publishes once.
    """
    try:
        with transaction.atomic():
            return FeedEvent.objects.create(
                type=type, source_key=source_key[:128], suite=suite, corp=corp, data=data or {}
            )
    except IntegrityError:
        return None
