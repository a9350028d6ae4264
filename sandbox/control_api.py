"""The control API under /sandbox/…: configure, play WeCom's users, inspect, inject faults.

Every route is JSON in, JSON out. Failures answer 4xx with {"error": "..."} (and the
WeCom errcode when a license rule refused the action). The route list is documented
in the package docstring (sandbox/__init__.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from sandbox import actions
from sandbox import activation
from sandbox import credentials
from sandbox import faults as faults_mod
from sandbox import ids
from sandbox import licensing as lic
from sandbox import pushes
from sandbox.actions import ActionError
from sandbox.config import build_corp
from sandbox.config import build_suite
from sandbox.config import build_user
from sandbox.models import LoginCode
from sandbox.models import OAuthCode


@dataclass
class ControlCall:
    sandbox: Any  # the running Sandbox (state, scheduler, pusher)
    body: dict[str, Any]
    query: dict[str, str]
    params: dict[str, str]

    @property
    def state(self):
        return self.sandbox.state

    def get(self, name: str, default: Any = None, kind: type | tuple[type, ...] | None = None):
        value = self.body.get(name, default)
        if kind is not None and value is not None and not isinstance(value, kind):
            raise ActionError(f"{name} has the wrong type")
        return value

    def need(self, name: str, kind: type | tuple[type, ...] = str) -> Any:
        value = self.body.get(name)
        if value is None or value == "":
            raise ActionError(f"{name} is required")
        if not isinstance(value, kind):
            raise ActionError(f"{name} has the wrong type")
        return value


@dataclass(frozen=True)
class ControlRoute:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[ControlCall], Any]
    # Handlers that wait (pushes/wait) or call out (verify_url) must not hold the lock.
    locked: bool = True


CONTROL_ROUTES: list[ControlRoute] = []


def control(method: str, path: str, *, locked: bool = True):
    pattern = re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path) + "$")

    def register(fn):
        CONTROL_ROUTES.append(ControlRoute(method, pattern, fn, locked))
        return fn

    return register


def find(method: str, path: str) -> tuple[ControlRoute | None, dict[str, str], bool]:
    """Return (route, path params, whether the path exists under another method)."""
    path_known = False
    for r in CONTROL_ROUTES:
        match = r.pattern.match(path)
        if match:
            path_known = True
            if r.method == method:
                return r, match.groupdict(), True
    return None, {}, path_known


# ----- configuration and inspection --------------------------------------------------


@control("GET", "/sandbox/config")
def get_config(call: ControlCall):
    return call.state.config_view()


@control("POST", "/sandbox/settings")
def post_settings(call: ControlCall):
    body = dict(call.body)
    state = call.state
    if "callback_base" in body:
        base = body.pop("callback_base")
        state.callback_base = base.rstrip("/") if base else None
    if "ticket_interval" in body:
        state.ticket_interval = float(body.pop("ticket_interval"))
    if "buyers" in body:
        state.buyers = list(body.pop("buyers"))
    state.settings.update(body)
    return {
        "settings": state.settings.as_dict(),
        "callback_base": state.callback_base,
        "ticket_interval": state.ticket_interval,
    }


@control("GET", "/sandbox/state")
def get_state(call: ControlCall):
    return call.state.state_view()


@control("POST", "/sandbox/snapshot")
def post_snapshot(call: ControlCall):
    path = call.get("path", kind=str) or call.sandbox.snapshot_path
    if not path:
        raise ActionError("no snapshot path: pass path or start with --snapshot")
    call.state.save(path)
    return {"saved": path}


@control("POST", "/sandbox/suites")
def add_suite(call: ControlCall):
    state = call.state
    suite = build_suite(call.body)
    if suite.suite_id in state.suites:
        raise ActionError(f"suite {suite.suite_id} exists", 409)
    state.suites[suite.suite_id] = suite
    # A new suite gets its first ticket at once, then one every interval.
    actions.push_ticket(state, suite.suite_id)
    if call.sandbox.scheduler is not None:
        call.sandbox.scheduler.schedule_tickets(
            suite.suite_id, first=state.now() + (state.ticket_interval or 0)
        )
    return {"suite": asdict(suite)}


@control("POST", "/sandbox/corps")
def add_corp(call: ControlCall):
    state = call.state
    corp = build_corp(call.body)
    if corp.corpid in state.corps:
        raise ActionError(f"corp {corp.corpid} exists", 409)
    state.corps[corp.corpid] = corp
    return {"corp": {**asdict(corp), "users": [asdict(u) for u in corp.users.values()]}}


@control("POST", "/sandbox/corps/<corpid>/users")
def add_user(call: ControlCall):
    corp = actions.require_corp(call.state, call.params["corpid"])
    user = build_user(call.body)
    corp.users[user.userid] = user
    return {"user": asdict(user)}


@control("POST", "/sandbox/corps/<corpid>/users/<userid>")
def update_user(call: ControlCall):
    """Change a member silently (no event): visible range, status, admin flag …"""
    corp = actions.require_corp(call.state, call.params["corpid"])
    user = corp.users.get(call.params["userid"])
    if user is None:
        raise ActionError("unknown user", 404)
    for name, value in call.body.items():
        if name in ("userid", "open_userid") or not hasattr(user, name):
            raise ActionError(f"cannot set {name!r}")
        setattr(user, name, value)
    return {"user": asdict(user)}


@control("POST", "/sandbox/corps/<corpid>/remove_test")
def remove_test_corp(call: ControlCall):
    corp = actions.require_corp(call.state, call.params["corpid"])
    return {"invalidated_orders": lic.invalidate_test_orders(call.state, corp)}


# ----- authorization lifecycle -------------------------------------------------------


@control("POST", "/sandbox/install")
def install(call: ControlCall):
    state = call.state
    code = actions.install(
        state,
        call.need("suite_id"),
        call.need("corpid"),
        state_param=call.get("state", "", str),
        test=bool(call.get("test", False)),
        push_event=bool(call.get("push", True)),
    )
    auth = state.auth(code.suite_id, code.corpid)
    return {
        "auth_code": code.code,
        "expires_in": state.settings.auth_code_ttl,
        "corpid": code.corpid,
        "agentid": auth.agentid,
    }


@control("POST", "/sandbox/cancel_auth")
def cancel_auth(call: ControlCall):
    auth = actions.cancel_auth(call.state, call.need("suite_id"), call.need("corpid"))
    return {"status": auth.status}


@control("POST", "/sandbox/change_auth")
def change_auth(call: ControlCall):
    changes = {k: v for k, v in call.body.items() if k not in ("suite_id", "corpid")}
    auth = actions.change_auth(call.state, call.need("suite_id"), call.need("corpid"), changes)
    return {"authorization": asdict(auth)}


@control("POST", "/sandbox/reset_permanent_code")
def reset_permanent_code(call: ControlCall):
    code = actions.reset_permanent_code(call.state, call.need("suite_id"), call.need("corpid"))
    return {"auth_code": code.code, "new_permanent_code": code.permanent_code}


@control("POST", "/sandbox/change_edition")
def change_edition(call: ControlCall):
    changes = {k: v for k, v in call.body.items() if k not in ("suite_id", "corpid")}
    auth = actions.change_edition(call.state, call.need("suite_id"), call.need("corpid"), changes)
    return {"authorization": asdict(auth)}


@control("POST", "/sandbox/activity")
def app_activity(call: ControlCall):
    auth = actions.app_activity(
        call.state,
        call.need("suite_id"),
        call.need("corpid"),
        call.need("event"),
        effect_time=call.get("effect_time", kind=int),
    )
    return {"activity": auth.activity, "agent_state": auth.agent_state}


@control("POST", "/sandbox/dissolve_corp")
def dissolve_corp(call: ControlCall):
    actions.dissolve_corp(
        call.state,
        call.need("corpid"),
        errcode=call.get("errcode", kind=int),
        cancel_after=call.get("cancel_auth_after", kind=(int, float)),
    )
    return {"dissolved": True}


@control("POST", "/sandbox/contact_event")
def contact_event(call: ControlCall):
    sent = actions.contact_event(
        call.state,
        suite_id=call.get("suite_id", kind=str),
        corpid=call.need("corpid"),
        change_type=call.need("change_type"),
        info_type=call.get("info_type", "change_contact", str),
        data=call.get("data", {}, dict),
    )
    return {"pushes": sent}


@control("POST", "/sandbox/change_app_admin")
def change_app_admin(call: ControlCall):
    push_id = actions.change_app_admin(
        call.state,
        call.need("suite_id"),
        call.need("corpid"),
        call.get("admins", kind=list),
    )
    return {"push_id": push_id}


@control("POST", "/sandbox/unlicensed")
def unlicensed(call: ControlCall):
    corp = actions.require_corp(call.state, call.need("corpid"))
    return activation.unlicensed(
        call.state, corp, call.need("userid"), call.get("suite_id", kind=str)
    )


# ----- identity codes ----------------------------------------------------------------


@control("POST", "/sandbox/oauth_code")
def oauth_code(call: ControlCall):
    """Play a member opening the OAuth link: returns the `code` of the redirect."""
    state = call.state
    suite = actions.require_suite(state, call.need("suite_id"))
    corp = actions.require_corp(state, call.need("corpid"))
    openid = call.get("openid", "", str)
    userid = call.get("userid", "", str)
    if not openid and userid not in corp.users:
        raise ActionError("userid (a member of corpid) or openid is required")
    scope = call.get("scope", "snsapi_base", str)
    if scope not in ("snsapi_base", "snsapi_privateinfo"):
        raise ActionError("scope must be snsapi_base or snsapi_privateinfo")
    code = OAuthCode(
        code=ids.opaque(64),
        suite_id=suite.suite_id,
        corpid=corp.corpid,
        userid=userid,
        openid=openid,
        scope=scope,
        expires_at=state.now() + state.settings.oauth_code_ttl,
    )
    state.oauth_codes[code.code] = code
    return {"code": code.code, "expires_in": state.settings.oauth_code_ttl}


@control("POST", "/sandbox/login_code")
def login_code(call: ControlCall):
    """Play a member scanning the provider's web-login QR: returns the auth_code."""
    state = call.state
    corp = actions.require_corp(state, call.need("corpid"))
    userid = call.need("userid")
    user = corp.users.get(userid)
    if user is None:
        raise ActionError("unknown user", 404)
    usertype = call.get("usertype", 2 if user.admin else 5, int)
    if usertype not in (1, 2, 3, 4, 5):
        raise ActionError("usertype must be 1..5")
    code = LoginCode(
        code=ids.opaque(64),
        corpid=corp.corpid,
        userid=userid,
        usertype=usertype,
        expires_at=state.now() + state.settings.login_code_ttl,
    )
    state.login_codes[code.code] = code
    return {"auth_code": code.code, "expires_in": state.settings.login_code_ttl}


