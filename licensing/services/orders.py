"""Orders: creation, the forward-only status, polling, cancellation, callbacks' news."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from licensing import selectors
from licensing.models import ORDER_HAS_ACCOUNTS
from licensing.models import ORDER_PREDECESSORS
from licensing.models import ORDER_TERMINAL
from licensing.models import ORDER_TRANSITIONS
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from licensing.models import OrderType
from licensing.services.accounts import license_order_accounts_sync
from licensing.services.common import ACCOUNTS_BACKOFF
from licensing.services.common import POLL_BACKOFF
from licensing.services.common import POLL_LEASE
from licensing.services.common import LicenseError
from licensing.services.common import as_int
from licensing.services.common import corp_for_id
from licensing.services.common import error_text
from licensing.services.common import from_unix
from licensing.services.common import idempotency_key
from licensing.services.common import license_api
from licensing.services.common import license_provider
from licensing.services.common import poll_backoff
from tenants.feed import feed_publish
from tenants.models import Corp
from tenants.models import Provider
from wecom.client import ProviderApi
from wecom.errors import WeComApiError
from wecom.errors import WeComError

logger = logging.getLogger(__name__)


# --- order status -------------------------------------------------------------------------


def _order_feed(order: LicenseOrder) -> None:
    """Publish what an order's current status means to products (idempotent)."""
    data = {
        "order_id": order.order_id,
        "order_type": order.order_type,
        "status": order.status,
        "corpid": order.corp.corpid if order.corp is not None else None,
        "base_count": order.base_count,
        "external_contact_count": order.external_contact_count,
        "price": order.price,
    }
    if order.status in ORDER_HAS_ACCOUNTS:
        feed_publish(
            type="license.paid",
            source_key=idempotency_key("license.paid", order.order_id),
            corp=order.corp,
            data=data,
        )
    if order.status == OrderStatus.REFUNDED:
        feed_publish(
            type="license.refunded",
            source_key=idempotency_key("license.refunded", order.order_id),
            corp=order.corp,
            data=data,
        )


def license_order_transition(*, order: LicenseOrder, to: int, source: str) -> bool:
    """Move ``order`` to status ``to`` if that is forward from its current status.

    Returns True if this call moved it. Concurrent callers (pay callback, poller,
    refund callback) each run one conditional UPDATE; only moves allowed from the
    row's status at that instant succeed, so a status never regresses.
    """
    if to not in ORDER_TRANSITIONS:
        raise ValueError(f"unknown order status {to}")
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": to,
        "status_changed_at": now,
        "status_source": source[:32],
        "sync_attempts": 0,
        "updated_at": now,
    }
    if to == OrderStatus.REFUNDED:
        # Unbound codes of a refunded order die: read the accounts again.
        fields["accounts_synced_at"] = None
    with transaction.atomic():
        moved = LicenseOrder.objects.filter(pk=order.pk, status__in=ORDER_PREDECESSORS[to]).update(
            **fields
        )
        order.refresh_from_db()
        if moved:
            logger.info("license order %s → %s (%s)", order.order_id, to, source)
            _order_feed(order)
    return bool(moved)


