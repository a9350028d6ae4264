"""License order endpoints (§6.3): request parsing around the rules in licensing.py.

Accounts (§6.4) are api_accounts.py's.
"""

from __future__ import annotations

from typing import Any

from sandbox import ids
from sandbox import licensing as lic
from sandbox.api import BATCH_MAX
from sandbox.api import Call
from sandbox.api import objects
from sandbox.api import paginate
from sandbox.api import route
from sandbox.credentials import PROVIDER
from sandbox.errors import ApiError
from sandbox.models import ORDER_MULTI
from sandbox.models import ORDER_RENEW
from sandbox.models import ORDER_UNPAID
from sandbox.models import NewOrderJob
from sandbox.models import Order
from sandbox.models import PayJob
from sandbox.models import RenewJob

JOB_RESULT_TTL = 7 * lic.DAY  # new_order_job_result / pay_job_result readable 7 days
MULTI_ITEMS_PER_CALL = 10
MULTI_ITEMS_PER_JOB = 100_000
LIST_ORDER_WINDOW = 31 * lic.DAY


def license_route(name: str):
    return route(name, f"/cgi-bin/license/{name}", token=PROVIDER)


def _counts(call: Call, source: dict[str, Any] | None = None) -> tuple[int, int]:
    counts = call.obj("account_count", source=source)
    base = call.integer("base_count", required=False, default=0, source=counts)
    external = call.integer("external_contact_count", required=False, default=0, source=counts)
    return base, external


def _duration(call: Call, source: dict[str, Any] | None = None) -> tuple[int, int]:
    duration = call.obj("account_duration", source=source)
    months = call.integer("months", required=False, default=0, source=duration)
    days = call.integer("days", required=False, default=0, source=duration)
    return months, days


def batch_items(call: Call, name: str) -> list[dict[str, Any]]:
    """Return a batch list: empty → 701025, more than 1000 → 701026 (§6.4 Batches)."""
    items = objects(call.items(name, max_items=BATCH_MAX, too_many=701026), name)
    if not items:
        raise ApiError(701025, f"{name} is empty")
    return items


