"""Publishing to the product event feed (``FeedEvent``)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError
from django.db import transaction

from tenants.models import Corp
from tenants.models import FeedEvent
from tenants.models import Suite

# Called inside the publishing transaction with each new entry and its push-only codes
# (webhooks/apps.py registers one: deliveries are created atomically with the entry, so
# none is lost between the two). tenants cannot import the apps that sit above it.
PUBLISH_HOOKS: list[Callable[[FeedEvent, dict], None]] = []


def feed_publish(
    *,
    type: str,
    source_key: str,
    suite: Suite | None = None,
    corp: Corp | None = None,
    data: dict | None = None,
    codes: dict | None = None,
) -> FeedEvent | None:
    """Append one feed entry; return None if ``source_key`` was already published.

    ``source_key`` names the cause (an inbox row, an authorization change…), so a
    handler that runs twice publishes once. ``codes``: short-lived codes (a WelcomeCode)
    handed to the publish hooks only, never stored on the feed row.
    """
    # The outer block makes the entry and the hooks' rows one unit even when the caller
    # runs in autocommit; the inner one confines the duplicate's IntegrityError (a hook's
    # error is never mistaken for "already published").
    with transaction.atomic():
        try:
            with transaction.atomic():
                entry = FeedEvent.objects.create(
                    type=type, source_key=source_key[:128], suite=suite, corp=corp, data=data or {}
                )
        except IntegrityError:
            return None
        for hook in PUBLISH_HOOKS:
            hook(entry, codes or {})
    return entry
