"""A tenant's paid edition: reads, history, trials and their warnings.

The edition comes from one place only, ``edition_info`` in the v1 ``get_auth_info``
(protocol doc §5.3). It changes on purchases, refunds, trial extensions, trial and term
ends and seat overruns (path/91933), and ``change_editon`` says so without saying what.
So every path here *reads* it and hands the answer to ``edition_observe``:

- **Fenced by read time.** ``TenantEdition.read_at`` is when the read it reflects began.
  Two reads racing (a callback's and the poller's) finish in any order; an answer whose
  read began before the stored one's is dropped, so an older answer never overwrites a
  newer one. No lock is held while WeCom answers.
- **One copy for products.** The tenants app keeps ``Authorization.edition`` (the corp
  detail API shows it); every observation writes it too, under the same fence, so the
  two never disagree for long (tenants' own writes on install and resync are adopted by
  the poller, ``editions_adopt``).
- **Every change** is a ``TenantEditionChange`` row and one ``edition.changed`` feed event.
"""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models import Q
from django.utils import timezone

from licensing.app_orders.models import AppStatus
from licensing.app_orders.models import TenantEdition
from licensing.app_orders.models import TenantEditionChange
from licensing.app_orders.models import TrialExtension
from licensing.services.common import error_text as _error_text
from licensing.services.common import poll_backoff
from tenants import lifecycle
from tenants.client import wecom_client
from tenants.credentials import AuthorizationInactive
from tenants.credentials import CredentialSource
from tenants.credentials import CredentialUnavailable
from tenants.feed import feed_publish
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Suite
from tenants.wecom import suite_api
from wecom.endpoints import TokenKind
from wecom.errors import WeComError
from wecom.paid_apps import EditionInfo
from wecom.paid_apps import PaidAppApi

logger = logging.getLogger(__name__)

RECHECK = timedelta(days=1)  # every edition is read at least daily (seat overruns, …)
AFTER_END = timedelta(minutes=5)  # read again shortly after a trial or term ends
FLIP_WAIT = timedelta(hours=1)  # ended but WeCom still says 1/3: look again hourly
CHECK_BACKOFF = (60, 6 * 3600)  # a failed read: 1 min, doubling, at most 6 h
CHECK_LEASE = timedelta(minutes=5)
MAX_PROLONG_DAYS = 60  # path/91913: a trial lasts at most 60 days in total
TRIAL_WARNINGS = (30, 7)  # trial.expiring is published once at each (days before the end)


class PaidAppError(Exception):
    """A paid-app operation cannot run (the message names ids, never a secret)."""


def paid_app_api(suite: Suite) -> PaidAppApi:
    """Return the suite's facade with the three 应用版本付费 calls (suite token)."""
    return PaidAppApi(wecom_client(), CredentialSource(TokenKind.SUITE, suite))


