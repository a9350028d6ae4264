"""Writes for paid-app orders: mirror what WeCom says, and only ever move forward.

- **WeCom is the truth.** A callback only names an order; ``app_order_sync_by_id``
  reads it (``service/get_order``) and applies the answer. The reconciler applies
  ``get_order_list`` items the same way (``app_order_observe``).
- **Forward only.** ``app_order_transition`` is one conditional UPDATE on the statuses
  that may precede the target (``APP_ORDER_PREDECESSORS``): a slow poll holding an old
  answer and a callback racing it can never move an order back; the loser updates 0 rows.
- **Every move is recorded** (``AppOrderStatusChange``) and published once on the feed
  (``app_order.<what>``, keyed by order and status).
- Network calls happen outside transactions; no row lock is held while WeCom answers.
"""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from django.db import IntegrityError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from licensing.app_orders import editions
from licensing.app_orders.editions import PaidAppError
from licensing.app_orders.models import APP_ORDER_FINAL
from licensing.app_orders.models import APP_ORDER_PREDECESSORS
from licensing.app_orders.models import APP_ORDER_TRANSITIONS
from licensing.app_orders.models import EDITION_MOVING_STATUSES
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import AppOrderStatus
from licensing.app_orders.models import AppOrderStatusChange
from licensing.services.common import error_text as _error_text
from licensing.services.common import poll_backoff
from tenants.feed import feed_publish
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Suite
from wecom.errors import WeComError
from wecom.paid_apps import AppOrderEvent
from wecom.paid_apps import AppOrderInfo

logger = logging.getLogger(__name__)

# A claimed-but-unfinished poll is retried after this (the worker may have died).
POLL_LEASE = timedelta(minutes=5)
# (first delay, cap) in seconds of the poll backoff per status; doubled per quiet poll.
# A paid order is watched because a refund request (→ 4) has no callback.
POLL_BACKOFF: dict[int, tuple[int, int]] = {
    AppOrderStatus.UNPAID: (60, 30 * 60),
    AppOrderStatus.PAID: (60 * 60, 24 * 60 * 60),
    AppOrderStatus.REFUNDING: (10 * 60, 6 * 60 * 60),
}
# Feed event type per status the mirror enters (plus app_order.created for a new row).
FEED_TYPES: dict[int, str] = {  # by status (an int: the column, or a member)
    AppOrderStatus.PAID: "app_order.paid",
    AppOrderStatus.CANCELLED: "app_order.cancelled",
    AppOrderStatus.EXPIRED: "app_order.expired",
    AppOrderStatus.REFUNDING: "app_order.refund_requested",
    AppOrderStatus.REFUNDED: "app_order.refunded",
    AppOrderStatus.REFUND_REJECTED: "app_order.refund_rejected",
}


