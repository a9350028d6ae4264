"""Paid apps (应用版本付费, protocol doc §13): orders, editions and trials of a suite.

What WeCom does, as far as its public pages say, plus the gaps filled in [sim]:

- a corp (or the provider, or a dealer, on its behalf) places an order for an edition:
  status 0 and ``open_order``; paying it (1) pushes ``pay_for_app_success`` and, as the
  edition changed, ``change_editon``;
- the provider changes an unpaid order's price: a new order id and ``change_order``
  (OldOrderId, NewOrderId); the old order is closed as cancelled [sim: the pages do not
  say what becomes of it];
- an unpaid order is cancelled (``cancel_order``) or lapses unpaid (3, no callback [sim]);
- a refund is requested (4, no callback), then approved (5: ``refund`` and
  ``change_editon``; the edition before the refunded order comes back [sim]) or refused
  (6, no callback [sim]);
- installs start on a 15-day trial (actions.py); ``prolong_try`` extends it while it is a
  限时试用 or 试用过期, at most 60 days from the first install in total (path/91913); a
  trial or a paid term that runs out flips the status (2 or 4) and pushes
  ``change_editon`` (path/91933).

Errcodes the pages do not give are WeCom's generic ones [sim]: 40058 for a bad or
unknown order id, a window over 31 days, a refused extension; 48004 for a corp without
the app; 40013 for an unknown corp. Call everything with the state lock held.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import replace
from typing import Any

from sandbox import ids
from sandbox import messages
from sandbox.actions import ActionError
from sandbox.actions import require_auth
from sandbox.actions import require_suite
from sandbox.api import Call
from sandbox.api import route
from sandbox.control_api import ControlCall
from sandbox.control_api import control
from sandbox.credentials import SUITE
from sandbox.errors import ApiError
from sandbox.models import AppOrder
from sandbox.models import Authorization
from sandbox.models import akey
from sandbox.pushes import COMMAND
from sandbox.pushes import push

DAY = 86400
TRIAL_MAX_DAYS = 60  # path/91913: a trial lasts 60 days at most, extensions included
LIST_WINDOW = 31 * DAY  # [sim] the pages give no limit; we keep the licence one
UNIT_PRICE = 10  # [sim] 分 per user per day
MAX_PERIOD_DAYS = 5 * 366
UNPAID, PAID, CANCELLED, EXPIRED, REFUNDING, REFUNDED, REFUND_REJECTED = range(7)
NEW, EXPAND, RENEW, CHANGE_EDITION = range(4)
# edition_info app_status (§5.2)
TRIAL, TRIAL_EXPIRED, PAID_TERM, PAID_EXPIRED = 1, 2, 3, 4
IN_PAID_TERM = frozenset({PAID_TERM, 6, 7})  # 6/7: paid but over the user limit
SWEEP_EVERY = 1.0  # simulator seconds between two scans for trials and terms that ran out


# ----- callbacks (command URL, §8.1) ----------------------------------------------------


def _push(state, info_type: str, suite_id: str, corpid: str, extra: messages.Fields) -> None:
    payload = messages.xml(
        [
            ("SuiteId", suite_id),
            ("PaidCorpId", corpid),
            ("InfoType", info_type),
            ("TimeStamp", state.ts()),
            *extra,
        ]
    )
    push(
        state,
        channel=COMMAND,
        info_type=info_type,
        suite_id=suite_id,
        corpid=corpid,
        payload=payload,
    )


def push_change_editon(state, auth: Authorization) -> None:
    push(
        state,
        channel=COMMAND,
        info_type="change_editon",
        suite_id=auth.suite_id,
        corpid=auth.corpid,
        payload=messages.change_editon(auth.suite_id, auth.corpid, state.ts()),
    )


# ----- orders ---------------------------------------------------------------------------


def order_view(order: AppOrder) -> dict[str, Any]:
    """Return the order as get_order answers it (operator and dealer only when known)."""
    view: dict[str, Any] = {
        key: value
        for key, value in asdict(order).items()
        if key not in ("test", "previous_edition", "paid_seq", "dealer_corpid", "dealer_corp_name")
    }
    if not order.operator_id:
        view.pop("operator_id")  # the provider or a dealer ordered: WeCom omits it
    if order.dealer_corpid:
        view["dealer_corp_info"] = {
            "corpid": order.dealer_corpid,
            "corp_name": order.dealer_corp_name,
        }
    return view


def _shares(price: int, dealer: bool) -> tuple[int, int, int]:
    """(service, platform, dealer) in 分 [sim: 70/30, or 60/10/30 with a dealer]."""
    if dealer:
        service, dealer_part = price * 60 // 100, price * 30 // 100
        return service, price - service - dealer_part, dealer_part
    service = price * 70 // 100
    return service, price - service, 0


def _edition(suite, edition_id: str | None) -> dict[str, Any]:
    editions = {e["edition_id"]: e for e in suite.editions}
    if not editions:
        raise ActionError(f"{suite.suite_id} has no paid editions", 409)
    chosen = editions.get(edition_id or suite.editions[0]["edition_id"])
    if chosen is None:
        raise ActionError(f"{suite.suite_id} has no edition {edition_id!r}")
    return chosen


def _infer_type(auth: Authorization, edition_id: str, user_count: int) -> int:
    current = auth.edition
    if current.get("app_status") not in IN_PAID_TERM:
        return NEW
    if current.get("edition_id") != edition_id:
        return CHANGE_EDITION
    if user_count > int(current.get("user_limit") or 0):
        return EXPAND
    return RENEW


def order_create(state, suite_id: str, corpid: str, spec: dict[str, Any]) -> AppOrder:
    """Place an order as the corp (order_from 0), the provider (1) or a dealer (2)."""
    suite = require_suite(state, suite_id)
    auth = require_auth(state, suite_id, corpid)
    edition = _edition(suite, spec.get("edition_id"))
    users, period = int(spec.get("user_count") or 10), int(spec.get("period_days") or 365)
    order_from = int(spec.get("order_from") or 0)
    if users < 1 or not 1 <= period <= MAX_PERIOD_DAYS or order_from not in (0, 1, 2):
        raise ActionError("user_count ≥ 1, period_days 1..1830 and order_from 0..2")
    order_type = spec.get("order_type")
    if order_type is None:
        order_type = _infer_type(auth, edition["edition_id"], users)
    dealer = bool(spec.get("dealer")) or order_from == 2
    price = users * period * UNIT_PRICE
    service, platform, dealer_part = _shares(price, dealer)
    corp = state.corps[auth.corpid]
    admins = [u.userid for u in corp.users.values() if u.admin]
    dealer_corpid = ids.hex_id("wwdealer", 10) if dealer else ""
    order = AppOrder(
        orderid="AO" + ids.alnum(24).upper(),
        suiteid=suite_id,
        paid_corpid=auth.corpid,
        order_status=UNPAID,
        order_type=int(order_type),
        edition_id=edition["edition_id"],
        edition_name=edition.get("edition_name", edition["edition_id"]),
        price=price,
        user_count=users,
        order_period=period,
        order_time=state.ts(),
        order_from=order_from,
        operator_id=(admins[0] if admins else "") if order_from == 0 else "",
        operator_corpid={0: auth.corpid, 1: state.provider.corpid, 2: dealer_corpid}[order_from],
        service_share_amount=service,
        platform_share_amount=platform,
        dealer_share_amount=dealer_part,
        dealer_corpid=dealer_corpid,
        dealer_corp_name="示例代理商" if dealer else "",
        test=auth.test,
    )
    state.app_orders[order.orderid] = order
    extra = [("OrderId", order.orderid), ("OperatorId", order.operator_id)]
    _push(state, "open_order", suite_id, auth.corpid, extra)
    return order


def _order(state, orderid: str) -> AppOrder:
    order = state.app_orders.get(orderid)
    if order is None:
        raise ActionError(f"unknown app order {orderid!r}", 404)
    return order


def _require_status(order: AppOrder, *allowed: int) -> None:
    if order.order_status not in allowed:
        raise ActionError(f"order {order.orderid} is in status {order.order_status}", 409)


def _term(order: AppOrder, current: dict[str, Any], now: int) -> tuple[int, int]:
    """(begin_time, end_time) of a paid order [sim], from the corp's current edition."""
    period = order.order_period * DAY
    paid_end = int(current.get("expired_time") or 0)
    in_term = current.get("app_status") in IN_PAID_TERM and paid_end > now
    if order.order_type == EXPAND and in_term:
        return now, paid_end
    if order.order_type == RENEW and in_term:
        return paid_end, paid_end + period
    if order.order_type == CHANGE_EDITION and in_term:
        return now, max(paid_end, now + period)
    return now, now + period


