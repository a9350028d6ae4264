"""Reads of the webhooks app (subscriptions in a client's scope, due deliveries)."""

from __future__ import annotations

import fnmatch
from datetime import datetime
from datetime import timedelta

from django.db.models import Count
from django.db.models import QuerySet

from api.models import ApiClient
from tenants.models import Authorization
from tenants.models import FeedEvent
from webhooks.models import Delivery
from webhooks.models import Subscription

# A fresh delivery was enqueued by its publisher; the sweep leaves it this long first.
FRESH_GRACE = timedelta(seconds=10)


def subscriptions_of(*, client: ApiClient) -> QuerySet[Subscription]:
    return Subscription.objects.filter(client=client).order_by("id")


def subscription_of(*, client: ApiClient, uid: str) -> Subscription | None:
    """Return the client's subscription ``uid``; another client's is None (a 404)."""
    return Subscription.objects.filter(client=client, uid=uid).first()


def subscriptions_listening() -> list[Subscription]:
    """Return enabled subscriptions of unrevoked clients, with their clients' scope."""
    return list(
        Subscription.objects.filter(enabled=True, client__revoked_at__isnull=True)
        .select_related("client")
        .prefetch_related("client__suites", "client__corps")
    )


def type_matches(patterns: list[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns or ())


def client_sees(client: ApiClient, entry: FeedEvent) -> bool:
    """The /api/v1/events/ scope rule for one entry: its suite or corp is the client's,
    or (no suite) its corp authorized one of the client's suites. Uses the prefetched
    scope of ``subscriptions_listening``."""
    return ScopeCheck()(client, entry)


class ScopeCheck:
    """``client_sees`` for many entries in a row: each client's scope ids are collected
    once, and the one query of the rule (a corp's authorizations) asked once per
    client and corp."""

    def __init__(self) -> None:
        self._scope: dict[int, tuple[set[int], set[int]]] = {}
        self._authorized: dict[tuple[int, int], bool] = {}

    def __call__(self, client: ApiClient, entry: FeedEvent) -> bool:
        if client.pk not in self._scope:
            self._scope[client.pk] = (
                {suite.pk for suite in client.suites.all()},
                {corp.pk for corp in client.corps.all()},
            )
        suite_ids, corp_ids = self._scope[client.pk]
        if entry.suite_id is not None and entry.suite_id in suite_ids:
            return True
        if entry.corp_id is not None and entry.corp_id in corp_ids:
            return True
        if entry.suite_id is None and entry.corp_id is not None and suite_ids:
            key = (client.pk, entry.corp_id)
            if key not in self._authorized:
                self._authorized[key] = Authorization.objects.filter(
                    corp_id=entry.corp_id, suite_id__in=suite_ids
                ).exists()
            return self._authorized[key]
        return False


def deliveries_due(*, now: datetime, limit: int = 500) -> list[int]:
    """Return ids of pending deliveries whose attempt is due (oldest first)."""
    return list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .exclude(attempts=0, created_at__gt=now - FRESH_GRACE)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


def feed_events_between(*, start: datetime, end: datetime) -> QuerySet[FeedEvent]:
    return (
        FeedEvent.objects.filter(created_at__gte=start, created_at__lte=end)
        .select_related("suite", "corp")
        .order_by("id")
    )


def deliveries_pending_count() -> int:
    return Delivery.objects.filter(status=Delivery.Status.PENDING).count()


def subscription_state_counts() -> list[tuple[tuple[str], int]]:
    """Return ``[((state,), count)]`` for the wecom_webhook_subscriptions gauge."""
    out = {"enabled": 0, "failing": 0}
    rows = Subscription.objects.values("enabled", "disabled_reason").annotate(n=Count("id"))
    for row in rows:
        state = "enabled" if row["enabled"] else f"disabled_{row['disabled_reason'] or 'manual'}"
        out[state] = out.get(state, 0) + row["n"]
    out["failing"] = Subscription.objects.filter(enabled=True, failing_since__isnull=False).count()
    return [((state,), count) for state, count in sorted(out.items())]
