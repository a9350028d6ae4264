"""License (接口调用许可) rules: orders, payment, active codes, activation (§6, §11 14–16).

Pure domain logic over SandboxState, called with the state lock held. Errors that
concern the whole call raise ApiError; batch calls get per-item errcodes from the
`*_one` functions and decide the top-level answer themselves.

Simplifications, all marked [sim] in the protocol doc's spirit:
- an account's expire_time is active_time + duration (WeCom rounds to 00:00 of the
  next day in China time);
- "5 years" for merges is taken as the longest purchase, 1860 days, so any single
  code can be activated on its own;
- orders never expire on their own: POST /sandbox/orders/<id>/expire does it.
"""

from __future__ import annotations

from typing import Any

from sandbox import ids
from sandbox import messages
from sandbox.errors import ApiError
from sandbox.models import BASE
from sandbox.models import CODE_BOUND
from sandbox.models import CODE_EXPIRED
from sandbox.models import CODE_UNBOUND
from sandbox.models import EXTERNAL
from sandbox.models import ORDER_CANCELLED
from sandbox.models import ORDER_EXPIRED
from sandbox.models import ORDER_INVALID
from sandbox.models import ORDER_MULTI
from sandbox.models import ORDER_NEW
from sandbox.models import ORDER_PAID
from sandbox.models import ORDER_REFUND_REJECTED
from sandbox.models import ORDER_REFUNDED
from sandbox.models import ORDER_REFUNDING
from sandbox.models import ORDER_RENEW
from sandbox.models import ORDER_UNPAID
from sandbox.models import ActiveCode
from sandbox.models import Corp
from sandbox.models import Order
from sandbox.models import ckey
from sandbox.pushes import SYSTEM
from sandbox.pushes import push

DAY = 86400
MONTH_DAYS = 31  # §6.1: one month is 31 days
MIN_DAYS, MAX_DAYS = 31, 1860
MAX_MONTHS = 60
ACTIVATION_WINDOW = 365 * DAY  # activate within 365 days of create_time (701012)
MERGE_THRESHOLD = 20 * DAY  # re-activation / takeover only with ≤20 days left
ACCOUNT_CAP = MAX_DAYS * DAY  # [sim] "≤5 years" after a merge (701030)
TRANSFER_COOLDOWN = 30 * DAY  # an employed handover user transfers once per 30 days
AUTO_RENEW_WINDOW = 7 * DAY  # auto-activation renews accounts with ≤7 days left
MAX_COUNT = 1_000_000
MAX_TEST_COUNT = 1000
CHINA_OFFSET = 8 * 3600
ACCOUNT_TYPES = (BASE, EXTERNAL)


# ----- lookups -----------------------------------------------------------------------


def license_corp(state, corpid: str) -> Corp:
    """Return the corp (plaintext or encrypted id, §2) or raise 40013."""
    corp = state.corp(corpid)
    if corp is None:
        raise ApiError(40013, f"unknown corpid {corpid}")
    return corp


def authorized_corp(state, corpid: str) -> Corp:
    """Return the corp if it has an active third-party or 代开发 authorization (else 701015)."""
    corp = license_corp(state, corpid)
    if not state.active_auths(corp.corpid):
        raise ApiError(701015, "the corp has not authorized any app of this provider")
    return corp


def check_buyer(state, userid: str) -> None:
    if userid not in state.buyers:
        raise ApiError(49009, "buyer_userid is not an admin of the provider corp")


def get_order(state, order_id: str) -> Order:
    order = state.orders.get(order_id)
    if order is None:
        raise ApiError(701005, "order not found")
    return order


def refresh_code(state, code: ActiveCode) -> ActiveCode:
    """Move a bound code whose time ran out to status 3 (evaluated lazily)."""
    if code.status == CODE_BOUND and code.expire_time <= state.now():
        code.status = CODE_EXPIRED
    return code


def corp_codes(state, corpid: str) -> list[ActiveCode]:
    codes = [refresh_code(state, c) for c in state.codes.values() if c.corpid == corpid]
    return sorted(codes, key=lambda c: (c.create_time, c.active_code))


def valid_code(state, corpid: str, userid: str, type_: int) -> ActiveCode | None:
    """Return the user's bound, unexpired code of that type (one per type, §6.4)."""
    for code in state.codes.values():
        same = code.corpid == corpid and code.userid == userid and code.type == type_
        if same and refresh_code(state, code).status == CODE_BOUND:
            return code
    return None


def user_codes(state, corpid: str, userid: str) -> list[ActiveCode]:
    return [c for c in corp_codes(state, corpid) if c.userid == userid]


def has_paid_order(state, corpid: str) -> bool:
    return any(o.corpid == corpid and o.pay_time for o in state.orders.values())


# ----- orders ------------------------------------------------------------------------


def duration_days(months: int, days: int) -> int:
    return months * MONTH_DAYS + days