def order_pay(state, order: AppOrder) -> None:
    _require_status(order, UNPAID)
    now = state.ts()
    auth = state.auth(order.suiteid, order.paid_corpid)
    current = dict(auth.edition) if auth is not None else {}
    order.order_status, order.paid_time = PAID, now
    order.begin_time, order.end_time = _term(order, current, now)
    order.previous_edition = current
    order.paid_seq = 1 + max((o.paid_seq for o in state.app_orders.values()), default=0)
    _push(
        state, "pay_for_app_success", order.suiteid, order.paid_corpid, [("OrderId", order.orderid)]
    )
    if auth is not None and auth.active:
        auth.edition = {
            **current,
            "edition_id": order.edition_id,
            "edition_name": order.edition_name,
            "app_status": PAID_TERM,
            "user_limit": order.user_count,
            "expired_time": order.end_time,
        }
        push_change_editon(state, auth)


def order_change_price(state, order: AppOrder, price: int) -> AppOrder:
    """The provider's admin changes an unpaid order's price: a new order id (path/91930)."""
    _require_status(order, UNPAID)
    if price < 0:
        raise ActionError("price must be ≥ 0")
    service, platform, dealer_part = _shares(price, bool(order.dealer_corpid))
    new = replace(
        order,
        orderid="AO" + ids.alnum(24).upper(),
        price=price,
        order_time=state.ts(),
        service_share_amount=service,
        platform_share_amount=platform,
        dealer_share_amount=dealer_part,
    )
    state.app_orders[new.orderid] = new
    order.order_status = CANCELLED  # [sim] the old id is closed
    extra = [("OldOrderId", order.orderid), ("NewOrderId", new.orderid)]
    _push(state, "change_order", order.suiteid, order.paid_corpid, extra)
    return new


