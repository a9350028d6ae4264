"""What an installed app asks (§5.5–§5.8): admins, permissions, QR codes and links, ID
conversion, OAuth identity, JS-SDK tickets, callback IPs."""

from __future__ import annotations

import struct
import zlib
from typing import Any
from urllib.parse import quote

from sandbox import ids
from sandbox.api import BATCH_MAX
from sandbox.api import Call
from sandbox.api import Raw
from sandbox.api import route
from sandbox.api import strings
from sandbox.api_auth import CUSTOMIZED_AUTH_PATH
from sandbox.api_auth import check_state
from sandbox.api_auth import corp_or_40013
from sandbox.api_auth import token_auth
from sandbox.api_auth import token_suite
from sandbox.credentials import CORP
from sandbox.credentials import PROVIDER
from sandbox.credentials import SUITE
from sandbox.errors import ApiError
from sandbox.models import Authorization
from sandbox.models import Corp
from sandbox.models import JsTicket
from sandbox.models import UserTicket
from sandbox.models import akey

# ----- §5.5 admins, permissions, QR codes, links -------------------------------------


def _admins(corp: Corp, auth: Authorization) -> list:
    if auth.auth_mode == 1:  # member authorization has no admin list (§4.3)
        return []
    return [u for u in corp.users.values() if u.admin]


@route("get_admin_list", "/cgi-bin/agent/get_admin_list", token=CORP)
def get_admin_list(call: Call) -> dict[str, Any]:
    corp, auth = token_auth(call)
    return {"admin": [{"userid": u.userid, "auth_type": 1} for u in _admins(corp, auth)]}


@route("get_admin_list_legacy", "/cgi-bin/service/get_admin_list", token=SUITE)
def get_admin_list_legacy(call: Call) -> dict[str, Any]:
    corpid = call.text("auth_corpid")
    agentid = call.integer("agentid")
    corp = corp_or_40013(call, corpid)
    auth = call.state.auth(call.token.suite_id, corp.corpid)
    if auth is None or not auth.active:
        raise ApiError(48004, "no authorization between this corp and suite")
    if agentid != auth.agentid:
        raise ApiError(40056, "the agentid does not belong to this suite")
    return {
        "admin": [
            {"userid": u.userid, "open_userid": u.open_userid, "auth_type": 1}
            for u in _admins(corp, auth)
        ]
    }


@route("get_permissions", "/cgi-bin/agent/get_permissions", token=CORP)
def get_permissions(call: Call) -> dict[str, Any]:
    _, auth = token_auth(call)
    return {"app_permissions": list(auth.app_permissions)}


def _png(width: int = 21, seed: str = "") -> bytes:
    """Return a small valid grayscale PNG (a stand-in for a QR code image)."""
    rows = b""
    for y in range(width):
        row = bytes(0 if (hash((seed, x, y)) & 1) else 255 for x in range(width))
        rows += b"\x00" + row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, width, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@route("get_app_qrcode", "/cgi-bin/service/get_app_qrcode", token=SUITE)
def get_app_qrcode(call: Call) -> dict[str, Any] | Raw:
    suite_id = call.text("suite_id", missing=41021)
    if suite_id != call.token.suite_id:
        raise ApiError(48003, "suite_id does not match the suite_access_token")
    suite = token_suite(call)
    if suite.customized or not suite.published:
        raise ApiError(48002, "only published third-party apps have an install QR code")
    call.integer("appid", required=False, default=1)
    state = check_state(call.text("state", required=False), 32)
    style = call.integer("style", required=False, default=0)
    result_type = call.integer("result_type", required=False, default=1)
    if style not in (0, 1, 2, 3, 4) or result_type not in (1, 2):
        raise ApiError(40058, "style must be 0..4 and result_type 1 or 2")
    if result_type == 1:
        return Raw(_png(seed=suite_id + state), "image/png")
    url = f"https://open.work.weixin.qq.com/3rdqrcode/{suite_id}/{ids.alnum(16)}?state={state}"
    return {"qrcode": url}


