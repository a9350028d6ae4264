"""Licence account endpoints (§6.4): activation, account info, transfer, sharing, app info."""

from __future__ import annotations

from typing import Any

from sandbox import activation
from sandbox import licensing as lic
from sandbox.api import BATCH_MAX
from sandbox.api import Call
from sandbox.api import paginate
from sandbox.api import strings
from sandbox.api_license import all_failed
from sandbox.api_license import batch_items
from sandbox.api_license import license_route
from sandbox.errors import ApiError
from sandbox.models import CODE_BOUND
from sandbox.models import CODE_EXPIRED
from sandbox.models import CODE_PENDING_TRANSFER
from sandbox.models import ckey

# ----- §6.4 accounts -----------------------------------------------------------------


@license_route("active_account")
def active_account(call: Call) -> dict[str, Any]:
    code = call.text("active_code")
    corpid = call.text("corpid")
    userid = call.text("userid")
    corp = lic.license_corp(call.state, corpid)
    errcode = activation.activate_one(call.state, corp, code, userid)
    if errcode:
        raise ApiError(errcode)
    return {}


@license_route("batch_active_account")
def batch_active_account(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    items = batch_items(call, "active_list")
    codes_seen: set[str] = set()
    users_seen: set[tuple[str, int]] = set()
    results = []
    for item in items:
        code, userid = item.get("active_code"), item.get("userid")
        if not isinstance(code, str) or not isinstance(userid, str):
            errcode = 40058
        elif code in codes_seen:
            errcode = 701020  # the same code twice in one call
        else:
            codes_seen.add(code)
            found = call.state.codes.get(ckey(corp.corpid, code))
            pair = (userid, found.type if found else 0)
            if found is not None and pair in users_seen:
                errcode = 701023  # two codes of one type for the same user
            else:
                users_seen.add(pair)
                errcode = activation.activate_one(call.state, corp, code, userid)
        results.append({"active_code": code, "userid": userid, "errcode": errcode})
    return all_failed(results, "active_result")


@license_route("active_account_by_type")
def active_account_by_type(call: Call) -> dict[str, Any]:
    type_ = call.integer("type")
    corp = lic.license_corp(call.state, call.text("corpid"))
    userid = call.text("userid")
    activation.activate_by_type(call.state, corp, type_, userid)
    return {}


@license_route("get_active_info_by_code")
def get_active_info_by_code(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    code = call.state.codes.get(ckey(corp.corpid, call.text("active_code")))
    if code is None or code.void:
        raise ApiError(701021, "unknown active_code")
    return {"active_info": lic.active_info(call.state, code)}


@license_route("batch_get_active_info_by_code")
def batch_get_active_info_by_code(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    wanted = strings(
        call.items("active_code_list", max_items=BATCH_MAX, too_many=701026), "active_code_list"
    )
    if not wanted:
        raise ApiError(701025, "active_code_list is empty")
    infos, invalid = [], []
    for value in wanted:
        code = call.state.codes.get(ckey(corp.corpid, value))
        if code is None or code.void:
            invalid.append(value)
        else:
            infos.append(lic.active_info(call.state, code))
    return {"active_info_list": infos, "invalid_active_code_list": invalid}


@license_route("list_actived_account")  # (sic) WeCom's spelling
def list_actived_account(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    bound = (CODE_BOUND, CODE_EXPIRED, CODE_PENDING_TRANSFER)
    codes = [c for c in lic.corp_codes(call.state, corp.corpid) if c.userid and c.status in bound]
    codes.sort(key=lambda c: (c.active_time, c.active_code))
    page, cursor = paginate(call, codes, f"active-{corp.corpid}")
    return {
        **cursor,
        "account_list": [
            {
                "userid": c.userid,
                "type": c.type,
                "expire_time": c.expire_time,
                "active_time": c.active_time,
            }
            for c in page
        ],
    }


@license_route("get_active_info_by_user")
def get_active_info_by_user(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    userid = call.text("userid")
    if userid not in corp.users:
        raise ApiError(701019, "userid is not a member of the corp")
    codes = [c for c in lic.user_codes(call.state, corp.corpid, userid) if c.status == CODE_BOUND]
    return {
        "active_status": int(bool(codes)),
        "active_info_list": [
            {
                "active_code": c.active_code,
                "type": c.type,
                "userid": c.userid,
                "active_time": c.active_time,
                "expire_time": c.expire_time,
            }
            for c in codes
        ],
    }


@license_route("batch_transfer_license")
def batch_transfer_license(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    items = batch_items(call, "transfer_list")
    moved: set[str] = set()
    results = []
    for item in items:
        handover, takeover = item.get("handover_userid"), item.get("takeover_userid")
        if not isinstance(handover, str) or not isinstance(takeover, str):
            errcode = 40058
        else:
            errcode = activation.transfer_one(call.state, corp, handover, takeover, moved)
        results.append(
            {"handover_userid": handover, "takeover_userid": takeover, "errcode": errcode}
        )
    return all_failed(results, "transfer_result")


@license_route("batch_share_active_code")
def batch_share_active_code(call: Call) -> dict[str, Any]:
    state = call.state
    source = lic.license_corp(state, call.text("from_corpid"))
    target = lic.license_corp(state, call.text("to_corpid"))
    items = batch_items(call, "share_list")
    link_type = call.integer("corp_link_type", required=False, default=0)
    if link_type not in (0, 1):
        raise ApiError(40058, "corp_link_type must be 0 or 1")
    if source.test or target.test:
        raise ApiError(701150, "test corps cannot share")
    if target.upstream != source.corpid or not state.active_auths(target.corpid):
        raise ApiError(701051, "the app is not shared down to this corp")
    budget = [activation.share_budget(state, target)]
    failures = []
    for item in items:
        code = item.get("active_code")
        errcode = (
            activation.share_one(state, source, target, code, budget)
            if isinstance(code, str)
            else 40058
        )
        if errcode:
            failures.append({"active_code": code, "errcode": errcode, "errmsg": "share failed"})
    if failures and len(failures) == len(items):
        raise ApiError(701024, "every item failed", share_result=failures)
    return {"share_result": failures}  # failures only (§6.4)


@license_route("get_app_license_info")
def get_app_license_info(call: Call) -> dict[str, Any]:
    state = call.state
    corp = lic.license_corp(state, call.text("corpid"))
    suite_id = call.text("suite_id", missing=41021)
    call.integer("appid", required=False)
    suite = state.suite(suite_id)
    if suite is None:
        raise ApiError(40083, "unknown suite_id")
    started = state.trials.get(f"{suite.suite_id}|{corp.corpid}")
    if started is None:
        raise ApiError(701015, "the corp never installed this app")
    body: dict[str, Any] = {
        "license_status": suite.license_status,
        "license_check_time": state.settings.license_check_time or 0,
    }
    # A 90-day trial from the first install; none for test corps (§6.1).
    if suite.license_status == 1 and not corp.test:
        start = int(started)
        body["trail_info"] = {  # (sic)
            "start_time": start,
            "end_time": start + state.settings.trial_days * lic.DAY,
        }
    return body


@license_route("set_auto_active_status")
def set_auto_active_status(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    status = call.integer("auto_active_status")
    if status not in (0, 1):
        raise ApiError(40058, "auto_active_status must be 0 or 1")
    if not lic.has_paid_order(call.state, corp.corpid):
        raise ApiError(701071, "the corp never bought a license")
    corp.auto_active = status
    return {}


@license_route("get_auto_active_status")
def get_auto_active_status(call: Call) -> dict[str, Any]:
    corp = lic.license_corp(call.state, call.text("corpid"))
    return {"auto_active_status": corp.auto_active}