def order_price(state, base: int, external: int, days: int) -> int:
    """Return the price in 分: counts × days × unit price (§11 item 14)."""
    s = state.settings
    return days * (base * s.unit_price_base + external * s.unit_price_external)


def check_counts(corp: Corp, base: int, external: int) -> None:
    if base < 0 or external < 0 or base + external == 0:
        raise ApiError(40058, "account_count: counts must be ≥0 and not both 0")
    if corp.test and max(base, external) > MAX_TEST_COUNT:
        raise ApiError(701028, "a test corp buys at most 1000 accounts per type")
    if max(base, external) > MAX_COUNT:
        raise ApiError(40058, "account_count: at most 1000000 per type")


def check_duration(corp: Corp, months: int, days: int) -> None:
    if months < 0 or days < 0:
        raise ApiError(40058, "account_duration must not be negative")
    if corp.test:
        # §6.1: a test corp buys exactly one month, no days.
        if months != 1 or days:
            raise ApiError(701027, "a test corp buys exactly 1 month")
        return
    if months > MAX_MONTHS or not MIN_DAYS <= duration_days(months, days) <= MAX_DAYS:
        raise ApiError(40058, "account_duration must be 31..1860 days (≤60 months)")


def check_not_blocked(state, corp: Corp) -> None:
    """An unpaid or refunding order of the corp blocks a new purchase (§6.3)."""
    for order in state.orders.values():
        if order.corpid != corp.corpid:
            continue
        if order.order_status == ORDER_UNPAID:
            raise ApiError(701032, f"order {order.order_id} is awaiting payment")
        if order.order_status == ORDER_REFUNDING:
            raise ApiError(701037, f"order {order.order_id} is being refunded")


def new_order(
    state,
    *,
    corp: Corp,
    buyer: str,
    base: int,
    external: int,
    months: int,
    days: int,
    parent_id: str | None = None,
    auto_active_status: int | None = None,
) -> Order:
    """Create a purchase order; a test corp's is free and paid at once (§6.1)."""
    total = duration_days(months, days)
    order = Order(
        order_id=ids.order_id(),
        order_type=ORDER_NEW,
        order_status=ORDER_UNPAID,
        corpid=corp.corpid,
        buyer_userid=buyer,
        price=0 if corp.test else order_price(state, base, external, total),
        base_count=base,
        external_count=external,
        months=months,
        days=days,
        create_time=state.ts(),
        test=corp.test,
        parent_id=parent_id,
        auto_active_status=auto_active_status,
    )
    state.orders[order.order_id] = order
    if corp.test:
        pay_order(state, order)
    return order


def pay_order(state, order: Order) -> None:
    """Mark paid, generate codes (or extend renewed accounts), then push license_pay_success.

    The push waits until the codes exist (code_generation_seconds on the simulator clock;
    list_order_account answers 701022 meanwhile), once per sub-order of a multi-corp
    order (§6.5).
    """
    now = state.ts()
    order.order_status = ORDER_PAID
    order.pay_time = now
    if order.order_type == ORDER_MULTI:
        for sub_id in order.sub_order_ids:
            pay_order(state, state.orders[sub_id])
        return
    if order.order_type == ORDER_NEW:
        for type_, count in ((BASE, order.base_count), (EXTERNAL, order.external_count)):
            for _ in range(count):
                code = ActiveCode(
                    active_code=ids.active_code(),
                    corpid=order.corpid,
                    type=type_,
                    order_id=order.order_id,
                    duration_days=order.duration_days,
                    create_time=now,
                )
                state.codes[ckey(code.corpid, code.active_code)] = code
    elif order.order_type == ORDER_RENEW:
        _apply_renewal(state, order)
    corp = state.corp(order.corpid)
    if order.auto_active_status is not None and corp is not None:
        corp.auto_active = order.auto_active_status
    order.codes_ready_at = state.now() + state.settings.code_generation_seconds
    if state.settings.code_generation_seconds <= 0 or state.scheduler is None:
        notify_paid(state, order)
    else:
        state.scheduler.at(order.codes_ready_at, lambda: notify_paid(state, order))


def notify_paid(state, order: Order) -> None:
    if order.pay_notified or order.order_status != ORDER_PAID:
        return
    order.pay_notified = True
    pid = state.provider.corpid
    push(
        state,
        channel=SYSTEM,
        info_type="license_pay_success",
        corpid=order.corpid,
        payload=messages.license_pay_success(
            pid, order.corpid, order.order_id, order.buyer_userid, state.ts()
        ),
    )


def codes_generating(state, order: Order) -> bool:
    return order.order_status == ORDER_PAID and state.now() < order.codes_ready_at


def cancel_order(state, order: Order) -> None:
    if order.order_status != ORDER_UNPAID:
        raise ApiError(701084, "only an order awaiting payment can be cancelled")
    order.order_status = ORDER_CANCELLED
    for sub_id in order.sub_order_ids:
        state.orders[sub_id].order_status = ORDER_CANCELLED