@route(
    "get_customized_auth_url",
    "/cgi-bin/service/get_customized_auth_url",
    token=PROVIDER,
)
def get_customized_auth_url(call: Call) -> dict[str, Any]:
    state = check_state(call.text("state", required=False), 32)
    templates = strings(call.items("templateid_list", max_items=9), "templateid_list")
    if not templates:
        raise ApiError(40063, "templateid_list is empty")
    for template_id in templates:
        suite = call.state.suite(template_id)
        if suite is None or not suite.customized:
            raise ApiError(40083, f"{template_id} is not a 代开发 template of this provider")
    # On the simulator's own host, like its install page: opening the link (with
    # &corpid=…) plays the corp admin who scans it and authorizes (see server.py).
    url = (
        f"{call.base_url}{CUSTOMIZED_AUTH_PATH}"
        f"?templateid={quote(','.join(templates))}&state={state}&t={ids.alnum(12)}"
    )
    return {"qrcode_url": url, "expires_in": 864000}


@route("get_register_code", "/cgi-bin/service/get_register_code", token=PROVIDER)
def get_register_code(call: Call) -> dict[str, Any]:
    # Minimal: promotion registration is not simulated beyond issuing a code.
    call.text("template_id")
    check_state(call.text("state", required=False), 128)
    return {"register_code": ids.opaque(64), "expires_in": 86400}


# ----- §5.6 ID conversion ------------------------------------------------------------


