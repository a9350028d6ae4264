"""Subscriptions: create, update, rotate the secret, enable and disable (webhooks
services)."""

from __future__ import annotations

import base64
import logging
import re
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import ApiClient
from webhooks import ssrf
from webhooks.models import Delivery
from webhooks.models import Subscription
from webhooks.models import new_uid
from wecom_provider.observability import metrics

logger = logging.getLogger(__name__)

MAX_PATTERNS = 50
PATTERN_RE = re.compile(r"^[a-z0-9_*?.\-]{1,64}$")


class SubscriptionError(ValueError):
    """A subscription request that cannot be accepted; the message is for the client."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- subscriptions -----------------------------------------------------------------------


def allowlist() -> ssrf.Allowlist:
    return ssrf.Allowlist.parse(settings.WEBHOOK_ALLOWED_HOSTS)


def new_secret() -> str:
    """Return a Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def event_types_clean(patterns) -> list[str]:
    """Return the patterns, de-duplicated, or raise SubscriptionError."""
    if isinstance(patterns, str):
        patterns = [p for p in re.split(r"[\s,]+", patterns) if p]
    if not isinstance(patterns, list | tuple) or not patterns:
        raise SubscriptionError("give at least one event type pattern", field="event_types")
    if len(patterns) > MAX_PATTERNS:
        raise SubscriptionError(f"at most {MAX_PATTERNS} patterns", field="event_types")
    cleaned = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not PATTERN_RE.match(pattern):
            raise SubscriptionError(
                "an event type pattern is lower-case letters, digits, '_', '.', '-' and the "
                "wildcards '*' and '?' (e.g. external_contact.*)",
                field="event_types",
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


def url_clean(url: str) -> str:
    """Return ``url`` if the SSRF guard lets it through now (resolved), else raise."""
    url = (url or "").strip()
    if len(url) > 500:
        raise SubscriptionError("the URL is longer than 500 characters", field="url")
    try:
        ssrf.check_url(url, allowlist())
    except ssrf.UnsafeDestination as exc:
        raise SubscriptionError(str(exc), field="url") from None
    return url


def subscription_create(
    *, client: ApiClient, url: str, event_types, description: str = ""
) -> tuple[Subscription, str]:
    """Create a subscription; return it with its secret (shown to the caller once)."""
    url = url_clean(url)
    patterns = event_types_clean(event_types)
    secret = new_secret()
    subscription = Subscription(
        uid=new_uid("sub"),
        client=client,
        url=url,
        event_types=patterns,
        description=description[:200],
    )
    subscription.secret = secret
    subscription.save()
    return subscription, secret


def subscription_update(
    *,
    subscription: Subscription,
    url: str | None = None,
    event_types=None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Subscription:
    """Change what the caller gave; re-enabling clears the disable reason and clock."""
    fields = ["updated_at"]
    if url is not None:
        subscription.url = url_clean(url)
        fields.append("url")
    if event_types is not None:
        subscription.event_types = event_types_clean(event_types)
        fields.append("event_types")
    if description is not None:
        subscription.description = description[:200]
        fields.append("description")
    subscription.save(update_fields=fields)
    if enabled is True and not subscription.enabled:
        subscription_enable(subscription=subscription)
    elif enabled is False and subscription.enabled:
        subscription_disable(subscription=subscription, reason=Subscription.DisabledReason.MANUAL)
    return subscription


def subscription_secret_rotate(*, subscription: Subscription) -> str:
    """Give the subscription a new secret; return it (shown once). Attempts from now on
    are signed with it."""
    secret = new_secret()
    subscription.secret = secret
    subscription.save(update_fields=["secret_sealed", "updated_at"])
    return secret


def subscription_enable(*, subscription: Subscription) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, failing_since=None
    )
    subscription.refresh_from_db()


def subscription_disable(*, subscription: Subscription, reason: str) -> int:
    """Disable it and cancel its pending deliveries; return how many were cancelled.

    Conditional on ``enabled``: of two workers seeing a 410 at once, one disables.
    """
    now = timezone.now()
    with transaction.atomic():
        changed = Subscription.objects.filter(pk=subscription.pk, enabled=True).update(
            enabled=False, disabled_reason=reason, disabled_at=now
        )
        cancelled = Delivery.objects.filter(
            subscription_id=subscription.pk, status=Delivery.Status.PENDING
        ).update(
            status=Delivery.Status.CANCELLED,
            finished_at=now,
            last_error=f"subscription disabled ({reason})",
        )
    if changed and reason != Subscription.DisabledReason.MANUAL:
        metrics.WEBHOOK_SUBSCRIPTIONS_DISABLED_TOTAL.labels(reason=reason).inc()
        logger.warning(
            "webhook subscription %s disabled automatically (%s)", subscription.uid, reason
        )
    subscription.refresh_from_db()
    return cancelled