# ----- license orders ----------------------------------------------------------------


def _order(call: ControlCall):
    order = call.state.orders.get(call.params["order_id"])
    if order is None:
        raise ActionError("unknown order", 404)
    return order


@control("POST", "/sandbox/orders/<order_id>/pay")
def pay_order(call: ControlCall):
    order = _order(call)
    if order.parent_id:
        raise ActionError("pay the multi-corp order, not a sub-order")
    if order.order_status != 0:
        raise ActionError(f"order status is {order.order_status}, not 0", 409)
    lic.pay_order(call.state, order)
    return {"order": lic.order_view(order)}


@control("POST", "/sandbox/orders/<order_id>/refund")
def refund_order(call: ControlCall):
    order = _order(call)
    action = call.get("action", "approve", str)
    if action not in ("request", "approve", "reject"):
        raise ActionError("action must be request, approve or reject")
    lic.refund_order(call.state, order, action)
    return {"order": lic.order_view(order)}


@control("POST", "/sandbox/orders/<order_id>/expire")
def expire_order(call: ControlCall):
    order = _order(call)
    lic.expire_order(call.state, order)
    return {"order": lic.order_view(order)}


# ----- tickets, clock, tokens --------------------------------------------------------


@control("POST", "/sandbox/push_ticket")
def push_ticket(call: ControlCall):
    state = call.state
    suite_id = call.get("suite_id", kind=str)
    suite_ids = (
        [actions.require_suite(state, suite_id).suite_id] if suite_id else list(state.suites)
    )
    tickets = {sid: actions.push_ticket(state, sid).ticket for sid in suite_ids}
    return {"tickets": tickets}


