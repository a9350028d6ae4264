"""Writes for the licensing app: orders, jobs, accounts, activation, reconciliation.

Every WeCom call goes through the protocol library (``tenants.wecom.provider_api``)
and happens outside database transactions. Two rules hold everywhere:

- **Order status only moves forward.** ``license_order_transition`` is a conditional
  UPDATE on the current status (``ORDER_PREDECESSORS``), so a callback and a poll
  racing on one order can never move it back; the loser updates 0 rows.
- **Batch results are never dropped.** A platform batch (``LicenseBatch``) is split
  into ≤1000-item WeCom calls; every refused item becomes a ``LicenseBatchItemError``
  with WeCom's errcode, even when the call as a whole answered errcode 0.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TextIO

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction
from django.db.models import F
from django.db.models import Q
from django.utils import timezone

from licensing import selectors
from licensing.models import ORDER_HAS_ACCOUNTS
from licensing.models import ORDER_PREDECESSORS
from licensing.models import ORDER_TERMINAL
from licensing.models import ORDER_TRANSITIONS
from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import AppLicenseInfo
from licensing.models import CorpLicenseSettings
from licensing.models import LicenseAccount
from licensing.models import LicenseBatch
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseEventReceipt
from licensing.models import LicenseNewOrderJob
from licensing.models import LicenseOrder
from licensing.models import LicenseRenewJob
from licensing.models import LicenseTransfer
from licensing.models import OrderStatus
from licensing.models import OrderType
from licensing.models import UnlicensedMember
from tenants.feed import feed_publish
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Provider
from tenants.models import Suite
from tenants.wecom import provider_api
from wecom.client import ProviderApi
from wecom.client import chunked
from wecom.endpoints import BATCH_MAX_ITEMS
from wecom.errors import WeComApiError
from wecom.errors import WeComError
from wecom_provider.progress import Progress

logger = logging.getLogger(__name__)

DAY = 86400
LIST_ORDER_WINDOW = timedelta(days=31)  # §6.3: start_time..end_time spans ≤31 days
MULTI_CORP_ITEMS_PER_CALL = 10  # §6.3: create_new_order_job takes ≤10 buy_list items
# Errcode recorded for an item whose call got no answer (timeout, connection, 5xx).
TRANSPORT_ERRCODE = -1
# A claimed-but-unfinished poll is retried after this (the worker may have died).
POLL_LEASE = timedelta(minutes=5)
# (first delay, cap) in seconds of the poll backoff per status; doubled per quiet poll.
POLL_BACKOFF: dict[int, tuple[int, int]] = {
    OrderStatus.UNPAID: (60, 30 * 60),
    OrderStatus.PAID: (60 * 60, 24 * 60 * 60),  # a refund request (→4) has no callback
    OrderStatus.REFUNDING: (10 * 60, 6 * 60 * 60),
}
ACCOUNTS_BACKOFF = (30, 30 * 60)  # 701022: codes are still being generated
NEW_ORDER_JOB_BACKOFF = (10, 10 * 60)
# active_account errcodes after which another free code may work (taken, unknown, too old).
TRY_NEXT_CODE_ERRCODES = frozenset({701003, 701012, 701021})


class LicenseError(Exception):
    """A license operation cannot run (message names ids, never a secret)."""


class LicenseBatchFailed(LicenseError):
    """WeCom accepted no item of a batch; ``batch`` holds every item's errcode."""

    def __init__(self, message: str, batch: LicenseBatch) -> None:
        super().__init__(message)
        self.batch = batch


# --- small helpers ----------------------------------------------------------------------