def all_failed(results: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Per-item errcodes with a top-level 0, unless every item failed (701024)."""
    if results and all(r["errcode"] for r in results):
        raise ApiError(701024, "every item failed", **{key: results})
    return {key: results}


# ----- §6.3 orders -------------------------------------------------------------------


@license_route("create_new_order")
def create_new_order(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid")
    buyer = call.text("buyer_userid")
    base, external = _counts(call)
    months, days = _duration(call)
    lic.check_buyer(call.state, buyer)
    corp = lic.authorized_corp(call.state, corpid)
    lic.check_counts(corp, base, external)
    lic.check_duration(corp, months, days)
    lic.check_not_blocked(call.state, corp)
    order = lic.new_order(
        call.state,
        corp=corp,
        buyer=buyer,
        base=base,
        external=external,
        months=months,
        days=days,
    )
    return {"order_id": order.order_id}


@license_route("create_renew_order_job")
def create_renew_order_job(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid")
    accounts = batch_items(call, "account_list")
    jobid = call.text("jobid", required=False)
    state = call.state
    corp = lic.authorized_corp(state, corpid)
    if jobid:
        job = state.renew_jobs.get(jobid)
        if job is None or job.corpid != corp.corpid:
            raise ApiError(40088, "jobid not found")
        if job.order_id:
            raise ApiError(701126, "the job was already submitted")
    else:
        job = RenewJob(jobid=ids.job_id(), corpid=corp.corpid, created_at=call.now())
    invalid = []
    for account in accounts:
        userid, type_ = account.get("userid"), account.get("type")
        if type_ not in lic.ACCOUNT_TYPES:
            errcode = 701006
        elif not isinstance(userid, str) or userid not in corp.users:
            errcode = 701019
        elif lic.valid_code(state, corp.corpid, userid, type_) is None:
            errcode = 701004  # renewing needs an active account of that type
        elif any(a["userid"] == userid and a["type"] == type_ for a in job.accounts):
            errcode = 701023
        else:
            job.accounts.append({"userid": userid, "type": type_})
            continue
        invalid.append(
            {"errcode": errcode, "errmsg": "invalid account", "userid": userid, "type": type_}
        )
    if not job.accounts:
        raise ApiError(701024, "no account can be renewed", invalid_account_list=invalid)
    if len(job.accounts) > lic.MAX_COUNT:
        raise ApiError(701014, "a job holds at most 1000000 accounts per type")
    state.renew_jobs[job.jobid] = job
    return {"jobid": job.jobid, "invalid_account_list": invalid}


@license_route("submit_order_job")
def submit_order_job(call: Call) -> dict[str, Any]:
    jobid = call.text("jobid")
    buyer = call.text("buyer_userid")
    duration = call.obj("account_duration")
    months = call.integer("months", required=False, default=0, source=duration)
    new_expire_time = call.integer("new_expire_time", required=False, source=duration)
    state = call.state
    lic.check_buyer(state, buyer)
    job = state.renew_jobs.get(jobid)
    if job is None:
        raise ApiError(40088, "jobid not found")
    if job.order_id:
        raise ApiError(701126, "the job was already submitted")
    corp = lic.authorized_corp(state, job.corpid)
    if bool(months) == (new_expire_time is not None):
        raise ApiError(40058, "give exactly one of months or new_expire_time")
    if new_expire_time is not None:
        new_expire_time = lic.end_of_day(new_expire_time)
        if new_expire_time <= call.now() or new_expire_time - call.now() > lic.MAX_DAYS * lic.DAY:
            raise ApiError(40058, "new_expire_time must be after today and ≤1860 days away")
        if corp.test:
            raise ApiError(701027, "a test corp renews by exactly 1 month")
    elif months > lic.MAX_MONTHS or months < 0 or (corp.test and months != 1):
        raise ApiError(701027 if corp.test else 40058, "months must be 1..60 (1 for a test corp)")
    lic.check_not_blocked(state, corp)
    accounts = lic.renewal_days(
        state, corp.corpid, job.accounts, months=months, new_expire_time=new_expire_time
    )
    accounts = [a for a in accounts if a["days"] > 0]
    if not accounts:
        raise ApiError(701090, "every account would gain 0 days")
    s = state.settings
    price = sum(
        a["days"] * (s.unit_price_base if a["type"] == 1 else s.unit_price_external)
        for a in accounts
    )
    order = Order(
        order_id=ids.order_id(),
        order_type=ORDER_RENEW,
        order_status=ORDER_UNPAID,
        corpid=corp.corpid,
        buyer_userid=buyer,
        price=0 if corp.test else price,
        base_count=sum(1 for a in accounts if a["type"] == 1),
        external_count=sum(1 for a in accounts if a["type"] == 2),
        months=months,
        new_expire_time=new_expire_time,
        create_time=call.ts(),
        test=corp.test,
        renew_accounts=accounts,
    )
    state.orders[order.order_id] = order
    job.order_id = order.order_id
    if corp.test:
        lic.pay_order(state, order)
    return {"order_id": order.order_id}


@license_route("list_order")
def list_order(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid", required=False)
    start = call.integer("start_time", required=False)
    end = call.integer("end_time", required=False)
    if (start is None) != (end is None):
        raise ApiError(40058, "start_time and end_time come together")
    if start is not None and not 0 <= end - start <= LIST_ORDER_WINDOW:
        raise ApiError(40058, "the creation-time window must span 0..31 days")
    state = call.state
    corp = lic.license_corp(state, corpid) if corpid else None
    orders = []
    for order in state.orders.values():
        if corp is not None:
            # A corp's own orders, sub-orders of multi-corp purchases included; parents are
            # listed only without corpid (§6.2 order_type 8).
            if order.corpid != corp.corpid or order.order_type == ORDER_MULTI:
                continue
        elif order.parent_id or order.test:
            # Test orders are listed only with the test corp's corpid (§6.3 list_order).
            continue
        if start is not None and not start <= order.create_time <= end:
            continue
        orders.append(order)
    orders.sort(key=lambda o: (o.create_time, o.order_id))
    page, cursor = paginate(call, orders, "order")
    return {
        **cursor,
        "order_list": [{"order_id": o.order_id, "order_type": o.order_type} for o in page],
    }


@license_route("get_order")
def get_order(call: Call) -> dict[str, Any]:
    order = lic.get_order(call.state, call.text("order_id"))
    return {"order": lic.order_view(order)}


@license_route("list_order_account")
def list_order_account(call: Call) -> dict[str, Any]:
    state = call.state
    order = lic.get_order(state, call.text("order_id"))
    if order.order_type == ORDER_MULTI:
        raise ApiError(701120, "pass a sub_order_id of the multi-corp order")
    if lic.codes_generating(state, order):
        raise ApiError(701022, "the accounts are still being generated")
    if not order.pay_time:
        items: list[dict[str, Any]] = []  # nothing before payment (§6.3)
    elif order.order_type == ORDER_RENEW:
        items = [{"userid": a["userid"], "type": a["type"]} for a in order.renew_accounts]
    else:
        codes = [c for c in lic.corp_codes(state, order.corpid) if c.order_id == order.order_id]
        items = []
        for code in codes:
            item: dict[str, Any] = {"active_code": code.active_code, "type": code.type}
            if code.userid:
                item["userid"] = code.userid
            items.append(item)
    page, cursor = paginate(call, items, f"acct-{order.order_id}")
    return {**cursor, "account_list": page}


@license_route("cancel_order")
def cancel_order(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid", required=False)
    state = call.state
    order = lic.get_order(state, call.text("order_id"))
    if order.parent_id:
        raise ApiError(701120, "cancel the multi-corp order, not one sub-order")
    if order.order_type != ORDER_MULTI:
        if not corpid:
            raise ApiError(40063, "corpid missing")
        corp = lic.license_corp(state, corpid)
        if corp.corpid != order.corpid:
            raise ApiError(701005, "the order does not belong to this corp")
    lic.cancel_order(state, order)
    return {}


def _job_item(call: Call, item: dict[str, Any], seen: set[str]) -> tuple[dict[str, Any], int]:
    """Validate one buy_list item; return (normalised item, errcode or 0)."""
    state = call.state
    corpid = item.get("corpid")
    corp = state.corp(corpid) if isinstance(corpid, str) else None
    if corp is None or not state.active_auths(corp.corpid):
        return item, 701015
    if corp.test:
        return item, 701121  # no multi-corp orders for test corps
    if corp.corpid in seen:
        return item, 701124
    try:
        base, external = _counts(call, item)
        months, days = _duration(call, item)
        lic.check_counts(corp, base, external)
        lic.check_duration(corp, months, days)
        auto = call.integer("auto_active_status", required=False, default=1, source=item)
    except ApiError as exc:
        return item, exc.errcode
    seen.add(corp.corpid)
    normalised = {
        "corpid": corp.corpid,
        "base_count": base,
        "external_count": external,
        "months": months,
        "days": days,
        "auto_active_status": 1 if auto else 0,
    }
    return normalised, 0


@license_route("create_new_order_job")
def create_new_order_job(call: Call) -> dict[str, Any]:
    items = objects(
        call.items("buy_list", max_items=MULTI_ITEMS_PER_CALL, too_many=701123), "buy_list"
    )
    if not items:
        raise ApiError(701025, "buy_list is empty")
    jobid = call.text("jobid", required=False)
    state = call.state
    if jobid:
        job = state.new_order_jobs.get(jobid)
        if job is None:
            raise ApiError(40088, "jobid not found")
        if job.submitted_at is not None:
            raise ApiError(701126, "the job was already submitted")
    else:
        job = NewOrderJob(jobid=ids.job_id(), created_at=call.now())
    if len(job.buy_list) + len(items) > MULTI_ITEMS_PER_JOB:
        raise ApiError(701123, "a job holds at most 100000 corps")
    seen = {b["corpid"] for b in job.buy_list}
    invalid = []
    for item in items:
        normalised, errcode = _job_item(call, item, seen)
        if errcode:
            invalid.append(
                {"corpid": item.get("corpid"), "errcode": errcode, "errmsg": "invalid item"}
            )
        else:
            job.buy_list.append(normalised)
    state.new_order_jobs[job.jobid] = job
    return {"jobid": job.jobid, "invalid_list": invalid}


@license_route("submit_new_order_job")
def submit_new_order_job(call: Call) -> dict[str, Any]:
    jobid = call.text("jobid")
    buyer = call.text("buyer_userid")
    state = call.state
    lic.check_buyer(state, buyer)
    job = state.new_order_jobs.get(jobid)
    if job is None:
        raise ApiError(40088, "jobid not found")
    if job.submitted_at is not None:
        raise ApiError(701126, "the job was already submitted")
    if not job.buy_list:
        raise ApiError(701025, "the job has no valid corp")
    parent = Order(
        order_id=ids.order_id(),
        order_type=ORDER_MULTI,
        order_status=ORDER_UNPAID,
        corpid="",
        buyer_userid=buyer,
        price=0,
        base_count=0,
        external_count=0,
        create_time=call.ts(),
    )
    for item in job.buy_list:
        sub = lic.new_order(
            state,
            corp=state.corps[item["corpid"]],
            buyer=buyer,
            base=item["base_count"],
            external=item["external_count"],
            months=item["months"],
            days=item["days"],
            parent_id=parent.order_id,
            auto_active_status=item["auto_active_status"],
        )
        parent.sub_order_ids.append(sub.order_id)
        parent.price += sub.price
        parent.base_count += sub.base_count
        parent.external_count += sub.external_count
    state.orders[parent.order_id] = parent
    job.order_id = parent.order_id
    job.submitted_at = call.now()
    return {}


@license_route("new_order_job_result")
def new_order_job_result(call: Call) -> dict[str, Any]:
    job = call.state.new_order_jobs.get(call.text("jobid"))
    if job is None:
        raise ApiError(40088, "jobid not found")
    if job.submitted_at is None:
        raise ApiError(701125, "the job was not submitted")
    if call.now() - job.submitted_at > JOB_RESULT_TTL:
        raise ApiError(40089, "the job result was cleared")
    return {"status": 1, "order_id": job.order_id, "fail_list": []}


@license_route("get_union_order")
def get_union_order(call: Call) -> dict[str, Any]:
    state = call.state
    order = lic.get_order(state, call.text("order_id"))
    if order.order_type != ORDER_MULTI:
        raise ApiError(701005, "not a multi-corp order")
    subs = [state.orders[s] for s in order.sub_order_ids]
    page, cursor = paginate(call, subs, f"union-{order.order_id}")
    view = lic.order_view(order)
    return {
        "order": {
            k: view[k]
            for k in ("order_id", "order_type", "order_status", "price", "create_time", "pay_time")
        },
        **cursor,
        "buy_list": [
            {
                "sub_order_id": s.order_id,
                "corpid": s.corpid,
                "account_count": lic.order_view(s)["account_count"],
                "account_duration": lic.order_view(s)["account_duration"],
            }
            for s in page
        ],
    }


@license_route("submit_pay_job")
def submit_pay_job(call: Call) -> dict[str, Any]:
    payer = call.text("payer_userid")
    state = call.state
    order = lic.get_order(state, call.text("order_id"))
    if order.parent_id:
        raise ApiError(701120, "pay the multi-corp order, not one sub-order")
    job = PayJob(
        jobid=ids.job_id(), order_id=order.order_id, payer_userid=payer, created_at=call.now()
    )
    # Payment from the recharge balance happens at once; failures land in the job result.
    balance = state.settings.balance
    if payer not in state.buyers:
        job.errcode, job.errmsg = 48001, "payer has no permission to pay"
    elif order.order_status != ORDER_UNPAID:
        job.errcode, job.errmsg = 701084, "the order is not awaiting payment"
    elif balance is None:
        job.errcode, job.errmsg = 90432, "recharge account not opened"
    elif balance < order.price:
        job.errcode, job.errmsg = 90433, "insufficient balance"
    else:
        state.settings.balance = balance - order.price
        lic.pay_order(state, order)
    state.pay_jobs[job.jobid] = job
    return {"jobid": job.jobid}


@license_route("pay_job_result")
def pay_job_result(call: Call) -> dict[str, Any]:
    job = call.state.pay_jobs.get(call.text("jobid"))
    if job is None:
        raise ApiError(40088, "jobid not found")
    if call.now() - job.created_at > JOB_RESULT_TTL:
        raise ApiError(40089, "the job result was cleared")
    return {
        "status": 3 if job.errcode else 1,
        "pay_job_result": {
            "errcode": job.errcode,
            "errmsg": job.errmsg,
            "fail_corp_list": list(job.fail_corp_list),
        },
    }


@route(
    "get_account_balance",
    "/cgi-bin/service/get_account_balance",
    method="GET",
    token=PROVIDER,
)
def get_account_balance(call: Call) -> dict[str, Any]:
    balance = call.state.settings.balance
    if balance is None:
        raise ApiError(90432, "recharge account not opened")
    return {"balance": balance}