def _dt(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value and value > 0 else None


def _ts(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


_backoff = poll_backoff  # licence orders' polling curve: ×2 to a cap, ±10 % jitter


# --- feed ------------------------------------------------------------------------------------


def order_data(order: AppOrder) -> dict[str, Any]:
    """The facts products get about an order (ids and amounts, no secret exists here)."""
    return {
        "order_id": order.order_id,
        "suite_id": order.suite.suite_id,
        "corpid": order.corp.corpid,
        "status": order.status,
        "order_type": order.order_type,
        "edition_id": order.edition_id,
        "edition_name": order.edition_name,
        "price": order.price,
        "user_count": order.user_count,
        "order_period": order.order_period,
        "order_time": _ts(order.order_time),
        "paid_time": _ts(order.paid_time),
        "begin_time": _ts(order.begin_time),
        "end_time": _ts(order.end_time),
    }


def _publish(order: AppOrder, type_: str) -> None:
    feed_publish(
        type=type_,
        source_key=f"{type_}:{order.order_id}",
        suite=order.suite,
        corp=order.corp,
        data=order_data(order),
    )


# --- status -----------------------------------------------------------------------------------


def app_order_transition(*, order: AppOrder, to: int, source: str) -> bool:
    """Move ``order`` to ``to`` if that is forward from its current status; True if moved."""
    if to not in APP_ORDER_TRANSITIONS:
        raise PaidAppError(f"order {order.order_id}: unknown order_status {to!r}")
    now = timezone.now()
    with transaction.atomic():
        # Lock the row and read the status we move from: the history row names the status
        # this UPDATE really replaced (concurrent moves of one order queue up here).
        before = (
            AppOrder.objects.select_for_update()
            .filter(pk=order.pk)
            .values_list("status", flat=True)
            .first()
        )
        moved = AppOrder.objects.filter(pk=order.pk, status__in=APP_ORDER_PREDECESSORS[to]).update(
            status=to,
            status_changed_at=now,
            status_source=source[:32],
            sync_attempts=0,
            updated_at=now,
        )
        order.refresh_from_db()
        if moved:
            AppOrderStatusChange.objects.create(
                order=order, from_status=before, to_status=to, source=source[:32], at=now
            )
            logger.info("app order %s %s → %s (%s)", order.order_id, before, to, source)
            _publish(order, FEED_TYPES[to])
    return bool(moved)


def _snapshot(info: AppOrderInfo) -> dict[str, Any]:
    """The modelled fields of an order answer (status excluded: it only moves forward)."""
    return {
        "order_type": info.order_type,
        "order_from": info.order_from,
        "edition_id": info.edition_id[:64],
        "edition_name": info.edition_name[:128],
        "price": info.price,
        "user_count": info.user_count,
        "order_period": info.order_period,
        "order_time": _dt(info.order_time),
        "paid_time": _dt(info.paid_time),
        "begin_time": _dt(info.begin_time),
        "end_time": _dt(info.end_time),
        "operator_id": info.operator_id[:128],
        "operator_corpid": info.operator_corpid[:64],
        "appid": info.appid,
        "service_share_amount": info.service_share_amount,
        "platform_share_amount": info.platform_share_amount,
        "dealer_share_amount": info.dealer_share_amount,
        "dealer_corpid": info.dealer_corpid[:64],
        "dealer_corp_name": info.dealer_corp_name[:200],
        "raw": dict(info.raw),
    }


def _create(info: AppOrderInfo, suite: Suite, corp: Corp, source: str, test_mode: bool):
    now = timezone.now()
    # A callback does not say whether the install is a test one; the tenant does.
    test_mode = (
        test_mode
        or Authorization.objects.filter(suite=suite, corp=corp, is_test_install=True).exists()
    )
    with transaction.atomic():
        order = AppOrder.objects.create(
            order_id=info.orderid,
            suite=suite,
            corp=corp,
            status=info.order_status,
            status_source=source[:32],
            status_changed_at=now,
            test_mode=test_mode,
            next_sync_at=now,
            **_snapshot(info),
        )
        AppOrderStatusChange.objects.create(
            order=order, from_status=None, to_status=order.status, source=source[:32], at=now
        )
        _publish(order, "app_order.created")
        if order.status in FEED_TYPES:
            _publish(order, FEED_TYPES[order.status])
    return order


def app_order_observe(
    *, info: AppOrderInfo, suite: Suite, source: str, test_mode: bool | None = None
) -> tuple[AppOrder, bool]:
    """Apply one WeCom answer about an order; return (the row, whether its status moved).

    A new order is created in the status WeCom gives; a known one moves forward to it
    (or stays, if WeCom's answer is older than what we hold).
    """
    if not info.paid_corpid:
        raise PaidAppError(f"order {info.orderid} names no paid_corpid")
    corp, _ = Corp.objects.get_or_create(corpid=info.paid_corpid)
    try:
        return _create(info, suite, corp, source, bool(test_mode)), True
    except IntegrityError:
        order = AppOrder.objects.select_related("suite", "corp").get(order_id=info.orderid)
    moved = app_order_transition(order=order, to=info.order_status, source=source)
    # A slower reader may hold an older answer than a concurrent writer: the fields are
    # stored only while the row is still in the status that answer was read in.
    fields = _snapshot(info)
    AppOrder.objects.filter(pk=order.pk, status=info.order_status).update(
        **fields, updated_at=timezone.now()
    )
    if test_mode:
        AppOrder.objects.filter(pk=order.pk).update(test_mode=True)
    order.refresh_from_db()
    return order, moved


def app_order_schedule(order: AppOrder, *, error: str = "") -> None:
    """Set when the poller reads ``order`` again (None: final, nothing left to learn)."""
    now = timezone.now()
    due: datetime | None
    if order.status in APP_ORDER_FINAL:
        due = None
    elif order.status == AppOrderStatus.PAID and order.end_time and order.end_time <= now:
        due = None  # [unknown] refunds after the paid term: the reconciler still looks
    else:
        due = now + _backoff(order.sync_attempts, *POLL_BACKOFF[order.status])
    # Conditional on the status planned for: a concurrent move has reset the schedule
    # its own way (attempts back to 0) and must not be overwritten.
    AppOrder.objects.filter(pk=order.pk, status=order.status).update(
        next_sync_at=due,
        sync_attempts=F("sync_attempts") + 1,
        last_synced_at=now,
        last_sync_error=error[:300],
        updated_at=now,
    )


def _after_move(order: AppOrder, source: str) -> None:
    """A paid or refunded order changes the edition: read it now, whatever callbacks do."""
    if order.status in EDITION_MOVING_STATUSES:
        editions.edition_refresh_for(
            suite=order.suite, corp=order.corp, source="order", order_id=order.order_id
        )


# --- sync -------------------------------------------------------------------------------------


def app_order_sync_by_id(*, suite: Suite, order_id: str, source: str = "poll") -> AppOrder:
    """Read order ``order_id`` of ``suite`` from WeCom and mirror it; return the row.

    Raises WeComError when the order cannot be read (a known row records the error and
    keeps its next poll).
    """
    existing = AppOrder.objects.filter(order_id=order_id).first()
    try:
        info = editions.paid_app_api(suite).get_app_order(orderid=order_id)
        order, moved = app_order_observe(info=info, suite=suite, source=source)
    except (WeComError, PaidAppError) as exc:
        if existing is not None:
            existing.refresh_from_db()
            app_order_schedule(existing, error=_error_text(exc))
        raise
    app_order_schedule(order)
    if moved:
        _after_move(order, source)
    order.refresh_from_db()
    return order


def app_order_sync(*, order: AppOrder, source: str = "poll") -> AppOrder:
    return app_order_sync_by_id(suite=order.suite, order_id=order.order_id, source=source)


def app_order_event(*, suite: Suite, event: AppOrderEvent) -> AppOrder:
    """Act on an order callback: read the order it names (and, for change_order, the
    one it replaces, then link the two). Duplicates and stale events are harmless:
    each only makes us read WeCom's current answer."""
    order = app_order_sync_by_id(suite=suite, order_id=event.order_id, source="callback")
    if event.info_type == "change_order" and event.old_order_id:
        try:
            app_order_sync_by_id(suite=suite, order_id=event.old_order_id, source="callback")
        except (WeComError, PaidAppError) as exc:
            logger.info("replaced order %s unreadable: %s", event.old_order_id, _error_text(exc))
        app_order_link(old_order_id=event.old_order_id, new_order=order)
        order.refresh_from_db()
    return order


def app_order_link(*, old_order_id: str, new_order: AppOrder) -> None:
    """Record that a price change replaced ``old_order_id`` by ``new_order`` (once)."""
    with transaction.atomic():
        linked = AppOrder.objects.filter(pk=new_order.pk, replaces="").update(
            replaces=old_order_id[:64]
        )
        AppOrder.objects.filter(order_id=old_order_id, replaced_by="").update(
            replaced_by=new_order.order_id
        )
        if linked:
            feed_publish(
                type="app_order.replaced",
                source_key=f"app_order.replaced:{old_order_id}:{new_order.order_id}",
                suite=new_order.suite,
                corp=new_order.corp,
                data={**order_data(new_order), "replaces": old_order_id},
            )


def app_orders_claim_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Return ids of due orders, each claimed for POLL_LEASE so one poll runs at a time.

    The claim is a conditional UPDATE on the ``next_sync_at`` that was read: if two
    beats (or workers) race, each order goes to exactly one of them.
    """
    now = now or timezone.now()
    claimed = []
    rows = (
        AppOrder.objects.filter(next_sync_at__lte=now)
        .order_by("next_sync_at")
        .values_list("pk", "next_sync_at")[:limit]
    )
    for pk, due in rows:
        if AppOrder.objects.filter(pk=pk, next_sync_at=due).update(next_sync_at=now + POLL_LEASE):
            claimed.append(pk)
    return claimed
