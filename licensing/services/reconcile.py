"""Expiry notices and reconciliation: nothing WeCom knows is missed by the mirror."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import TextIO

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from licensing import selectors
from licensing.models import CorpLicenseSettings
from licensing.models import LicenseOrder
from licensing.services.accounts import license_accounts_refresh
from licensing.services.accounts import license_user_info_sync
from licensing.services.common import LIST_ORDER_WINDOW
from licensing.services.common import LicenseError
from licensing.services.common import error_text
from licensing.services.common import idempotency_key
from licensing.services.common import license_api
from licensing.services.common import license_provider
from licensing.services.common import to_unix
from licensing.services.orders import license_order_sync_by_id
from licensing.services.orders import order_needs_accounts
from tenants.feed import feed_publish
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Provider
from wecom.errors import WeComError
from wecom_provider.progress import Progress

# --- expiry --------------------------------------------------------------------------------


def license_expiry_scan(*, within_days: int | None = None, now: datetime | None = None) -> int:
    """Publish ``license.expiring`` once per account and expiry date; return how many new."""
    now = now or timezone.now()
    published = 0
    for account in selectors.license_accounts_expiring(within_days=within_days, now=now).iterator():
        expire_time = account.expire_time
        if expire_time is None:
            continue  # never: the selector takes accounts by their expiry
        expire = to_unix(expire_time)
        entry = feed_publish(
            type="license.expiring",
            source_key=idempotency_key(
                "license.expiring", account.corp.corpid, account.active_code, expire
            ),
            corp=account.corp,
            data={
                "corpid": account.corp.corpid,
                "userid": account.userid,
                "type": account.type,
                "expire_time": expire,
                "days_left": max(0, (expire_time - now).days),
            },
        )
        published += entry is not None
    return published


# --- reconciliation ------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    windows: int = 0
    orders_listed: int = 0
    orders_synced: int = 0
    orders_new: int = 0
    corps: int = 0
    accounts: int = 0
    errors: list[str] = field(default_factory=list)


def list_order_windows(
    *, days: int, now: datetime | None = None
) -> list[tuple[datetime, datetime]]:
    """Return creation-time windows of ≤31 days covering the last ``days`` days, newest first.

    The newest window ends a day ahead of ``now``: WeCom's clock and ours may differ.
    """
    now = now or timezone.now()
    end = now + timedelta(days=1)
    start_limit = now - timedelta(days=days)
    windows = []
    while end > start_limit:
        start = max(start_limit, end - LIST_ORDER_WINDOW)
        windows.append((start, end))
        end = start
    return windows


def license_orders_reconcile(
    *,
    days: int | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    result: ReconcileResult | None = None,
) -> ReconcileResult:
    """Walk list_order over the history and mirror every order we miss or have not settled.

    Orders created in WeCom's console, or whose callbacks were lost, end up mirrored.
    Test corps' orders are listed only with their corpid (§6.3), so those corps are
    walked too.
    """
    days = settings.LICENSE_RECONCILE_DAYS if days is None else days
    result = result or ReconcileResult()
    provider = license_provider()
    api = license_api(provider)
    windows = list_order_windows(days=days, now=now)
    test_corps = list(
        Corp.objects.filter(authorizations__is_test_install=True)
        .distinct()
        .values_list("corpid", flat=True)
    )
    seen: set[str] = set()
    for corpid in [None, *test_corps]:
        for start, end in windows:
            result.windows += 1
            try:
                listed = list(
                    api.list_order_all(
                        corpid=corpid, start_time=to_unix(start), end_time=to_unix(end)
                    )
                )
            except WeComError as exc:
                result.errors.append(f"list_order {start:%Y-%m-%d}: {error_text(exc)}")
                continue
            finally:
                if progress is not None:
                    progress.advance()
            for item in listed:
                order_id = item.get("order_id")
                if not order_id or order_id in seen:
                    continue
                seen.add(order_id)
                result.orders_listed += 1
                _reconcile_order(order_id, provider, result)
    return result


def _reconcile_order(order_id: str, provider: Provider, result: ReconcileResult) -> None:
    known = LicenseOrder.objects.filter(order_id=order_id).first()
    if known is not None and known.is_terminal and not order_needs_accounts(known):
        return
    try:
        license_order_sync_by_id(order_id=order_id, provider=provider, source="reconcile")
    except (WeComError, LicenseError) as exc:
        result.errors.append(f"order {order_id}: {error_text(exc)}")
        return
    result.orders_synced += 1
    result.orders_new += known is None


def license_corp_accounts_reconcile(*, corp: Corp) -> int:
    """Walk list_actived_account for ``corp`` and bring every active binding up to date.

    Known codes are re-read in ≤1000 batches; members whose codes we never saw are
    read with get_active_info_by_user. Returns how many activated accounts WeCom lists.
    """
    api = license_api(corp=corp)
    listed = list(api.list_actived_account_all(corpid=corp.corpid))
    users = {item["userid"] for item in listed if item.get("userid")}
    ours = selectors.license_accounts_of_users(corp=corp, userids=users)
    known_users = set(ours.values_list("userid", flat=True))
    license_accounts_refresh(
        corp=corp, active_codes=list(ours.values_list("active_code", flat=True)), api=api
    )
    for userid in sorted(users - known_users):
        license_user_info_sync(corp=corp, userid=userid, api=api)
    CorpLicenseSettings.objects.update_or_create(
        corp=corp, defaults={"accounts_reconciled_at": timezone.now()}
    )
    return len(listed)


def license_reconcile_corps() -> list[Corp]:
    """Return corps whose activated accounts the reconciler walks."""
    return list(
        Corp.objects.filter(
            Q(authorizations__status=Authorization.Status.ACTIVE) | Q(license_orders__isnull=False)
        )
        .distinct()
        .order_by("corpid")
    )


def license_reconcile(
    *, days: int | None = None, stream: TextIO | None = None, corps: bool = True
) -> ReconcileResult:
    """Reconcile orders over the history, then every corp's activated accounts."""
    days = settings.LICENSE_RECONCILE_DAYS if days is None else days
    result = ReconcileResult()
    windows = len(list_order_windows(days=days))
    test_corps = Corp.objects.filter(authorizations__is_test_install=True).distinct().count()
    total = windows * (1 + test_corps)
    if stream is not None:
        with Progress(stream, total, "orders") as progress:
            license_orders_reconcile(days=days, progress=progress, result=result)
    else:
        license_orders_reconcile(days=days, result=result)
    if not corps:
        return result
    corp_list = license_reconcile_corps()
    counter = Progress(stream, len(corp_list), "accounts") if stream is not None else None
    for corp in corp_list:
        try:
            result.accounts += license_corp_accounts_reconcile(corp=corp)
            result.corps += 1
        except (WeComError, LicenseError) as exc:
            result.errors.append(f"corp {corp.corpid}: {error_text(exc)}")
        if counter is not None:
            counter.advance()
    if counter is not None:
        counter.close()
    return result