def order_cancel(state, order: AppOrder) -> None:
    _require_status(order, UNPAID)
    order.order_status = CANCELLED
    _push(state, "cancel_order", order.suiteid, order.paid_corpid, [("OrderId", order.orderid)])


def order_expire(state, order: AppOrder) -> None:
    _require_status(order, UNPAID)
    order.order_status = EXPIRED  # no callback [sim]


def _latest_paid(state, order: AppOrder) -> bool:
    """Whether ``order`` is the newest paid order of its corp's app (its edition's source)."""
    mine = [
        o
        for o in state.app_orders.values()
        if o.suiteid == order.suiteid
        and o.paid_corpid == order.paid_corpid
        and o.paid_time
        and o.order_status in (PAID, REFUNDING, REFUND_REJECTED)
    ]
    return bool(mine) and max(mine, key=lambda o: o.paid_seq) is order


def order_refund(state, order: AppOrder, action: str) -> None:
    if action == "request":
        _require_status(order, PAID)
        order.order_status = REFUNDING
        return
    _require_status(order, REFUNDING)
    if action == "reject":
        order.order_status = REFUND_REJECTED  # no callback [sim]
        return
    restore = _latest_paid(state, order)
    order.order_status = REFUNDED
    _push(state, "refund", order.suiteid, order.paid_corpid, [("OrderId", order.orderid)])
    auth = state.auth(order.suiteid, order.paid_corpid)
    if restore and auth is not None and auth.active:
        auth.edition = dict(order.previous_edition)
        expire_due(state, force=True)  # the edition put back may have run out meanwhile
        push_change_editon(state, auth)


# ----- editions and trials --------------------------------------------------------------


def prolong(state, suite_id: str, corpid: str, days: int) -> int:
    """Extend the corp's trial by ``days``; return the new try_end_time (path/91913)."""
    corp = state.corp(corpid)
    if corp is None:
        raise ApiError(40013, f"unknown buyer_corpid {corpid}")
    auth = state.auth(suite_id, corp.corpid)
    if auth is None or not auth.active:
        raise ApiError(48004, "the corp has not authorized this app")
    edition = auth.edition
    if not state.suites[suite_id].editions or not edition:
        raise ApiError(40058, "the app has no paid editions")
    if edition.get("app_status") not in (TRIAL, TRIAL_EXPIRED):
        raise ApiError(40058, "only a 限时试用 or an expired trial can be extended")
    now = state.ts()
    end = max(int(edition.get("expired_time") or now), now) + days * DAY
    started = state.trials.get(akey(suite_id, corp.corpid), now)
    if end - started > TRIAL_MAX_DAYS * DAY:
        raise ApiError(40058, f"a trial lasts at most {TRIAL_MAX_DAYS} days in total")
    auth.edition = {**edition, "app_status": TRIAL, "expired_time": int(end)}
    push_change_editon(state, auth)
    return int(end)