def expire_order(state, order: Order) -> None:
    """The payment deadline passed (control action)."""
    if order.order_status != ORDER_UNPAID:
        raise ApiError(701084, "only an order awaiting payment can expire")
    order.order_status = ORDER_EXPIRED
    for sub_id in order.sub_order_ids:
        state.orders[sub_id].order_status = ORDER_EXPIRED


def refund_order(state, order: Order, action: str) -> None:
    """Refund request (4), then approve (5, push OrderStatus=1) or reject (6, OrderStatus=2).

    approve/reject on a paid order passes through 4 first, as WeCom's console would.
    Approving voids the order's unbound codes; bound accounts keep running.
    """
    if action == "request" or order.order_status == ORDER_PAID:
        if order.order_status != ORDER_PAID:
            raise ApiError(701083, "only a paid order can be refunded")
        order.order_status = ORDER_REFUNDING
        if action == "request":
            return
    if order.order_status != ORDER_REFUNDING:
        raise ApiError(701083, "the order has no refund request")
    if action == "approve":
        order.order_status = ORDER_REFUNDED
        for code in state.codes.values():
            if code.order_id == order.order_id and code.status == CODE_UNBOUND:
                code.void = True
        wire_status = 1
    elif action == "reject":
        order.order_status = ORDER_REFUND_REJECTED
        wire_status = 2  # license_refund numbering differs from order_status (§6.2)
    else:
        raise ValueError("action must be request, approve or reject")
    push(
        state,
        channel=SYSTEM,
        info_type="license_refund",
        corpid=order.corpid,
        payload=messages.license_refund(
            state.provider.corpid, order.corpid, order.order_id, wire_status, state.ts()
        ),
    )


def invalidate_test_orders(state, corp: Corp) -> int:
    """The corp leaves the provider's test list: its orders become 7 (§6.1)."""
    corp.test = False
    count = 0
    for order in state.orders.values():
        if order.corpid == corp.corpid and order.test:
            order.order_status = ORDER_INVALID
            count += 1
    return count


# ----- renewals ----------------------------------------------------------------------


def end_of_day(ts: int) -> int:
    """Return 24:00 (China time) of the day containing ts (§6.3 new_expire_time)."""
    local_day = (ts + CHINA_OFFSET) // DAY
    return (local_day + 1) * DAY - CHINA_OFFSET


def renewal_days(
    state, corpid: str, accounts: list[dict[str, Any]], *, months: int, new_expire_time: int | None
) -> list[dict[str, Any]]:
    """Return the accounts with the days each gains: months×31, or up to new_expire_time."""
    result = []
    for account in accounts:
        if new_expire_time is None:
            days = months * MONTH_DAYS
        else:
            code = valid_code(state, corpid, account["userid"], account["type"])
            current = code.expire_time if code else state.ts()
            days = max(0, -(-(new_expire_time - current) // DAY))  # ceil
        result.append({"userid": account["userid"], "type": account["type"], "days": days})
    return result


def _apply_renewal(state, order: Order) -> None:
    for account in order.renew_accounts:
        code = valid_code(state, order.corpid, account["userid"], account["type"])
        if code is None:
            continue  # the account expired meanwhile; WeCom would renew from payment
        if order.new_expire_time is not None:
            code.expire_time = max(code.expire_time, order.new_expire_time)
        else:
            code.expire_time += account["days"] * DAY


# ----- views -------------------------------------------------------------------------


def order_view(order: Order) -> dict[str, Any]:
    duration: dict[str, Any] = {"months": order.months}
    if order.days:
        duration["days"] = order.days
    if order.new_expire_time is not None:
        duration["new_expire_time"] = order.new_expire_time
    view: dict[str, Any] = {
        "order_id": order.order_id,
        "order_type": order.order_type,
        "order_status": order.order_status,
        "corpid": order.corpid,
        "price": order.price,
        "account_count": {
            "base_count": order.base_count,
            "external_contact_count": order.external_count,
        },
        "account_duration": duration,
        "create_time": order.create_time,
        "pay_time": order.pay_time,
    }
    if order.order_type == ORDER_MULTI:
        del view["corpid"]
    return view


def active_info(state, code: ActiveCode) -> dict[str, Any]:
    refresh_code(state, code)
    info: dict[str, Any] = {
        "active_code": code.active_code,
        "type": code.type,
        "status": code.status,
        "create_time": code.create_time,
    }
    if code.userid:
        info.update(userid=code.userid, active_time=code.active_time, expire_time=code.expire_time)
    if code.merge_to or code.merge_from:
        info["merge_info"] = {
            "to_active_code": code.merge_to,
            "from_active_code": code.merge_from,
        }
    if code.share_to or code.share_from:
        info["share_info"] = {"to_corpid": code.share_to, "from_corpid": code.share_from}
    return info
