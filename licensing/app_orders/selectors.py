"""Reads for paid apps (never a write): a tenant's orders and edition, trials, dashboards."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

from django.db.models import Count
from django.db.models import Exists
from django.db.models import OuterRef
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from licensing.app_orders.models import OVER_LIMIT_STATUSES
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import AppOrderStatus
from licensing.app_orders.models import AppStatus
from licensing.app_orders.models import TenantEdition
from tenants.models import Authorization
from wecom.paid_apps import EditionInfo


def app_orders_of(
    *,
    authorization: Authorization,
    status: int | None = None,
    order_type: int | None = None,
) -> QuerySet[AppOrder]:
    """The tenant's app orders (its suite, its corp), optionally filtered."""
    orders = AppOrder.objects.filter(
        suite_id=authorization.suite_id, corp_id=authorization.corp_id
    ).select_related("suite", "corp")
    if status is not None:
        orders = orders.filter(status=status)
    if order_type is not None:
        orders = orders.filter(order_type=order_type)
    return orders


def app_order_of(*, authorization: Authorization, order_id: str) -> AppOrder | None:
    return app_orders_of(authorization=authorization).filter(order_id=order_id).first()


def edition_state(*, authorization: Authorization) -> TenantEdition:
    """The tenant's edition row, or an unsaved one from the tenants copy (not read yet)."""
    row = (
        TenantEdition.objects.filter(authorization_id=authorization.pk)
        .select_related("authorization__suite", "authorization__corp")
        .first()
    )
    if row is not None:
        return row
    info = EditionInfo.parse(authorization.edition or {})
    return TenantEdition(
        authorization=authorization,
        edition_id=info.edition_id,
        edition_name=info.edition_name,
        app_status=info.app_status,
        user_limit=info.user_limit,
        expired_time=datetime.fromtimestamp(info.expired_time, tz=UTC)
        if info.expired_time
        else None,
        is_virtual_version=info.is_virtual_version,
        is_shared_from_other_corp=info.is_shared_from_other_corp,
        raw=dict(authorization.edition or {}),
        source="install",
    )


def trials_ending(*, within_days: int, now: datetime | None = None) -> QuerySet[TenantEdition]:
    """Active tenants on a 限时试用 that ends within ``within_days`` (soonest first).

    The same condition as the admin's "trial ends within" filter (the dashboard links there).
    """
    now = now or timezone.now()
    return (
        TenantEdition.objects.filter(
            app_status=AppStatus.TRIAL,
            expired_time__gt=now,
            expired_time__lte=now + timedelta(days=within_days),
            authorization__status=Authorization.Status.ACTIVE,
        )
        .select_related("authorization__suite", "authorization__corp")
        .order_by("expired_time", "pk")
    )


def editions_over_limit() -> QuerySet[TenantEdition]:
    """Active tenants WeCom reports over their edition's user limit (app_status 6, 7)."""
    return (
        TenantEdition.objects.filter(
            app_status__in=OVER_LIMIT_STATUSES,
            authorization__status=Authorization.Status.ACTIVE,
        )
        .select_related("authorization__suite", "authorization__corp")
        .order_by("-app_status", "expired_time", "pk")
    )


def edition_figures(*, trial_days: tuple[int, ...], now: datetime | None = None) -> dict:
    """One query: trials ending within each of ``trial_days`` (the same rows as
    ``trials_ending``) and editions over their limit (as ``editions_over_limit``)."""
    now = now or timezone.now()
    active = Q(authorization__status=Authorization.Status.ACTIVE)
    counts = {
        f"trials_{days}": Count(
            "pk",
            filter=active
            & Q(
                app_status=AppStatus.TRIAL,
                expired_time__gt=now,
                expired_time__lte=now + timedelta(days=days),
            ),
        )
        for days in trial_days
    }
    counts["over_limit"] = Count("pk", filter=active & Q(app_status__in=OVER_LIMIT_STATUSES))
    figures = TenantEdition.objects.aggregate(**counts)
    return {
        "trials": {days: figures[f"trials_{days}"] for days in trial_days},
        "over_limit": figures["over_limit"],
    }


def app_orders_awaiting_payment() -> int:
    return AppOrder.objects.filter(status=AppOrderStatus.UNPAID).count()


def app_orders_by_day(*, days: int, now: datetime | None = None) -> dict[date, dict[int, int]]:
    """Orders placed per UTC day over the last ``days`` days, by current status."""
    now = now or timezone.now()
    first = (now - timedelta(days=days - 1)).date()
    rows = (
        AppOrder.objects.filter(order_time__date__gte=first)
        .annotate(day=TruncDate("order_time"))
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    out: dict[date, dict[int, int]] = defaultdict(dict)
    for row in rows:
        out[row["day"]][row["status"]] = row["n"]
    return {first + timedelta(days=i): out.get(first + timedelta(days=i), {}) for i in range(days)}


def editions_to_reconcile() -> QuerySet[Authorization]:
    """Active tenants whose edition the reconciler reads: one known, or an order placed."""
    orders = AppOrder.objects.filter(suite_id=OuterRef("suite_id"), corp_id=OuterRef("corp_id"))
    return (
        Authorization.objects.filter(status=Authorization.Status.ACTIVE)
        .filter(Q(paid_edition__isnull=False) | ~Q(edition={}) | Exists(orders))
        .select_related("suite", "corp")
        .order_by("pk")
    )