@control("GET", "/sandbox/clock")
def get_clock(call: ControlCall):
    return {"now": call.state.now(), "offset": call.state.clock.offset}


@control("POST", "/sandbox/clock/advance", locked=False)
def advance_clock(call: ControlCall):
    seconds = call.need("seconds", (int, float))
    if seconds < 0:
        raise ActionError("the clock only moves forward")
    now = call.state.clock.advance(seconds)
    # Fire what became due now, so the caller sees its effects without racing the thread.
    if call.sandbox.scheduler is not None:
        call.sandbox.scheduler.run_due()
    return {"now": now, "offset": call.state.clock.offset}


@control("POST", "/sandbox/tokens/revoke")
def revoke_tokens(call: ControlCall):
    count = credentials.revoke_tokens(
        call.state,
        value=call.get("token", kind=str),
        kind=call.get("kind", kind=str),
        suite_id=call.get("suite_id", kind=str),
        corpid=call.get("corpid", kind=str),
    )
    return {"revoked": count}


# ----- faults ------------------------------------------------------------------------


@control("GET", "/sandbox/faults")
def list_faults(call: ControlCall):
    return {"faults": [f.as_dict() for f in call.state.faults]}


@control("POST", "/sandbox/faults")
def add_fault(call: ControlCall):
    fault = faults_mod.make_fault(next(call.state.fault_ids), call.body)
    call.state.faults.append(fault)
    return {"fault": fault.as_dict()}