def _dt(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value and value > 0 else None


def snapshot(info: EditionInfo) -> dict[str, Any]:
    """The compared, published form of an edition (JSON-ready; expired_time in seconds)."""
    return {
        "edition_id": info.edition_id,
        "edition_name": info.edition_name,
        "app_status": info.app_status,
        "user_limit": info.user_limit,
        "expired_time": info.expired_time,
        "is_virtual_version": info.is_virtual_version,
        "is_shared_from_other_corp": info.is_shared_from_other_corp,
    }


def row_snapshot(row: TenantEdition) -> dict[str, Any]:
    return snapshot(EditionInfo.parse(row.raw)) if row.read_at else snapshot(EditionInfo())


def _next_check(info: EditionInfo, now: datetime) -> datetime | None:
    if info.empty:
        return None  # no paid edition to watch: events, orders and the reconciler still look
    due = now + RECHECK
    end = _dt(info.expired_time)
    if end is not None and info.app_status in (AppStatus.TRIAL, AppStatus.PAID):
        # WeCom flips 1 → 2 and 3 → 4 at the end (and says so by a callback we may lose).
        due = min(due, end + AFTER_END if end > now else now + FLIP_WAIT)
    return due


# --- observing --------------------------------------------------------------------------------


def edition_observe(
    *,
    authorization: Authorization,
    entry: dict[str, Any],
    read_at: datetime,
    source: str,
    order_id: str = "",
) -> TenantEdition:
    """Apply one read of the tenant's ``edition_info`` entry (``{}``: no paid edition).

    Returns the row as it stands. An answer read before the stored one is dropped.
    """
    row, _ = TenantEdition.objects.get_or_create(authorization=authorization)
    with transaction.atomic():
        row = TenantEdition.objects.select_for_update().get(pk=row.pk)
        tenants_copy = Authorization.objects.filter(pk=authorization.pk)
        copied = tenants_copy.values_list("edition", flat=True).first()
        if row.read_at is not None and read_at < row.read_at:
            # A slower read: keep the newer answer, and the tenants' copy in line with it.
            if copied != row.raw:
                tenants_copy.update(edition=row.raw)
            return row
        info = EditionInfo.parse(entry)
        before, after = row_snapshot(row), snapshot(info)
        now = timezone.now()
        row.edition_id, row.edition_name = info.edition_id[:64], info.edition_name[:128]
        row.app_status, row.user_limit = info.app_status, info.user_limit
        row.expired_time = _dt(info.expired_time)
        row.is_virtual_version = info.is_virtual_version
        row.is_shared_from_other_corp = info.is_shared_from_other_corp
        row.raw, row.read_at, row.source = dict(entry), read_at, source[:32]
        row.next_check_at, row.check_attempts, row.last_check_error = _next_check(info, now), 0, ""
        if before != after:
            row.changed_at = now
        row.save()
        if copied != entry:
            tenants_copy.update(edition=dict(entry))
        if before != after:
            _record_change(row, authorization, before, after, source, order_id)
    return row


def _record_change(row, authorization, before, after, source: str, order_id: str) -> None:
    change = TenantEditionChange.objects.create(
        edition=row, before=before, after=after, source=source[:32], order_id=order_id[:64]
    )
    suite, corp = authorization.suite, authorization.corp
    feed_publish(
        type="edition.changed",
        source_key=f"edition.changed:{change.pk}",
        suite=suite,
        corp=corp,
        data={
            "suite_id": suite.suite_id,
            "corpid": corp.corpid,
            "edition": after,
            "previous": before,
            "source": source,
            "order_id": order_id or None,
        },
    )
    logger.info("edition of %s: %s → %s (%s)", authorization, before, after, source)


def edition_read(authorization: Authorization) -> tuple[dict[str, Any], datetime]:
    """Return (this app's edition_info entry, when the read began) from WeCom."""
    authorization = Authorization.objects.select_related("suite", "corp").get(pk=authorization.pk)
    read_at = timezone.now()
    info = suite_api(authorization.suite).get_auth_info_v1(
        auth_corpid=authorization.corp.corpid, permanent_code=authorization.permanent_code
    )
    return lifecycle.edition_of(info, authorization.agent_id), read_at


def edition_refresh(
    *, authorization: Authorization, source: str, order_id: str = ""
) -> TenantEdition:
    """Read the tenant's edition from WeCom and apply it; raises WeComError on failure
    (the row is then due again after a backoff)."""
    try:
        entry, read_at = edition_read(authorization)
    except (WeComError, CredentialUnavailable) as exc:
        _check_failed(authorization, exc)
        raise
    return edition_observe(
        authorization=authorization, entry=entry, read_at=read_at, source=source, order_id=order_id
    )


def _check_failed(authorization: Authorization, exc: BaseException) -> None:
    row, _ = TenantEdition.objects.get_or_create(authorization=authorization)
    TenantEdition.objects.filter(pk=row.pk).update(
        next_check_at=timezone.now() + poll_backoff(row.check_attempts, *CHECK_BACKOFF),
        check_attempts=F("check_attempts") + 1,
        last_check_error=_error_text(exc),
    )


def edition_refresh_for(
    *, suite: Suite, corp: Corp, source: str, order_id: str = ""
) -> TenantEdition | None:
    """Best effort: read the edition of (suite, corp) if it is an active tenant.

    A failure is logged and left to the poller (the row is due again shortly).
    """
    authorization = Authorization.objects.filter(
        suite=suite, corp=corp, status=Authorization.Status.ACTIVE
    ).first()
    if authorization is None:
        return None
    try:
        return edition_refresh(authorization=authorization, source=source, order_id=order_id)
    except (WeComError, CredentialUnavailable) as exc:
        logger.info("edition of %s not read after %s: %s", authorization, source, _error_text(exc))
        return None


# --- the poller's share -------------------------------------------------------------------------


def editions_claim_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Return ids of due editions of active tenants, each claimed for CHECK_LEASE."""
    now = now or timezone.now()
    TenantEdition.objects.filter(
        next_check_at__isnull=False,
    ).exclude(authorization__status=Authorization.Status.ACTIVE).update(next_check_at=None)
    claimed = []
    rows = (
        TenantEdition.objects.filter(next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("pk", "next_check_at")[:limit]
    )
    for pk, due in rows:
        # Conditional on the due time read: two beats racing each get disjoint rows.
        if TenantEdition.objects.filter(pk=pk, next_check_at=due).update(
            next_check_at=now + CHECK_LEASE
        ):
            claimed.append(pk)
    return claimed


def editions_adopt(*, limit: int = 500) -> int:
    """Take over editions the tenants app read itself (install, admin resync); no WeCom call.

    Due: a tenant with a paid edition and no row yet, or one whose auth info was read
    after our last read. The tenants write's time stands in for its read time (it began
    a little earlier); at worst a racing newer read is redone at the next check.
    """
    due = (
        Authorization.objects.filter(status=Authorization.Status.ACTIVE)
        .filter(
            (Q(paid_edition__isnull=True) & ~Q(edition={}))
            | Q(auth_info_synced_at__gt=F("paid_edition__read_at"))
        )
        .only("pk", "edition", "auth_info_synced_at", "suite_id", "corp_id")[:limit]
    )
    count = 0
    for authorization in due:
        edition_observe(
            authorization=authorization,
            entry=dict(authorization.edition or {}),
            read_at=authorization.auth_info_synced_at or timezone.now(),
            source="install",
        )
        count += 1
    return count


# --- trials -------------------------------------------------------------------------------------


def trial_prolong(*, authorization: Authorization, days: int, actor: str) -> TrialExtension:
    """Extend the tenant's trial by ``days`` (prolong_try), record who did, re-read.

    WeCom allows it only on a 限时试用 or an expired trial, 60 days in total; its refusal
    (a WeComError) is passed on as is. Each call extends again: it is not idempotent.
    """
    if not 1 <= days <= MAX_PROLONG_DAYS:
        raise PaidAppError(f"days must be 1..{MAX_PROLONG_DAYS}")
    authorization = Authorization.objects.select_related("suite", "corp").get(pk=authorization.pk)
    if not authorization.is_active:
        raise AuthorizationInactive(f"authorization {authorization} is {authorization.status}")
    row = TenantEdition.objects.filter(authorization=authorization).first()
    if not authorization.edition and (row is None or not row.raw):
        raise PaidAppError(f"{authorization} has no paid edition: nothing to extend")
    end = paid_app_api(authorization.suite).prolong_try(
        buyer_corpid=authorization.corp.corpid, prolong_days=days
    )
    extension = TrialExtension.objects.create(
        authorization=authorization, days=days, try_end_time=_dt(end), actor=actor[:150]
    )
    logger.info("trial of %s extended by %d days by %s", authorization, days, actor)
    try:
        edition_refresh(authorization=authorization, source="prolong_try")
    except (WeComError, CredentialUnavailable) as exc:
        logger.info("edition of %s not re-read after prolong_try: %s", authorization, exc)
    return extension


def trials_expiring_scan(*, now: datetime | None = None) -> int:
    """Publish ``trial.expiring`` once per trial end and warning (30, 7 days); return how
    many new. A prolonged trial has a new end, so it is warned about again."""
    now = now or timezone.now()
    horizon = now + timedelta(days=max(TRIAL_WARNINGS))
    rows = TenantEdition.objects.filter(
        app_status=AppStatus.TRIAL,
        expired_time__gt=now,
        expired_time__lte=horizon,
        authorization__status=Authorization.Status.ACTIVE,
    ).select_related("authorization__suite", "authorization__corp")
    published = 0
    for row in rows:
        authorization, end = row.authorization, int(row.expired_time.timestamp())
        for days in TRIAL_WARNINGS:
            if row.expired_time > now + timedelta(days=days):
                continue
            entry = feed_publish(
                type="trial.expiring",
                source_key=f"trial.expiring:{authorization.pk}:{end}:{days}",
                suite=authorization.suite,
                corp=authorization.corp,
                data={
                    "suite_id": authorization.suite.suite_id,
                    "corpid": authorization.corp.corpid,
                    "edition_id": row.edition_id,
                    "edition_name": row.edition_name,
                    "expired_time": end,
                    "days_left": max(0, (row.expired_time - now).days),
                    "within_days": days,
                },
            )
            published += entry is not None
    return published