def expire_trial_now(state, suite_id: str, corpid: str) -> Authorization:
    """Let the corp's trial run out now (as if its last day passed): 2 + change_editon."""
    auth = require_auth(state, suite_id, corpid)
    if auth.edition.get("app_status") != TRIAL:
        raise ActionError(f"{corpid} is not on a trial of {suite_id}", 409)
    auth.edition = {**auth.edition, "expired_time": state.ts()}
    expire_due(state, force=True)
    return auth


def expire_due(state, *, force: bool = False) -> int:
    """Flip trials (1 → 2) and paid terms (3 → 4) that ran out; push change_editon each.

    Called by the scheduler on every tick, so at most once per SWEEP_EVERY simulator
    seconds unless ``force``: a scan of every authorization is cheap but not free.
    """
    now = state.now()
    if not force and now < state.edition_sweep_at:
        return 0
    state.edition_sweep_at = now + SWEEP_EVERY
    flipped = 0
    for auth in state.auths.values():
        edition = auth.edition
        status = edition.get("app_status") if edition else None
        if status not in (TRIAL, PAID_TERM) or not auth.active:
            continue
        if int(edition.get("expired_time") or 0) <= now:
            auth.edition = {
                **edition,
                "app_status": TRIAL_EXPIRED if status == TRIAL else PAID_EXPIRED,
            }
            push_change_editon(state, auth)
            flipped += 1
    return flipped


# ----- the WeCom API (suite_access_token) -------------------------------------------------


def _token_suite_id(call: Call) -> str:
    return call.token.suite_id


@route("app_get_order", "/cgi-bin/service/get_order", token=SUITE)
def get_order(call: Call) -> dict[str, Any]:
    order = call.state.app_orders.get(call.text("orderid"))
    if order is None or order.suiteid != _token_suite_id(call):
        raise ApiError(40058, "unknown orderid for this app")
    return order_view(order)


@route("app_get_order_list", "/cgi-bin/service/get_order_list", token=SUITE)
def get_order_list(call: Call) -> dict[str, Any]:
    start, end = call.integer("start_time"), call.integer("end_time")
    test_mode = call.integer("test_mode", required=False, default=0)
    if end < start or end - start > LIST_WINDOW:
        raise ApiError(40058, "the order-time window must span 0..31 days")
    if test_mode not in (0, 1):
        raise ApiError(40058, "test_mode is 0 or 1")
    suite_id = _token_suite_id(call)
    listed = sorted(
        (
            o
            for o in call.state.app_orders.values()
            if o.suiteid == suite_id and o.test == bool(test_mode) and start <= o.order_time < end
        ),
        key=lambda o: o.order_time,  # stable: same-second orders stay in creation order
    )
    return {"order_list": [order_view(o) for o in listed]}


@route("prolong_try", "/cgi-bin/service/prolong_try", token=SUITE)
def prolong_try(call: Call) -> dict[str, Any]:
    corpid = call.text("buyer_corpid")
    days = call.integer("prolong_days")
    if days < 1:
        raise ApiError(40058, "prolong_days must be at least 1")
    return {"try_end_time": prolong(call.state, _token_suite_id(call), corpid, days)}


# ----- control API (tests and developers play the corp, the provider and WeCom) ----------


@control("POST", "/sandbox/app_orders")
def create_app_order(call: ControlCall):
    spec = {k: v for k, v in call.body.items() if k not in ("suite_id", "corpid")}
    order = order_create(call.state, call.need("suite_id"), call.need("corpid"), spec)
    return {"order": order_view(order)}


@control("POST", "/sandbox/app_orders/<orderid>/<action>")
def app_order_action(call: ControlCall):
    state, order = call.state, _order(call.state, call.params["orderid"])
    action = call.params["action"]
    if action == "pay":
        order_pay(state, order)
    elif action == "cancel":
        order_cancel(state, order)
    elif action == "expire":
        order_expire(state, order)
    elif action == "refund":
        step = call.get("action", "approve", str)
        if step not in ("request", "approve", "reject"):
            raise ActionError("action must be request, approve or reject")
        order_refund(state, order, step)
    elif action == "change_price":
        new = order_change_price(state, order, call.need("price", int))
        return {"order": order_view(order), "new_order": order_view(new)}
    else:
        raise ActionError(f"unknown app order action {action!r}", 404)
    return {"order": order_view(order)}


@control("POST", "/sandbox/app_trial/expire")
def expire_trial(call: ControlCall):
    auth = expire_trial_now(call.state, call.need("suite_id"), call.need("corpid"))
    return {"edition": dict(auth.edition)}