def _order_snapshot(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the modelled fields of a get_order ``order`` object (status excluded)."""
    count = data.get("account_count") or {}
    duration = data.get("account_duration") or {}
    return {
        "order_type": as_int(data.get("order_type"), 0) or None,
        "base_count": as_int(count.get("base_count")),
        "external_contact_count": as_int(count.get("external_contact_count")),
        "duration_months": as_int(duration.get("months")),
        "duration_days": as_int(duration.get("days")),
        "new_expire_time": from_unix(duration.get("new_expire_time")),
        "price": as_int(data.get("price")),
        "created_time": from_unix(data.get("create_time")),
        "raw": dict(data),
    }


def _order_observe(
    *,
    order_id: str,
    data: Mapping[str, Any],
    provider: Provider,
    source: str,
    parent: LicenseOrder | None = None,
) -> LicenseOrder:
    """Apply one get_order answer to the mirror (create, move forward, fill in)."""
    status = as_int(data.get("order_status"), -1)
    if status not in ORDER_TRANSITIONS:
        raise LicenseError(f"order {order_id}: unknown order_status {data.get('order_status')!r}")
    corpid = data.get("corpid")
    corp = corp_for_id(corpid) if isinstance(corpid, str) and corpid else None
    snapshot = _order_snapshot(data)
    paid_at = from_unix(data.get("pay_time"))
    now = timezone.now()
    try:
        with transaction.atomic():
            order = LicenseOrder.objects.create(
                order_id=order_id,
                provider=provider,
                corp=corp,
                parent=parent,
                status=status,
                status_source=source[:32],
                status_changed_at=now,
                paid_at=paid_at,
                next_sync_at=now,
                **snapshot,
            )
            _order_feed(order)
            return order
    except IntegrityError:
        order = LicenseOrder.objects.get(order_id=order_id)
    license_order_transition(order=order, to=status, source=source)
    # A slower reader may hold an older answer than a concurrent writer: snapshot
    # fields are stored only while the row is still in the status that was read.
    LicenseOrder.objects.filter(pk=order.pk, status=status).update(**snapshot, updated_at=now)
    fill = LicenseOrder.objects.filter(pk=order.pk)
    if paid_at is not None:
        fill.update(paid_at=paid_at)  # pay_time is fixed once paid
    if corp is not None:
        fill.filter(corp__isnull=True).update(corp=corp)
    if parent is not None:
        fill.filter(parent__isnull=True).update(parent=parent)
    fill.filter(provider__isnull=True).update(provider=provider)
    order.refresh_from_db()
    return order


def order_needs_accounts(order: LicenseOrder) -> bool:
    return (
        order.status in ORDER_HAS_ACCOUNTS
        and order.accounts_synced_at is None
        and order.order_type != OrderType.MULTI_CORP
    )


def _schedule(order: LicenseOrder, *, error: str = "") -> None:
    """Set when the poller looks at ``order`` again (None: never, it is settled)."""
    now = timezone.now()
    if order_needs_accounts(order):
        due: datetime | None = now + poll_backoff(order.sync_attempts, *ACCOUNTS_BACKOFF)
    elif order.status in ORDER_TERMINAL or (
        # A multi-corp parent only knows 0–3; refunds happen on its sub-orders.
        order.order_type == OrderType.MULTI_CORP and order.status == OrderStatus.PAID
    ):
        due = None
    else:
        due = now + poll_backoff(order.sync_attempts, *POLL_BACKOFF[order.status])
    # Conditional on the status we planned for: a concurrent transition has reset
    # the schedule its own way and must not be overwritten.
    LicenseOrder.objects.filter(pk=order.pk, status=order.status).update(
        next_sync_at=due,
        sync_attempts=F("sync_attempts") + 1,
        last_synced_at=now,
        last_sync_error=error[:300],
        updated_at=now,
    )


# --- orders -------------------------------------------------------------------------------


def license_order_create(
    *,
    corp: Corp,
    buyer_userid: str,
    base_count: int = 0,
    external_contact_count: int = 0,
    months: int = 1,
    days: int = 0,
) -> LicenseOrder:
    """Create a purchase order in WeCom and mirror it; return the order (status 0).

    A test corp's order comes back already paid (§6.1). If the follow-up read fails,
    the poller completes the row.
    """
    provider = license_provider(corp=corp)
    api = license_api(provider)
    # A transport error here may hide an order WeCom did create: the reconciler finds
    # it (list_order) rather than a blind retry creating a second one.
    answer = api.create_new_order(
        corpid=corp.corpid,
        buyer_userid=buyer_userid,
        base_count=base_count,
        external_contact_count=external_contact_count,
        months=months,
        days=days,
    )
    order_id = answer["order_id"]
    now = timezone.now()
    with transaction.atomic():
        order, _ = LicenseOrder.objects.get_or_create(
            order_id=order_id,
            defaults={
                "provider": provider,
                "corp": corp,
                "order_type": OrderType.NEW,
                "status": OrderStatus.UNPAID,
                "status_source": "create",
                "status_changed_at": now,
                "base_count": base_count,
                "external_contact_count": external_contact_count,
                "duration_months": months,
                "duration_days": days,
                "buyer_userid": buyer_userid,
                "next_sync_at": now,
            },
        )
        LicenseOrder.objects.filter(pk=order.pk).update(buyer_userid=buyer_userid)
    try:
        return license_order_sync(order=order, source="create")
    except WeComError as exc:
        logger.warning("order %s created; first read failed: %s", order_id, error_text(exc))
        order.refresh_from_db()
        return order


def license_order_sync(*, order: LicenseOrder, source: str = "poll") -> LicenseOrder:
    """Read ``order`` from WeCom, move it forward, sync its accounts once paid.

    Raises WeComError when the order itself cannot be read (the row records the error
    and its next poll). Failures of the accounts step (701022 while codes are being
    generated) are recorded and retried by the poller, not raised.
    """
    return license_order_sync_by_id(order_id=order.order_id, provider=order.provider, source=source)


def license_order_sync_by_id(
    *, order_id: str, provider: Provider | None = None, source: str = "poll"
) -> LicenseOrder:
    """Mirror order ``order_id`` from WeCom (creating the row if unknown); return it."""
    existing = LicenseOrder.objects.filter(order_id=order_id).select_related("corp").first()
    provider = (
        provider
        or (existing and existing.provider)
        or license_provider(corp=existing.corp if existing else None)
    )
    api = license_api(provider)
    try:
        data = api.get_order(order_id=order_id).get("order") or {}
        order = _order_observe(order_id=order_id, data=data, provider=provider, source=source)
        if order.order_type == OrderType.MULTI_CORP:
            _union_order_sync(api, order, provider=provider, source=source)
    except (WeComError, LicenseError) as exc:
        if existing is not None:
            existing.refresh_from_db()
            _schedule(existing, error=error_text(exc))
        raise
    error = ""
    if order_needs_accounts(order):
        try:
            license_order_accounts_sync(order=order, api=api)
        except WeComError as exc:
            # 701022 (codes still generating) is the expected case: try again shortly.
            error = error_text(exc)
            logger.info("accounts of order %s not synced yet: %s", order_id, error)
        order.refresh_from_db()
    _schedule(order, error=error)
    order.refresh_from_db()
    return order


def _union_order_sync(
    api: ProviderApi, parent: LicenseOrder, *, provider: Provider, source: str
) -> None:
    """Mirror the sub-orders of a multi-corp order (one per corp) and link them."""
    for item in api.get_union_order_all(order_id=parent.order_id):
        sub_id = item.get("sub_order_id")
        if not sub_id:
            continue
        sub = LicenseOrder.objects.filter(order_id=sub_id).first()
        if sub is not None and sub.is_terminal and not order_needs_accounts(sub):
            LicenseOrder.objects.filter(pk=sub.pk, parent__isnull=True).update(parent=parent)
            continue
        data = api.get_order(order_id=sub_id).get("order") or {}
        sub = _order_observe(
            order_id=sub_id, data=data, provider=provider, source=source, parent=parent
        )
        if order_needs_accounts(sub):
            try:
                license_order_accounts_sync(order=sub, api=api)
            except WeComError as exc:
                logger.info("accounts of sub-order %s not synced yet: %s", sub_id, exc)
        sub.refresh_from_db()
        _schedule(sub)


def license_order_cancel(*, order: LicenseOrder) -> LicenseOrder:
    """Cancel an unpaid order in WeCom (701084/701169 if it is not unpaid); return it."""
    if order.status != OrderStatus.UNPAID:
        raise LicenseError(f"order {order.order_id} is not awaiting payment")
    api = license_api(order.provider, corp=order.corp)
    is_multi = order.order_type == OrderType.MULTI_CORP
    corp = order.corp
    if corp is None and not is_multi:
        raise LicenseError(f"order {order.order_id} has no corp")
    try:
        api.cancel_order(order_id=order.order_id, corpid=None if corp is None else corp.corpid)
    except WeComApiError:
        # Paid or closed meanwhile: mirror what WeCom says, then report the refusal.
        license_order_sync(order=order, source="cancel")
        raise
    license_order_transition(order=order, to=OrderStatus.CANCELLED, source="cancel")
    for sub in order.sub_orders.all():
        license_order_transition(order=sub, to=OrderStatus.CANCELLED, source="cancel")
    return license_order_sync(order=order, source="cancel")


def license_order_event(
    *,
    order_id: str,
    status: int,
    corpid: str | None,
    source: str,
    buyer_userid: str | None = None,
    at: int | None = None,
) -> LicenseOrder:
    """Apply a callback's news about an order (paid, refunded, refund rejected).

    The move is applied from the callback alone (so it counts even when WeCom is
    unreachable right now); then the order is read back in full. A read failure
    leaves the order due for the poller instead of failing the callback.
    """
    order = LicenseOrder.objects.filter(order_id=order_id).first()
    if order is None:
        now = timezone.now()
        try:
            with transaction.atomic():
                order = LicenseOrder.objects.create(
                    order_id=order_id,
                    corp=corp_for_id(corpid) if corpid else None,
                    status=status,
                    status_source=source[:32],
                    status_changed_at=now,
                    buyer_userid=buyer_userid or "",
                    paid_at=from_unix(at) if status in ORDER_HAS_ACCOUNTS else None,
                    next_sync_at=now,
                )
                _order_feed(order)
        except IntegrityError:
            order = LicenseOrder.objects.get(order_id=order_id)
    license_order_transition(order=order, to=status, source=source)
    fill = LicenseOrder.objects.filter(pk=order.pk)
    if buyer_userid:
        fill.filter(buyer_userid="").update(buyer_userid=buyer_userid)
    if status in ORDER_HAS_ACCOUNTS and at:
        fill.filter(paid_at__isnull=True).update(paid_at=from_unix(at))
    try:
        return license_order_sync(order=order, source=source)
    except (WeComError, LicenseError) as exc:
        logger.warning("order %s: read after %s failed: %s", order_id, source, error_text(exc))
        LicenseOrder.objects.filter(pk=order.pk).update(next_sync_at=timezone.now())
        order.refresh_from_db()
        return order


def license_orders_claim_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Return ids of due orders, each claimed for POLL_LEASE so one poll runs at a time.

    The claim is a conditional UPDATE on the ``next_sync_at`` that was read: if two
    beats (or workers) race, each order goes to exactly one of them.
    """
    now = now or timezone.now()
    claimed = []
    rows = selectors.license_orders_due(now=now).values_list("pk", "next_sync_at")[:limit]
    for pk, due in rows:
        if LicenseOrder.objects.filter(pk=pk, next_sync_at=due).update(
            next_sync_at=now + POLL_LEASE
        ):
            claimed.append(pk)
    return claimed