def _dt(value: Any) -> datetime | None:
    """Return WeCom's Unix seconds as an aware datetime; 0/None/garbage mean "none"."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None


def _ts(value: datetime) -> int:
    return int(value.timestamp())


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _key(*parts: Any) -> str:
    """Return a ≤128-char idempotency key (FeedEvent.source_key, receipts)."""
    text = ":".join(str(p) for p in parts)
    if len(text) <= 128:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:40]
    return f"{text[:80]}…{digest}"


def _corp(corpid: str) -> Corp:
    """Return the Corp row for a corpid WeCom gave us, creating a bare one if new.

    License events can name a corp before its authorization reached us (or after a
    history-only reconcile); the row is filled in by tenants on install.
    """
    corp, _ = Corp.objects.get_or_create(corpid=corpid)
    return corp


def license_provider(*, corp: Corp | None = None) -> Provider:
    """Return the provider whose license APIs cover ``corp`` (usually the only one)."""
    if corp is not None:
        provider = Provider.objects.filter(suites__authorizations__corp=corp).order_by("pk").first()
        if provider is not None:
            return provider
    provider = Provider.objects.order_by("pk").first()
    if provider is None:
        raise LicenseError("no provider is registered")
    return provider


def license_write_guard(*, authorization) -> None:
    """Refuse a product's licence write for a tenant that is not active (issue 14 §3).

    Reads the status from the database (not the caller's copy): a suspend, cancel or
    dissolution committed in any process refuses the very next write.
    """
    from tenants.credentials import AuthorizationInactive
    from tenants.models import Authorization

    status = (
        Authorization.objects.filter(pk=authorization.pk).values_list("status", flat=True).first()
    )
    if status != Authorization.Status.ACTIVE:
        raise AuthorizationInactive(f"authorization {authorization} is {status}")


def _api(provider: Provider | None = None, *, corp: Corp | None = None) -> ProviderApi:
    return provider_api(provider or license_provider(corp=corp))


def _backoff(attempts: int, base: int, cap: int) -> timedelta:
    delay = min(cap, base * 2 ** min(attempts, 20))
    # ±10 % jitter: orders created together must not be polled in lock-step forever.
    return timedelta(seconds=delay * random.uniform(0.9, 1.1))


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


# --- order status -------------------------------------------------------------------------


def _order_feed(order: LicenseOrder) -> None:
    """Publish what an order's current status means to products (idempotent)."""
    data = {
        "order_id": order.order_id,
        "order_type": order.order_type,
        "status": order.status,
        "corpid": order.corp.corpid if order.corp_id else None,
        "base_count": order.base_count,
        "external_contact_count": order.external_contact_count,
        "price": order.price,
    }
    if order.status in ORDER_HAS_ACCOUNTS:
        feed_publish(
            type="license.paid",
            source_key=_key("license.paid", order.order_id),
            corp=order.corp,
            data=data,
        )
    if order.status == OrderStatus.REFUNDED:
        feed_publish(
            type="license.refunded",
            source_key=_key("license.refunded", order.order_id),
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
        "order_type": _int(data.get("order_type"), 0) or None,
        "base_count": _int(count.get("base_count")),
        "external_contact_count": _int(count.get("external_contact_count")),
        "duration_months": _int(duration.get("months")),
        "duration_days": _int(duration.get("days")),
        "new_expire_time": _dt(duration.get("new_expire_time")),
        "price": _int(data.get("price")),
        "created_time": _dt(data.get("create_time")),
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
    status = _int(data.get("order_status"), -1)
    if status not in ORDER_TRANSITIONS:
        raise LicenseError(f"order {order_id}: unknown order_status {data.get('order_status')!r}")
    corpid = data.get("corpid")
    corp = _corp(corpid) if isinstance(corpid, str) and corpid else None
    snapshot = _order_snapshot(data)
    paid_at = _dt(data.get("pay_time"))
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


def _needs_accounts(order: LicenseOrder) -> bool:
    return (
        order.status in ORDER_HAS_ACCOUNTS
        and order.accounts_synced_at is None
        and order.order_type != OrderType.MULTI_CORP
    )


def _schedule(order: LicenseOrder, *, error: str = "") -> None:
    """Set when the poller looks at ``order`` again (None: never, it is settled)."""
    now = timezone.now()
    if _needs_accounts(order):
        due: datetime | None = now + _backoff(order.sync_attempts, *ACCOUNTS_BACKOFF)
    elif order.status in ORDER_TERMINAL or (
        # A multi-corp parent only knows 0–3; refunds happen on its sub-orders.
        order.order_type == OrderType.MULTI_CORP and order.status == OrderStatus.PAID
    ):
        due = None
    else:
        due = now + _backoff(order.sync_attempts, *POLL_BACKOFF[order.status])
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
    api = _api(provider)
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
        logger.warning("order %s created; first read failed: %s", order_id, _error_text(exc))
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
    api = _api(provider)
    try:
        data = api.get_order(order_id=order_id).get("order") or {}
        order = _order_observe(order_id=order_id, data=data, provider=provider, source=source)
        if order.order_type == OrderType.MULTI_CORP:
            _union_order_sync(api, order, provider=provider, source=source)
    except (WeComError, LicenseError) as exc:
        if existing is not None:
            existing.refresh_from_db()
            _schedule(existing, error=_error_text(exc))
        raise
    error = ""
    if _needs_accounts(order):
        try:
            license_order_accounts_sync(order=order, api=api)
        except WeComError as exc:
            # 701022 (codes still generating) is the expected case: try again shortly.
            error = _error_text(exc)
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
        if sub is not None and sub.is_terminal and not _needs_accounts(sub):
            LicenseOrder.objects.filter(pk=sub.pk, parent__isnull=True).update(parent=parent)
            continue
        data = api.get_order(order_id=sub_id).get("order") or {}
        sub = _order_observe(
            order_id=sub_id, data=data, provider=provider, source=source, parent=parent
        )
        if _needs_accounts(sub):
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
    api = _api(order.provider, corp=order.corp)
    is_multi = order.order_type == OrderType.MULTI_CORP
    try:
        api.cancel_order(order_id=order.order_id, corpid=None if is_multi else order.corp.corpid)
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
                    corp=_corp(corpid) if corpid else None,
                    status=status,
                    status_source=source[:32],
                    status_changed_at=now,
                    buyer_userid=buyer_userid or "",
                    paid_at=_dt(at) if status in ORDER_HAS_ACCOUNTS else None,
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
        fill.filter(paid_at__isnull=True).update(paid_at=_dt(at))
    try:
        return license_order_sync(order=order, source=source)
    except (WeComError, LicenseError) as exc:
        logger.warning("order %s: read after %s failed: %s", order_id, source, _error_text(exc))
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


# --- accounts (active codes) -------------------------------------------------------------


# Fields one active_info object determines (written on every re-read).
ACCOUNT_INFO_FIELDS = [
    "type",
    "status",
    "userid",
    "created_time",
    "active_time",
    "expire_time",
    "merged_to_code",
    "merged_from_code",
    "shared_to_corp",
    "shared_from_corp",
    "raw",
    "invalid_at",
    "info_synced_at",
    "updated_at",
]


def _account_fields(
    info: Mapping[str, Any], corps: dict[str, Corp], now: datetime
) -> dict[str, Any]:
    def corp_of(corpid: Any) -> Corp | None:
        if not isinstance(corpid, str) or not corpid:
            return None
        if corpid not in corps:
            corps[corpid] = _corp(corpid)
        return corps[corpid]

    merge = info.get("merge_info") or {}
    share = info.get("share_info") or {}
    return {
        "type": _int(info.get("type"), AccountType.BASE),
        "status": _int(info.get("status"), AccountStatus.UNBOUND),
        "userid": info.get("userid") or "",
        "created_time": _dt(info.get("create_time")),
        "active_time": _dt(info.get("active_time")),
        "expire_time": _dt(info.get("expire_time")),
        "merged_to_code": merge.get("to_active_code") or "",
        "merged_from_code": merge.get("from_active_code") or "",
        "shared_to_corp": corp_of(share.get("to_corpid")),
        "shared_from_corp": corp_of(share.get("from_corpid")),
        "raw": dict(info),
        "invalid_at": None,
        "info_synced_at": now,
        "updated_at": now,
    }


def _accounts_apply(
    corp: Corp, infos: Iterable[Mapping[str, Any]], *, order: LicenseOrder | None = None
) -> list[LicenseAccount]:
    """Upsert active_info objects as LicenseAccount rows of ``corp``; return them.

    One INSERT … ON CONFLICT per 500 codes: a concurrent writer of the same code
    cannot make it fail, the last read wins.
    """
    now = timezone.now()
    corps: dict[str, Corp] = {corp.corpid: corp}
    # ON CONFLICT cannot touch one row twice in a statement: one info per code.
    unique = {i["active_code"]: i for i in infos if i.get("active_code")}
    rows = [
        LicenseAccount(
            corp=corp, active_code=code, order=order, **_account_fields(info, corps, now)
        )
        for code, info in unique.items()
    ]
    if not rows:
        return []
    LicenseAccount.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["corp", "active_code"],
        update_fields=[*ACCOUNT_INFO_FIELDS, *(["order"] if order is not None else [])],
    )
    return rows


def license_accounts_refresh(
    *, corp: Corp, active_codes: Sequence[str], api: ProviderApi | None = None
) -> int:
    """Re-read ``active_codes`` of ``corp`` (≤1000 per call); return how many WeCom knows.

    Codes WeCom lists as invalid (e.g. unbound codes of a refunded order) are marked
    ``invalid_at`` and recorded as item errors of an ``account_info`` batch.
    """
    codes = list(dict.fromkeys(c for c in active_codes if c))
    if not codes:
        return 0
    api = api or _api(corp=corp)
    known = 0
    invalid: list[str] = []
    for chunk in chunked(codes, BATCH_MAX_ITEMS):
        answer = api.batch_get_active_info_by_code(corpid=corp.corpid, active_code_list=chunk)
        infos = answer.get("active_info_list") or []
        _accounts_apply(corp, infos)
        known += len(infos)
        invalid.extend(answer.get("invalid_active_code_list") or [])
    if invalid:
        now = timezone.now()
        LicenseAccount.objects.filter(
            corp=corp, active_code__in=invalid, invalid_at__isnull=True
        ).update(invalid_at=now, updated_at=now)
        batch = LicenseBatch.objects.create(
            operation=LicenseBatch.Operation.ACCOUNT_INFO,
            corp=corp,
            total=len(codes),
            succeeded=len(codes) - len(invalid),
            failed=len(invalid),
            calls=-(-len(codes) // BATCH_MAX_ITEMS),
        )
        LicenseBatchItemError.objects.bulk_create(
            LicenseBatchItemError(
                batch=batch,
                item={"active_code": code},
                errcode=701021,
                errmsg="listed in invalid_active_code_list",
            )
            for code in invalid
        )
    return known


def license_order_accounts_sync(*, order: LicenseOrder, api: ProviderApi | None = None) -> int:
    """Mirror the accounts of a paid order and their details; return how many.

    list_order_account pages through the codes (701022 while they are generated:
    raised as WeComBusy, the caller retries later); batch_get_active_info_by_code
    then reads each code's status, binding and times.
    """
    order.refresh_from_db()
    if order.corp_id is None:
        raise LicenseError(f"order {order.order_id} has no corp yet")
    api = api or _api(order.provider, corp=order.corp)
    items = list(api.list_order_account_all(order_id=order.order_id))
    if order.order_type == OrderType.RENEW:
        count = _renewed_accounts_sync(order, items, api)
    else:
        codes = [i["active_code"] for i in items if i.get("active_code")]
        LicenseAccount.objects.bulk_create(
            [
                LicenseAccount(
                    corp=order.corp,
                    active_code=i["active_code"],
                    order=order,
                    type=_int(i.get("type"), AccountType.BASE),
                    userid=i.get("userid") or "",
                    status=AccountStatus.ACTIVE if i.get("userid") else AccountStatus.UNBOUND,
                )
                for i in items
                if i.get("active_code")
            ],
            ignore_conflicts=True,
        )
        LicenseAccount.objects.filter(
            corp=order.corp, active_code__in=codes, order__isnull=True
        ).update(order=order)
        license_accounts_refresh(corp=order.corp, active_codes=codes, api=api)
        count = len(codes)
    now = timezone.now()
    LicenseOrder.objects.filter(pk=order.pk).update(accounts_synced_at=now, updated_at=now)
    return count


def _renewed_accounts_sync(
    order: LicenseOrder, items: list[Mapping[str, Any]], api: ProviderApi
) -> int:
    """A renewal lists userids: re-read their codes (known ones in ≤1000 batches)."""
    userids = {i["userid"] for i in items if i.get("userid")}
    known = selectors.license_accounts_of_users(corp=order.corp, userids=userids)
    codes = list(known.values_list("active_code", flat=True))
    license_accounts_refresh(corp=order.corp, active_codes=codes, api=api)
    for userid in sorted(userids - set(known.values_list("userid", flat=True))):
        license_user_info_sync(corp=order.corp, userid=userid, api=api)
    return len(userids)


@dataclass(frozen=True)
class UserLicenseInfo:
    corpid: str
    userid: str
    active_status: int  # 0 not activated, 1 activated
    accounts: list[LicenseAccount]


def license_user_info_sync(
    *, corp: Corp, userid: str, api: ProviderApi | None = None
) -> UserLicenseInfo:
    """Read one member's activation info from WeCom, mirror it and return it."""
    api = api or _api(corp=corp)
    answer = api.get_active_info_by_user(corpid=corp.corpid, userid=userid)
    wecom_codes = [
        i["active_code"] for i in answer.get("active_info_list") or [] if i.get("active_code")
    ]
    # Codes we believe bound to the member but WeCom no longer lists (expired, merged,
    # transferred) are re-read too, so the mirror drops the stale binding.
    ours = list(
        selectors.license_accounts_of_users(corp=corp, userids={userid}).values_list(
            "active_code", flat=True
        )
    )
    license_accounts_refresh(corp=corp, active_codes=[*wecom_codes, *ours], api=api)
    accounts = list(LicenseAccount.objects.filter(corp=corp, active_code__in=wecom_codes))
    return UserLicenseInfo(
        corpid=corp.corpid,
        userid=userid,
        active_status=_int(answer.get("active_status")),
        accounts=accounts,
    )


def _resolve_unlicensed(corp: Corp, userids: Iterable[str]) -> None:
    now = timezone.now()
    UnlicensedMember.objects.filter(
        corp=corp, userid__in=list(userids), resolved_at__isnull=True
    ).update(resolved_at=now)


def license_account_activate(
    *,
    corp: Corp,
    userid: str,
    account_type: int = AccountType.BASE,
    active_code: str | None = None,
) -> LicenseAccount:
    """Activate a license for one member; return the account now bound to them.

    Without ``active_code`` the free code with the earliest activation deadline is
    used (what WeCom itself would pick). If WeCom says that code is taken or dead,
    the next one is tried; with no known free code, WeCom picks (active_account_by_type).
    WeCom's refusals (701082 re-activation too early, 701088 outside the visible
    range, …) are raised as WeComApiError.
    """
    api = _api(corp=corp)
    if active_code:
        api.active_account(corpid=corp.corpid, active_code=active_code, userid=userid)
        license_accounts_refresh(corp=corp, active_codes=[active_code], api=api)
        _resolve_unlicensed(corp, [userid])
        return LicenseAccount.objects.get(corp=corp, active_code=active_code)
    tried: set[str] = set()
    for _ in range(5):
        candidate = selectors.license_account_pick_unused(
            corp=corp, account_type=account_type, exclude=tried
        )
        if candidate is None:
            break
        tried.add(candidate.active_code)
        try:
            api.active_account(corpid=corp.corpid, active_code=candidate.active_code, userid=userid)
        except WeComApiError as exc:
            if exc.errcode not in TRY_NEXT_CODE_ERRCODES:
                raise
            logger.info("code of %s unusable (errcode %s); trying another", corp, exc.errcode)
            license_accounts_refresh(corp=corp, active_codes=[candidate.active_code], api=api)
            continue
        license_accounts_refresh(corp=corp, active_codes=[candidate.active_code], api=api)
        _resolve_unlicensed(corp, [userid])
        return LicenseAccount.objects.get(pk=candidate.pk)
    api.active_account_by_type(corpid=corp.corpid, userid=userid, account_type=account_type)
    info = license_user_info_sync(corp=corp, userid=userid, api=api)
    _resolve_unlicensed(corp, [userid])
    for account in info.accounts:
        if account.type == account_type:
            return account
    raise LicenseError(f"WeCom activated {userid} but lists no account of type {account_type}")


# --- batches ------------------------------------------------------------------------------


ItemKey = Callable[[Mapping[str, Any]], tuple]


def _item_outcomes(
    chunk: list[dict[str, Any]],
    results: list[Mapping[str, Any]],
    *,
    key: ItemKey,
    complete: bool,
) -> list[tuple[int, str]]:
    """Return (errcode, errmsg) per chunk item from WeCom's result list.

    ``complete``: WeCom answers one result per item, in order (activate, transfer);
    otherwise it lists failures only (share, renew, multi-corp), matched by key.
    """
    if complete and len(results) == len(chunk):
        return [(_int(r.get("errcode")), str(r.get("errmsg") or "")) for r in results]
    failures: dict[tuple, Mapping[str, Any]] = {}
    for result in results:
        failures.setdefault(key(result), result)
    outcomes = []
    for item in chunk:
        found = failures.get(key(item))
        if found is None:
            # A "complete" answer that lost an item is a failure we cannot explain.
            outcomes.append((TRANSPORT_ERRCODE, "no result for this item") if complete else (0, ""))
        else:
            outcomes.append(
                (_int(found.get("errcode"), TRANSPORT_ERRCODE), str(found.get("errmsg") or ""))
            )
    return outcomes


def _batch_run(
    batch: LicenseBatch,
    items: list[dict[str, Any]],
    *,
    send: Callable[[list[dict[str, Any]]], list[Mapping[str, Any]]],
    key: ItemKey,
    complete: bool,
    size: int = BATCH_MAX_ITEMS,
    on_chunk: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Send ``items`` in chunks of ``size``; record every refused item; return the accepted.

    A whole-call failure (701024 every item failed, a transport error…) marks every
    item of that chunk with that errcode: the next chunks still go out.
    """
    accepted: list[dict[str, Any]] = []
    errors: list[LicenseBatchItemError] = []
    for chunk in chunked(items, size):
        batch.calls += 1
        try:
            outcomes = _item_outcomes(chunk, send(chunk), key=key, complete=complete)
        except WeComError as exc:
            errcode = exc.errcode if exc.errcode is not None else TRANSPORT_ERRCODE
            logger.warning("license %s batch chunk failed: %s", batch.operation, _error_text(exc))
            outcomes = [(errcode, exc.errmsg)] * len(chunk)
        ok = []
        for item, (errcode, errmsg) in zip(chunk, outcomes, strict=True):
            if errcode:
                errors.append(
                    LicenseBatchItemError(
                        batch=batch, item=item, errcode=errcode, errmsg=errmsg[:300]
                    )
                )
            else:
                ok.append(item)
        accepted.extend(ok)
        if on_chunk is not None and ok:
            on_chunk(ok)
    LicenseBatchItemError.objects.bulk_create(errors)
    batch.succeeded += len(accepted)
    batch.failed += len(errors)
    batch.save(update_fields=["calls", "succeeded", "failed"])
    return accepted


def license_accounts_activate_batch(
    *, corp: Corp, items: Sequence[Mapping[str, str]], actor: str = "system"
) -> LicenseBatch:
    """Bind codes to members, ≤1000 per call; return the batch with per-item errors.

    ``items``: [{"active_code", "userid"}]. Activated codes are re-read afterwards.
    """
    api = _api(corp=corp)
    payload = [{"active_code": i["active_code"], "userid": i["userid"]} for i in items]
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.ACTIVATE, corp=corp, total=len(payload), actor=actor
    )

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.batch_active_account(corpid=corp.corpid, active_list=chunk)
        return answer.get("active_result") or []

    accepted = _batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("active_code"), i.get("userid")),
        complete=True,
    )
    license_accounts_refresh(corp=corp, active_codes=[i["active_code"] for i in accepted], api=api)
    _resolve_unlicensed(corp, {i["userid"] for i in accepted})
    return batch


def license_transfer(
    *,
    corp: Corp,
    transfers: Sequence[Mapping[str, str]],
    force: bool = False,
    actor: str = "system",
) -> LicenseBatch:
    """Move members' licenses to other members (≤1000 per call); return the batch.

    ``transfers``: [{"handover_userid", "takeover_userid"}]. A handover member that
    transferred through us within 30 days is refused locally with 701017 (WeCom's
    errcode for it) unless ``force`` (a member who left may transfer any time: WeCom
    decides). Everything WeCom refuses is stored with WeCom's errcode per item.
    """
    api = _api(corp=corp)
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.TRANSFER, corp=corp, total=len(transfers), actor=actor
    )
    payload, blocked = [], []
    now = timezone.now()
    for t in transfers:
        item = {"handover_userid": t["handover_userid"], "takeover_userid": t["takeover_userid"]}
        until = None
        if not force:
            until = selectors.license_transfer_blocked_until(
                corp=corp, handover_userid=item["handover_userid"], now=now
            )
        if until is not None:
            blocked.append(
                LicenseBatchItemError(
                    batch=batch,
                    item=item,
                    errcode=701017,
                    errmsg=f"transferred within 30 days; allowed again after {until.isoformat()}",
                    local=True,
                )
            )
        else:
            payload.append(item)
    if blocked:
        LicenseBatchItemError.objects.bulk_create(blocked)
        batch.failed = len(blocked)

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.batch_transfer_license(corpid=corp.corpid, transfer_list=chunk)
        return answer.get("transfer_result") or []

    accepted = _batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("handover_userid"), i.get("takeover_userid")),
        complete=True,
    )
    LicenseTransfer.objects.bulk_create(
        LicenseTransfer(
            corp=corp,
            handover_userid=i["handover_userid"],
            takeover_userid=i["takeover_userid"],
            batch=batch,
            transferred_at=now,
        )
        for i in accepted
    )
    users = {i["handover_userid"] for i in accepted} | {i["takeover_userid"] for i in accepted}
    if users:
        codes = list(
            selectors.license_accounts_of_users(corp=corp, userids=users).values_list(
                "active_code", flat=True
            )
        )
        license_accounts_refresh(corp=corp, active_codes=codes, api=api)
        known_takeovers = set(
            LicenseAccount.objects.filter(
                corp=corp, userid__in={i["takeover_userid"] for i in accepted}
            ).values_list("userid", flat=True)
        )
        for userid in sorted({i["takeover_userid"] for i in accepted} - known_takeovers):
            license_user_info_sync(corp=corp, userid=userid, api=api)
    return batch


def license_codes_share(
    *,
    from_corp: Corp,
    to_corp: Corp,
    active_codes: Sequence[str],
    corp_link_type: int = 0,
    actor: str = "system",
) -> LicenseBatch:
    """Share unbound codes to a downstream corp (≤1000 per call); return the batch."""
    api = _api(corp=from_corp)
    payload = [{"active_code": code} for code in dict.fromkeys(active_codes)]
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.SHARE,
        corp=from_corp,
        target_corp=to_corp,
        total=len(payload),
        actor=actor,
    )

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.batch_share_active_code(
            from_corpid=from_corp.corpid,
            to_corpid=to_corp.corpid,
            share_list=chunk,
            corp_link_type=corp_link_type,
        )
        return answer.get("share_result") or []  # failures only (§6.4)

    accepted = _batch_run(
        batch, payload, send=send, key=lambda i: (i.get("active_code"),), complete=False
    )
    codes = [i["active_code"] for i in accepted]
    license_accounts_refresh(corp=from_corp, active_codes=codes, api=api)
    license_accounts_refresh(corp=to_corp, active_codes=codes, api=api)
    return batch


# --- renew jobs and multi-corp purchase jobs ------------------------------------------------


def license_renew_job_create(
    *,
    corp: Corp,
    accounts: Sequence[Mapping[str, Any]],
    job: LicenseRenewJob | None = None,
    actor: str = "system",
) -> LicenseRenewJob:
    """Create (or append to) a renewal job, ≤1000 accounts per call; return the job.

    ``accounts``: [{"userid", "type"}]. WeCom's invalid_account_list items are stored
    as errors of the job's batch. Raises LicenseBatchFailed if no account was taken.
    """
    api = _api(corp=corp)
    payload = [{"userid": a["userid"], "type": _int(a.get("type"), 1)} for a in accounts]
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.RENEW_JOB,
        corp=corp,
        total=len(payload),
        renew_job=job,
        actor=actor,
    )
    state = {"jobid": job.jobid if job else None}

    answers: list[Mapping[str, Any]] = []

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.create_renew_order_job(
            corpid=corp.corpid, account_list=chunk, jobid=state["jobid"]
        )
        answers.append(answer)
        state["jobid"] = answer.get("jobid") or state["jobid"]
        return answer.get("invalid_account_list") or []

    accepted = _batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("userid"), _int(i.get("type"))),
        complete=False,
    )
    if state["jobid"] is None:
        raise LicenseBatchFailed("WeCom accepted no account for renewal", batch)
    with transaction.atomic():
        job, _ = LicenseRenewJob.objects.get_or_create(
            jobid=state["jobid"], defaults={"corp": corp}
        )
        job = LicenseRenewJob.objects.select_for_update().get(pk=job.pk)
        job.accounts = [*job.accounts, *accepted]
        if answers:
            # The last answer as WeCom sent it (refused items are also batch errors).
            job.raw = {**job.raw, "create_renew_order_job": answers[-1]}
        job.save(update_fields=["accounts", "raw", "updated_at"])
        LicenseBatch.objects.filter(pk=batch.pk).update(renew_job=job)
    return job


def license_renew_job_submit(
    *,
    job: LicenseRenewJob,
    buyer_userid: str,
    months: int | None = None,
    new_expire_time: datetime | None = None,
) -> LicenseOrder:
    """Submit a renewal job (months or a new expiry date); return the renew order."""
    api = _api(corp=job.corp)
    answer = api.submit_order_job(
        jobid=job.jobid,
        buyer_userid=buyer_userid,
        months=months,
        new_expire_time=_ts(new_expire_time) if new_expire_time else None,
    )
    order_id = answer["order_id"]
    now = timezone.now()
    order, _ = LicenseOrder.objects.get_or_create(
        order_id=order_id,
        defaults={
            "provider": license_provider(corp=job.corp),
            "corp": job.corp,
            "order_type": OrderType.RENEW,
            "status": OrderStatus.UNPAID,
            "status_source": "submit",
            "status_changed_at": now,
            "buyer_userid": buyer_userid,
            "duration_months": months or 0,
            "new_expire_time": new_expire_time,
            "next_sync_at": now,
        },
    )
    LicenseRenewJob.objects.filter(pk=job.pk).update(
        raw={**job.raw, "submit_order_job": answer},
        status=LicenseRenewJob.Status.SUBMITTED,
        order=order,
        buyer_userid=buyer_userid,
        months=months,
        new_expire_time=new_expire_time,
        submitted_at=now,
        updated_at=now,
    )
    job.refresh_from_db()
    try:
        return license_order_sync(order=order, source="submit")
    except WeComError as exc:
        logger.warning("renew order %s: first read failed: %s", order_id, _error_text(exc))
        return order


def license_new_order_job_create(
    *,
    items: Sequence[Mapping[str, Any]],
    job: LicenseNewOrderJob | None = None,
    actor: str = "system",
) -> LicenseNewOrderJob:
    """Create (or extend) a multi-corp purchase job, ≤10 corps per call; return the job.

    ``items``: [{"corp" (Corp) or "corpid", "base_count", "external_contact_count",
    "months", "days", "auto_active_status"}]. Refused corps are batch item errors.
    """
    payload = []
    for item in items:
        corp = item.get("corp")
        corpid = corp.corpid if isinstance(corp, Corp) else item["corpid"]
        duration = {"months": _int(item.get("months"))}
        if item.get("days"):
            duration["days"] = _int(item["days"])
        entry: dict[str, Any] = {
            "corpid": corpid,
            "account_count": {
                "base_count": _int(item.get("base_count")),
                "external_contact_count": _int(item.get("external_contact_count")),
            },
            "account_duration": duration,
        }
        if item.get("auto_active_status") is not None:
            entry["auto_active_status"] = _int(item["auto_active_status"])
        payload.append(entry)
    api = _api()
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.NEW_ORDER_JOB,
        total=len(payload),
        new_order_job=job,
        actor=actor,
    )
    state = {"jobid": job.jobid if job else None}

    answers: list[Mapping[str, Any]] = []

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.create_new_order_job(buy_list=chunk, jobid=state["jobid"])
        answers.append(answer)
        state["jobid"] = answer.get("jobid") or state["jobid"]
        return answer.get("invalid_list") or []

    accepted = _batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("corpid"),),
        complete=False,
        size=MULTI_CORP_ITEMS_PER_CALL,
    )
    if state["jobid"] is None:
        raise LicenseBatchFailed("WeCom accepted no corp for the multi-corp order", batch)
    with transaction.atomic():
        job, _ = LicenseNewOrderJob.objects.get_or_create(jobid=state["jobid"])
        job = LicenseNewOrderJob.objects.select_for_update().get(pk=job.pk)
        job.buy_list = [*job.buy_list, *accepted]
        if answers and not job.raw:
            job.raw = {"create_new_order_job": answers[-1]}
        job.save(update_fields=["buy_list", "raw", "updated_at"])
        LicenseBatch.objects.filter(pk=batch.pk).update(new_order_job=job)
    return job


def license_new_order_job_submit(
    *, job: LicenseNewOrderJob, buyer_userid: str
) -> LicenseNewOrderJob:
    """Submit a multi-corp job; its result (the order) is read now and then by the poller."""
    api = _api()
    api.submit_new_order_job(jobid=job.jobid, buyer_userid=buyer_userid)
    now = timezone.now()
    LicenseNewOrderJob.objects.filter(pk=job.pk).update(
        status=LicenseNewOrderJob.Status.SUBMITTED,
        buyer_userid=buyer_userid,
        submitted_at=now,
        next_sync_at=now,
        updated_at=now,
    )
    job.refresh_from_db()
    try:
        return license_new_order_job_sync(job=job)
    except WeComError as exc:
        logger.warning("multi-corp job %s: first result read failed: %s", job.jobid, exc)
        return job


def license_new_order_job_sync(*, job: LicenseNewOrderJob) -> LicenseNewOrderJob:
    """Read new_order_job_result: 2 → later; 3 → failed (fail_list stored); 1 → order."""
    api = _api()
    answer = api.new_order_job_result(jobid=job.jobid)
    status = _int(answer.get("status"))
    now = timezone.now()
    fail_list = answer.get("fail_list") or []
    if fail_list and not job.batches.filter(errors__errmsg__startswith="fail_list").exists():
        batch = LicenseBatch.objects.create(
            operation=LicenseBatch.Operation.NEW_ORDER_JOB,
            new_order_job=job,
            total=len(fail_list),
            failed=len(fail_list),
        )
        LicenseBatchItemError.objects.bulk_create(
            LicenseBatchItemError(
                batch=batch,
                item={"corpid": f.get("corpid")},
                errcode=_int(f.get("errcode"), TRANSPORT_ERRCODE),
                errmsg=f"fail_list: {f.get('errmsg') or ''}"[:300],
            )
            for f in fail_list
        )
    fields: dict[str, Any] = {"raw": answer, "updated_at": now}
    if status == 2:
        fields["next_sync_at"] = now + _backoff(job.sync_attempts, *NEW_ORDER_JOB_BACKOFF)
        fields["sync_attempts"] = F("sync_attempts") + 1
    elif status == 3:
        fields.update(status=LicenseNewOrderJob.Status.FAILED, next_sync_at=None)
    elif status == 1 and answer.get("order_id"):
        order = license_order_sync_by_id(order_id=answer["order_id"], source="new_order_job")
        fields.update(status=LicenseNewOrderJob.Status.DONE, order=order, next_sync_at=None)
    LicenseNewOrderJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def license_new_order_jobs_claim_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Return ids of submitted multi-corp jobs whose result is due, each claimed once."""
    now = now or timezone.now()
    claimed = []
    rows = selectors.license_new_order_jobs_due(now=now).values_list("pk", "next_sync_at")[:limit]
    for pk, due in rows:
        if LicenseNewOrderJob.objects.filter(pk=pk, next_sync_at=due).update(
            next_sync_at=now + POLL_LEASE
        ):
            claimed.append(pk)
    return claimed


# --- per-corp settings and app license info -------------------------------------------------


def license_auto_active_get(*, corp: Corp) -> CorpLicenseSettings:
    """Read the corp's auto-activation switch from WeCom and mirror it."""
    answer = _api(corp=corp).get_auto_active_status(corpid=corp.corpid)
    row, _ = CorpLicenseSettings.objects.update_or_create(
        corp=corp,
        defaults={
            "auto_active_status": _int(answer.get("auto_active_status")),
            "raw": answer,
            "synced_at": timezone.now(),
        },
    )
    return row


def license_auto_active_set(*, corp: Corp, enabled: bool) -> CorpLicenseSettings:
    """Switch auto-activation (701071 if the corp never bought); return the mirror."""
    status = 1 if enabled else 0
    _api(corp=corp).set_auto_active_status(corpid=corp.corpid, auto_active_status=status)
    row, _ = CorpLicenseSettings.objects.update_or_create(
        corp=corp, defaults={"auto_active_status": status, "synced_at": timezone.now()}
    )
    return row


def license_app_info_sync(*, corp: Corp, suite: Suite) -> AppLicenseInfo:
    """Read get_app_license_info (enforcement, trial window) for one app of a corp."""
    answer = _api(suite.provider).get_app_license_info(corpid=corp.corpid, suite_id=suite.suite_id)
    trial = answer.get("trail_info") or {}  # (sic) WeCom's spelling
    row, _ = AppLicenseInfo.objects.update_or_create(
        corp=corp,
        suite=suite,
        defaults={
            "license_status": _int(answer.get("license_status")),
            "trial_start": _dt(trial.get("start_time")),
            "trial_end": _dt(trial.get("end_time")),
            "license_check_time": _dt(answer.get("license_check_time")),
            "raw": answer,
            "synced_at": timezone.now(),
        },
    )
    return row


# --- callbacks: auto-activation and unlicensed members ------------------------------------


def _receipt(key: str, info_type: str) -> bool:
    """Return True the first time ``key`` is seen (inside the caller's transaction)."""
    try:
        with transaction.atomic():
            LicenseEventReceipt.objects.create(key=key[:200], info_type=info_type)
    except IntegrityError:
        return False
    return True


def license_auto_activated(
    *, corp: Corp, accounts: Sequence[Mapping[str, Any]], scene: int | None, at: int | None
) -> list[LicenseAccount]:
    """Mirror an auto_activate callback (WeCom bound codes by itself); return the accounts.

    ``accounts``: [{"active_code", "type", "expire_time", "userid", "previous_status",
    "previous_active_code"}]. Running it twice changes nothing the second time.
    """
    codes = sorted(a.get("active_code") or "" for a in accounts)
    key = _key("auto_activate", corp.corpid, at, *codes)
    active_time = _dt(at) or timezone.now()
    rows = []
    with transaction.atomic():
        if not _receipt(key, "auto_activate"):
            return list(LicenseAccount.objects.filter(corp=corp, active_code__in=codes))
        for account in accounts:
            code = account.get("active_code")
            if not code:
                continue
            row, _ = LicenseAccount.objects.get_or_create(
                corp=corp,
                active_code=code,
                defaults={"type": _int(account.get("type"), AccountType.BASE)},
            )
            row.status = AccountStatus.ACTIVE
            row.userid = account.get("userid") or ""
            row.expire_time = _dt(account.get("expire_time"))
            row.active_time = row.active_time or active_time
            previous = account.get("previous_active_code")
            if previous:
                row.merged_from_code = previous
                LicenseAccount.objects.filter(corp=corp, active_code=previous).update(
                    status=AccountStatus.MERGED, merged_to_code=code, updated_at=timezone.now()
                )
            row.save()
            rows.append(row)
        _resolve_unlicensed(corp, {r.userid for r in rows})
        feed_publish(
            type="license.auto_activated",
            source_key=_key("license.auto_activated", key),
            corp=corp,
            data={
                "corpid": corp.corpid,
                "scene": scene,
                "accounts": [
                    {
                        "userid": r.userid,
                        "type": r.type,
                        "expire_time": _ts(r.expire_time) if r.expire_time else None,
                    }
                    for r in rows
                ],
            },
        )
    return rows


def license_unlicensed_record(
    *, corp: Corp, userid: str, suite: Suite | None, at: int | None
) -> UnlicensedMember | None:
    """Record an unlicensed_notify (member opened the app without a license).

    Returns the member row, or None if this very event was recorded before.
    """
    key = _key("unlicensed_notify", corp.corpid, userid, at)
    seen = _dt(at) or timezone.now()
    with transaction.atomic():
        if not _receipt(key, "unlicensed_notify"):
            return None
        member, created = UnlicensedMember.objects.get_or_create(
            corp=corp,
            userid=userid,
            defaults={"suite": suite, "first_seen_at": seen, "last_seen_at": seen},
        )
        if not created:
            UnlicensedMember.objects.filter(pk=member.pk).update(
                times_seen=F("times_seen") + 1,
                last_seen_at=seen,
                resolved_at=None,
                suite=suite or member.suite,
            )
            member.refresh_from_db()
        feed_publish(
            type="license.unlicensed",
            source_key=_key("license.unlicensed", key),
            suite=suite,
            corp=corp,
            data={
                "corpid": corp.corpid,
                "userid": userid,
                "suite_id": suite.suite_id if suite else None,
            },
        )
    return member


# --- expiry --------------------------------------------------------------------------------


def license_expiry_scan(*, within_days: int | None = None, now: datetime | None = None) -> int:
    """Publish ``license.expiring`` once per account and expiry date; return how many new."""
    now = now or timezone.now()
    published = 0
    for account in selectors.license_accounts_expiring(within_days=within_days, now=now).iterator():
        expire = _ts(account.expire_time)
        entry = feed_publish(
            type="license.expiring",
            source_key=_key("license.expiring", account.corp.corpid, account.active_code, expire),
            corp=account.corp,
            data={
                "corpid": account.corp.corpid,
                "userid": account.userid,
                "type": account.type,
                "expire_time": expire,
                "days_left": max(0, (account.expire_time - now).days),
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
    api = _api(provider)
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
                    api.list_order_all(corpid=corpid, start_time=_ts(start), end_time=_ts(end))
                )
            except WeComError as exc:
                result.errors.append(f"list_order {start:%Y-%m-%d}: {_error_text(exc)}")
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
    if known is not None and known.is_terminal and not _needs_accounts(known):
        return
    try:
        license_order_sync_by_id(order_id=order_id, provider=provider, source="reconcile")
    except (WeComError, LicenseError) as exc:
        result.errors.append(f"order {order_id}: {_error_text(exc)}")
        return
    result.orders_synced += 1
    result.orders_new += known is None


def license_corp_accounts_reconcile(*, corp: Corp) -> int:
    """Walk list_actived_account for ``corp`` and bring every active binding up to date.

    Known codes are re-read in ≤1000 batches; members whose codes we never saw are
    read with get_active_info_by_user. Returns how many activated accounts WeCom lists.
    """
    api = _api(corp=corp)
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
    progress = Progress(stream, len(corp_list), "accounts") if stream is not None else None
    for corp in corp_list:
        try:
            result.accounts += license_corp_accounts_reconcile(corp=corp)
            result.corps += 1
        except (WeComError, LicenseError) as exc:
            result.errors.append(f"corp {corp.corpid}: {_error_text(exc)}")
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.close()
    return result
