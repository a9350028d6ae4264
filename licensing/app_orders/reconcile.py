"""The reconciler: every order WeCom lists, every edition read again.

WeCom retries a callback three times at most, and only when it got no answer; a lost
``open_order`` or ``pay_for_app_success`` would leave an order we never heard of. So,
for every suite, ``service/get_order_list`` is walked over ``APP_ORDER_RECONCILE_DAYS``
in windows of 31 days (the pages give no limit and no cursor: small windows keep each
answer small; §13), for formal installs and, where a suite has test installs, for those
too (``test_mode=1``). Each listed order carries every field, so no ``get_order`` follows.
Then the editions of the tenants concerned are read again (inline here; the Celery task
fans them out).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from django.conf import settings

from licensing.app_orders import editions
from licensing.app_orders import selectors
from licensing.app_orders import services
from licensing.app_orders.models import AppOrder
from licensing.services import list_order_windows
from tenants.credentials import CredentialUnavailable
from tenants.models import Authorization
from tenants.models import Suite
from wecom.errors import WeComError
from wecom_provider.progress import Progress


@dataclass
class AppReconcileResult:
    suites: int = 0
    windows: int = 0
    orders_listed: int = 0
    orders_new: int = 0
    orders_moved: int = 0
    editions_read: int = 0
    editions_changed: int = 0
    errors: list[str] = field(default_factory=list)


def _test_modes(suite: Suite) -> list[int]:
    has_tests = Authorization.objects.filter(suite=suite, is_test_install=True).exists()
    return [0, 1] if has_tests else [0]


def _walk_suite(suite: Suite, windows, result: AppReconcileResult, progress) -> None:
    api = editions.paid_app_api(suite)
    for test_mode in _test_modes(suite):
        for start, end in windows:
            result.windows += 1
            try:
                listed = api.get_app_order_list(
                    start_time=int(start.timestamp()),
                    end_time=int(end.timestamp()),
                    test_mode=test_mode,
                )
            except CredentialUnavailable as exc:
                # No suite token (no ticket yet, or backing off): nothing to list for now.
                result.errors.append(f"suite {suite.suite_id}: {type(exc).__name__}")
                return
            except WeComError as exc:
                result.errors.append(f"suite {suite.suite_id} {start:%Y-%m-%d}: {exc}")
                continue
            finally:
                if progress is not None:
                    progress.advance()
            for info in listed:
                _apply(suite, info, test_mode, result)


def _apply(suite: Suite, info, test_mode: int, result: AppReconcileResult) -> None:
    known = AppOrder.objects.filter(order_id=info.orderid).exists()
    try:
        order, moved = services.app_order_observe(
            info=info, suite=suite, source="reconcile", test_mode=bool(test_mode)
        )
    except services.PaidAppError as exc:
        result.errors.append(str(exc))
        return
    services.app_order_schedule(order)
    result.orders_listed += 1
    result.orders_new += not known
    result.orders_moved += moved and known


def app_orders_reconcile(
    *,
    days: int | None = None,
    now: datetime | None = None,
    read_editions: bool = True,
    progress: Progress | None = None,
) -> AppReconcileResult:
    """Mirror every order listed in the history, then (``read_editions``) read the
    edition of every tenant with a paid edition or an order."""
    days = settings.APP_ORDER_RECONCILE_DAYS if days is None else days
    result = AppReconcileResult()
    windows = list_order_windows(days=days, now=now)
    for suite in Suite.objects.select_related("provider").order_by("suite_id"):
        result.suites += 1
        _walk_suite(suite, windows, result, progress)
    if read_editions:
        for authorization in selectors.editions_to_reconcile():
            app_edition_reconcile(authorization=authorization, result=result)
    return result


def app_edition_reconcile(
    *, authorization: Authorization, result: AppReconcileResult | None = None
) -> None:
    """Read one tenant's edition again (the reconciler's second half)."""
    result = result or AppReconcileResult()
    before = editions.TenantEdition.objects.filter(authorization=authorization).first()
    changed_at = before.changed_at if before is not None else None
    try:
        row = editions.edition_refresh(authorization=authorization, source="reconcile")
    except (WeComError, CredentialUnavailable) as exc:
        result.errors.append(f"edition of {authorization}: {exc}")
        return
    result.editions_read += 1
    result.editions_changed += row.changed_at != changed_at