@control("DELETE", "/sandbox/faults")
def clear_faults(call: ControlCall):
    count = len(call.state.faults)
    call.state.faults.clear()
    return {"cleared": count}


# ----- request log, pushes, URL verification -----------------------------------------


@control("GET", "/sandbox/requests")
def list_requests(call: ControlCall):
    entries = list(call.state.requests)
    if name := call.query.get("endpoint"):
        entries = [e for e in entries if e["endpoint"] == name]
    if errcode := call.query.get("errcode"):
        entries = [e for e in entries if str(e["errcode"]) == errcode]
    if since := call.query.get("since_id"):
        entries = [e for e in entries if e["id"] > int(since)]
    return {"requests": entries, "http_hits": call.state.http_hits}


@control("DELETE", "/sandbox/requests")
def clear_requests(call: ControlCall):
    count = len(call.state.requests)
    call.state.requests.clear()
    return {"cleared": count}


@control("GET", "/sandbox/pushes")
def list_pushes(call: ControlCall):
    records = [r.as_dict() for r in call.state.pushes]
    for key in ("info_type", "channel", "status", "suite_id", "corpid"):
        if value := call.query.get(key):
            records = [r for r in records if r[key] == value]
    if since := call.query.get("since_id"):
        records = [r for r in records if r["id"] > int(since)]
    return {"pushes": records}


@control("DELETE", "/sandbox/pushes")
def clear_pushes(call: ControlCall):
    count = len(call.state.pushes)
    call.state.pushes.clear()
    return {"cleared": count}


@control("POST", "/sandbox/pushes/wait", locked=False)
def wait_pushes(call: ControlCall):
    timeout = call.get("timeout", 10, (int, float))
    drained = call.sandbox.wait_pushes(timeout)
    return {"drained": drained, "pending": call.sandbox.pusher.pending}


@control("POST", "/sandbox/verify_url", locked=False)
def verify_url(call: ControlCall):
    channel = call.get("channel", "command", str)
    if channel not in (pushes.COMMAND, pushes.DATA, pushes.SYSTEM):
        raise ActionError("channel must be command, data or system")
    suite_id = call.get("suite_id", kind=str)
    with call.state.lock:
        if channel != pushes.SYSTEM:
            actions.require_suite(call.state, suite_id)
    return pushes.verify_url(call.state, channel=channel, suite_id=suite_id)


@control("GET", "/sandbox/verifications")
def list_verifications(call: ControlCall):
    return {"verifications": list(call.state.verifications)}
