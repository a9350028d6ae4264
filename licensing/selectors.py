"""Reads for the licensing app: querysets and figures, never a write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models import Max
from django.db.models import Q
from django.db.models import QuerySet
from django.utils import timezone

from licensing.models import ORDER_TERMINAL
from licensing.models import AccountStatus
from licensing.models import AppLicenseInfo
from licensing.models import CorpLicenseSummary
from licensing.models import LicenseAccount
from licensing.models import LicenseNewOrderJob
from licensing.models import LicenseOrder
from licensing.models import LicenseTransfer
from licensing.models import OrderStatus
from tenants.models import Corp

# §3: an active code must be activated within 365 days of its create_time (701012).
ACTIVATION_WINDOW = timedelta(days=365)
# §6.4: an employed member may hand over its licenses once per 30 days (701017).
TRANSFER_COOLDOWN = timedelta(days=30)


def expiry_warning_days() -> int:
    return int(getattr(settings, "LICENSE_EXPIRY_WARNING_DAYS", 30))


def license_orders_due(*, now: datetime | None = None) -> QuerySet[LicenseOrder]:
    """Return orders whose next poll is due, oldest first (index range on next_sync_at)."""
    now = now or timezone.now()
    return LicenseOrder.objects.filter(next_sync_at__lte=now).order_by("next_sync_at", "pk")


def license_orders_open(*, corp: Corp | None = None) -> QuerySet[LicenseOrder]:
    """Return orders not in a terminal status."""
    qs = LicenseOrder.objects.exclude(status__in=ORDER_TERMINAL)
    return qs.filter(corp=corp) if corp is not None else qs


def license_new_order_jobs_due(*, now: datetime | None = None) -> QuerySet[LicenseNewOrderJob]:
    now = now or timezone.now()
    return LicenseNewOrderJob.objects.filter(next_sync_at__lte=now).order_by("next_sync_at", "pk")


def license_accounts_expiring(
    *, within_days: int | None = None, now: datetime | None = None, corp: Corp | None = None
) -> QuerySet[LicenseAccount]:
    """Return active accounts whose expiry falls within the next ``within_days`` days."""
    now = now or timezone.now()
    days = expiry_warning_days() if within_days is None else within_days
    qs = LicenseAccount.objects.filter(
        status=AccountStatus.ACTIVE,
        expire_time__gt=now,
        expire_time__lte=now + timedelta(days=days),
    )
    if corp is not None:
        qs = qs.filter(corp=corp)
    return qs.select_related("corp").order_by("expire_time", "pk")


def license_accounts_free(
    *, corp: Corp, account_type: int | None = None, now: datetime | None = None
) -> QuerySet[LicenseAccount]:
    """Return unbound codes that can still be activated, earliest activation deadline first."""
    now = now or timezone.now()
    qs = (
        LicenseAccount.objects.filter(
            corp=corp, status=AccountStatus.UNBOUND, invalid_at__isnull=True
        )
        .filter(Q(created_time__isnull=True) | Q(created_time__gt=now - ACTIVATION_WINDOW))
        .exclude(order__status=OrderStatus.REFUNDED)
    )
    if account_type is not None:
        qs = qs.filter(type=account_type)
    return qs.order_by("created_time", "active_code")


def license_account_pick_unused(
    *, corp: Corp, account_type: int, exclude: set[str] | frozenset[str] = frozenset()
) -> LicenseAccount | None:
    """Return the free code of that type WeCom itself would pick (earliest deadline)."""
    return (
        license_accounts_free(corp=corp, account_type=account_type)
        .exclude(active_code__in=exclude)
        .first()
    )


def license_accounts_of_users(*, corp: Corp, userids: set[str]) -> QuerySet[LicenseAccount]:
    """Return the codes bound to any of ``userids`` (in any bound status)."""
    return LicenseAccount.objects.filter(corp=corp, userid__in=userids).exclude(
        status__in=(AccountStatus.UNBOUND, AccountStatus.SHARED)
    )


def license_last_transfer(*, corp: Corp, handover_userid: str) -> LicenseTransfer | None:
    return (
        LicenseTransfer.objects.filter(corp=corp, handover_userid=handover_userid)
        .order_by("-transferred_at")
        .first()
    )


def license_transfer_blocked_until(
    *, corp: Corp, handover_userid: str, now: datetime | None = None
) -> datetime | None:
    """Return when ``handover_userid`` may transfer again, or None if it may now."""
    now = now or timezone.now()
    last = license_last_transfer(corp=corp, handover_userid=handover_userid)
    if last is None or last.transferred_at + TRANSFER_COOLDOWN <= now:
        return None
    return last.transferred_at + TRANSFER_COOLDOWN


@dataclass(frozen=True)
class CorpLicenseFigures:
    corpid: str
    bought: int
    active: int
    free: int
    expiring: int
    trial_end: datetime | None


def _summary_annotations(now: datetime, days: int) -> dict:
    live = Q(license_accounts__invalid_at__isnull=True)
    return {
        # Codes the corp bought itself (not received from upstream), refunds excluded.
        "licenses_bought": Count(
            "license_accounts",
            filter=live & Q(license_accounts__shared_from_corp__isnull=True),
            distinct=True,
        ),
        "licenses_active": Count(
            "license_accounts",
            filter=Q(
                license_accounts__status=AccountStatus.ACTIVE,
                license_accounts__expire_time__gt=now,
            ),
            distinct=True,
        ),
        "licenses_free": Count(
            "license_accounts",
            filter=live
            & Q(license_accounts__status=AccountStatus.UNBOUND)
            & (
                Q(license_accounts__created_time__isnull=True)
                | Q(license_accounts__created_time__gt=now - ACTIVATION_WINDOW)
            ),
            distinct=True,
        ),
        "licenses_expiring": Count(
            "license_accounts",
            filter=Q(
                license_accounts__status=AccountStatus.ACTIVE,
                license_accounts__expire_time__gt=now,
                license_accounts__expire_time__lte=now + timedelta(days=days),
            ),
            distinct=True,
        ),
        "trial_end": Max("app_license_infos__trial_end"),
    }


def license_corp_summaries(*, now: datetime | None = None) -> QuerySet[CorpLicenseSummary]:
    """Return corps annotated with bought / active / free / expiring counts and trial end."""
    now = now or timezone.now()
    return CorpLicenseSummary.objects.annotate(
        **_summary_annotations(now, expiry_warning_days())
    ).order_by("corpid")


def license_corp_summary(*, corp: Corp, now: datetime | None = None) -> CorpLicenseFigures:
    """Return one corp's license figures (expiring = within LICENSE_EXPIRY_WARNING_DAYS)."""
    now = now or timezone.now()
    # Annotated columns (_summary_annotations): not attributes the type checker knows.
    row: Any = license_corp_summaries(now=now).get(pk=corp.pk)
    return CorpLicenseFigures(
        corpid=corp.corpid,
        bought=row.licenses_bought,
        active=row.licenses_active,
        free=row.licenses_free,
        expiring=row.licenses_expiring,
        trial_end=row.trial_end,
    )


def license_app_info(*, corp: Corp) -> QuerySet[AppLicenseInfo]:
    return AppLicenseInfo.objects.filter(corp=corp).select_related("suite")