@route("corpid_to_opencorpid", "/cgi-bin/service/corpid_to_opencorpid", token=PROVIDER)
def corpid_to_opencorpid(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid")
    corp = call.state.corp(corpid)
    if corp is None or not any(a.corpid == corp.corpid for a in call.state.auths.values()):
        raise ApiError(48001, "no authorization relationship with this corp")
    return {"open_corpid": corp.corpid}


@route("userid_to_openuserid", "/cgi-bin/batch/userid_to_openuserid", token=CORP)
def userid_to_openuserid(call: Call) -> dict[str, Any]:
    userids = strings(call.items("userid_list", max_items=BATCH_MAX), "userid_list")
    corp, _ = token_auth(call)
    found, invalid = [], []
    for userid in userids:
        user = corp.users.get(userid)
        if user is not None and user.visible:
            found.append({"userid": userid, "open_userid": user.open_userid})
        else:
            invalid.append(userid)
    return {"open_userid_list": found, "invalid_userid_list": invalid}


# ----- §5.7 identity -----------------------------------------------------------------


def _oauth_user(call: Call, *, legacy: bool) -> dict[str, Any]:
    value = call.text("code", missing=41008, source=call.query)
    state = call.state
    code = state.oauth_codes.get(value)
    if (
        code is None
        or code.used
        or code.expires_at <= call.now()
        or code.suite_id != call.token.suite_id
    ):
        raise ApiError(40029, "code reused, older than 300 s, or another suite's")
    code.used = True
    if code.openid:
        return {"OpenId": code.openid} if legacy else {"openid": code.openid}
    corp = state.corp(code.corpid)
    user = corp.users.get(code.userid) if corp else None
    if user is None:
        raise ApiError(40029, "the member behind this code left")
    body: dict[str, Any] = (
        {"CorpId": corp.corpid, "UserId": user.userid, "DeviceId": ""}
        if legacy
        else {"corpid": corp.corpid, "userid": user.userid}
    )
    if code.scope == "snsapi_privateinfo" and user.visible:
        ttl = state.settings.user_ticket_ttl
        ticket = UserTicket(
            ticket=ids.opaque(96),
            suite_id=code.suite_id,
            corpid=corp.corpid,
            userid=user.userid,
            expires_at=call.now() + ttl,
        )
        state.user_tickets[ticket.ticket] = ticket
        body.update(user_ticket=ticket.ticket, expires_in=ttl)
    body["open_userid"] = user.open_userid
    return body


@route("getuserinfo3rd", "/cgi-bin/service/auth/getuserinfo3rd", method="GET", token=SUITE)
def getuserinfo3rd(call: Call) -> dict[str, Any]:
    return _oauth_user(call, legacy=False)


@route("getuserinfo3rd_legacy", "/cgi-bin/service/getuserinfo3rd", method="GET", token=SUITE)
def getuserinfo3rd_legacy(call: Call) -> dict[str, Any]:
    return _oauth_user(call, legacy=True)


def _user_detail(call: Call) -> dict[str, Any]:
    value = call.text("user_ticket")
    ticket = call.state.user_tickets.get(value)
    if ticket is None or ticket.suite_id != call.token.suite_id:
        raise ApiError(84015, "invalid user_ticket")
    if ticket.expires_at <= call.now():
        raise ApiError(84014, "user_ticket expired")
    corp = call.state.corp(ticket.corpid)
    user = corp.users.get(ticket.userid) if corp else None
    if user is None:
        raise ApiError(84015, "the member behind this user_ticket left")
    return {
        "corpid": corp.corpid,
        "userid": user.userid,
        "name": user.userid,  # since 2020-06-30 name carries the userid (§5.7)
        "gender": str(user.gender),  # a string on the wire (§1 Types)
        "avatar": user.avatar,
        "qr_code": f"https://open.work.weixin.qq.com/wwopen/userQRCode?vcode={ids.alnum(16)}",
    }


@route("getuserdetail3rd", "/cgi-bin/service/auth/getuserdetail3rd", token=SUITE)
def getuserdetail3rd(call: Call) -> dict[str, Any]:
    return _user_detail(call)


@route("getuserdetail3rd_legacy", "/cgi-bin/service/getuserdetail3rd", token=SUITE)
def getuserdetail3rd_legacy(call: Call) -> dict[str, Any]:
    return _user_detail(call)


@route(
    "get_login_info",
    "/cgi-bin/service/get_login_info",
    token=PROVIDER,
    token_param="access_token",  # the one provider API taking it as access_token (§2)
)
def get_login_info(call: Call) -> dict[str, Any]:
    value = call.text("auth_code", missing=41008)
    code = call.state.login_codes.get(value)
    if code is None or code.used or code.expires_at <= call.now():
        raise ApiError(40029, "login auth_code reused, expired or unknown")
    code.used = True
    corp = call.state.corp(code.corpid)
    user = corp.users.get(code.userid) if corp else None
    if user is None:
        raise ApiError(40029, "the member behind this code left")
    body: dict[str, Any] = {
        "usertype": code.usertype,
        "user_info": {
            "userid": user.userid,
            "open_userid": user.open_userid,
            "name": user.userid,
            "avatar": user.avatar,
        },
        "corp_info": {"corpid": corp.corpid},
    }
    if code.usertype <= 4:  # admins see their apps and departments
        body["agent"] = [
            {"agentid": a.agentid, "auth_type": 1} for a in call.state.active_auths(corp.corpid)
        ]
        body["auth_info"] = {"department": [{"id": 1, "writable": True}]}
    return body


# ----- §5.8 JS-SDK tickets, callback IPs ---------------------------------------------


def _js_ticket(call: Call, kind: str) -> dict[str, Any]:
    corp, auth = token_auth(call)
    key = f"{kind}:{akey(auth.suite_id, corp.corpid)}"
    now = call.now()
    ticket = call.state.js_tickets.get(key)
    if ticket is None or ticket.expires_at <= now:
        ticket = JsTicket(
            ticket=ids.opaque(86),
            kind=kind,
            subject=akey(auth.suite_id, corp.corpid),
            expires_at=now + call.state.settings.token_ttl,
        )
        call.state.js_tickets[key] = ticket
    return {"ticket": ticket.ticket, "expires_in": max(1, int(ticket.expires_at - now))}


@route("get_jsapi_ticket", "/cgi-bin/get_jsapi_ticket", method="GET", token=CORP)
def get_jsapi_ticket(call: Call) -> dict[str, Any]:
    return _js_ticket(call, "jsapi")


@route("get_agent_jsapi_ticket", "/cgi-bin/ticket/get", method="GET", token=CORP)
def get_agent_jsapi_ticket(call: Call) -> dict[str, Any]:
    if call.query.get("type") != "agent_config":
        raise ApiError(40058, "type must be agent_config")
    return _js_ticket(call, "agent_config")


@route("getcallbackip", "/cgi-bin/getcallbackip", method="GET", token=CORP)
def getcallbackip(call: Call) -> dict[str, Any]:
    token_auth(call)
    return {"ip_list": list(call.state.settings.callback_ip_list)}
