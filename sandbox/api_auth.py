"""Credential and authorization endpoints (§5.1–§5.4, §11 items 1–10, 18).

Tokens, pre-auth codes, the permanent code, auth info, corp tokens. What an installed
app asks afterwards is api_authorized.py's.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox import credentials
from sandbox import ids
from sandbox.api import Call
from sandbox.api import route
from sandbox.credentials import CORP
from sandbox.credentials import PROVIDER
from sandbox.credentials import SUITE
from sandbox.errors import ApiError
from sandbox.models import Authorization
from sandbox.models import Corp
from sandbox.models import PreAuthCode
from sandbox.models import Suite
from sandbox.models import akey

STATE_RE = re.compile(r"[A-Za-z0-9]*")
# Where get_customized_auth_url's links point (WeCom's path, on the simulator's host).
CUSTOMIZED_AUTH_PATH = "/3rdservice/wework/customized/auth"


# ----- helpers -----------------------------------------------------------------------


def token_suite(call: Call) -> Suite:
    return call.state.suites[call.token.suite_id]


def token_auth(call: Call) -> tuple[Corp, Authorization]:
    """Return the corp and authorization a corp access_token was issued for."""
    token = call.token
    corp = call.state.corp(token.corpid)
    auth = call.state.auth(token.suite_id, token.corpid)
    if corp is None or auth is None or not auth.active:
        raise ApiError(48004, "the authorization behind this access_token is gone")
    if corp.dissolved:
        raise ApiError(corp.dissolved)
    return corp, auth


def corp_or_40013(call: Call, corpid: str) -> Corp:
    corp = call.state.corp(corpid)
    if corp is None:
        raise ApiError(40013, f"unknown corpid {corpid}")
    return corp


def _auth_by_code(call: Call) -> tuple[Corp, Authorization]:
    """Resolve {auth_corpid, permanent_code} for the calling suite (40084 / 48004)."""
    corpid = call.text("auth_corpid")
    permanent_code = call.text("permanent_code", missing=41025)
    corp = corp_or_40013(call, corpid)
    auth = call.state.auth(call.token.suite_id, corp.corpid)
    if auth is None:
        raise ApiError(48004, "no authorization between this corp and suite")
    if not auth.active or permanent_code != auth.permanent_code:
        raise ApiError(40084, "wrong, cancelled or foreign permanent_code")
    return corp, auth


def check_state(value: str, max_len: int) -> str:
    if len(value.encode()) > max_len or not STATE_RE.fullmatch(value):
        raise ApiError(40058, f"state must be [a-zA-Z0-9], ≤{max_len} bytes")
    return value


def corp_info(corp: Corp, auth: Authorization, *, full: bool) -> dict[str, Any]:
    """auth_corp_info: slim in v2 get_permanent_code, full in get_auth_info and v1."""
    info: dict[str, Any] = {"corpid": corp.corpid, "corp_name": corp.name}
    if not full:
        return info
    member_auth = auth.auth_mode == 1  # §4.3: scale and industry are empty then
    info.update(
        corp_type=corp.corp_type,
        corp_square_logo_url=f"https://p.qlogo.cn/bizmail/{corp.corpid}/0",
        corp_user_max=corp.user_max,
        corp_full_name=corp.full_name,
        verified_end_time=0,
        subject_type=corp.subject_type,
        corp_scale="" if member_auth else corp.scale,
        corp_industry="" if member_auth else corp.industry,
        corp_sub_industry="" if member_auth else corp.sub_industry,
        corp_ex_name={"name_list": []},
    )
    return info


def agent_info(suite: Suite, auth: Authorization) -> dict[str, Any]:
    return {
        "agentid": auth.agentid,
        "name": suite.name,
        "round_logo_url": f"https://p.qlogo.cn/bizmail/{suite.suite_id}/round",
        "square_logo_url": f"https://p.qlogo.cn/bizmail/{suite.suite_id}/0",
        "appid": 1,
        "auth_mode": auth.auth_mode,
        "is_customized_app": auth.customized,
        "auth_from_thirdapp": False,
        "privilege": {
            "level": 0 if auth.customized else auth.level,
            "allow_party": list(auth.allow_party),
            "allow_user": list(auth.allow_user),
            "allow_tag": list(auth.allow_tag),
            "extra_party": [],
            "extra_user": [],
            "extra_tag": [],
        },
    }


def _installer(corp: Corp, auth: Authorization) -> dict[str, Any]:
    user = corp.users.get(auth.installer)
    if user is None:
        return {}
    return {
        "userid": user.userid,
        "open_userid": user.open_userid,
        "name": user.userid,  # since 2020-06-30 names are not given to third parties
        "avatar": user.avatar,
    }


def _issue_corp_token(call: Call, auth: Authorization) -> tuple[Any, int]:
    return credentials.issue_token(
        call.state,
        CORP,
        akey(auth.suite_id, auth.corpid),
        suite_id=auth.suite_id,
        corpid=auth.corpid,
    )


# ----- §5.1 tokens and pre-auth ------------------------------------------------------


@route(
    "get_provider_token",
    "/cgi-bin/service/get_provider_token",
    legacy="omit",
)
def get_provider_token(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid", missing=41002)
    secret = call.text("provider_secret", missing=41004)
    provider = call.state.provider
    if corpid != provider.corpid:
        raise ApiError(40013, "corpid is not this provider's")
    if secret != provider.provider_secret:
        raise ApiError(40001, "wrong provider_secret")
    token, expires_in = credentials.issue_token(call.state, PROVIDER, corpid)
    return {"provider_access_token": token.value, "expires_in": expires_in}


@route("get_suite_token", "/cgi-bin/service/get_suite_token", legacy="optional")
def get_suite_token(call: Call) -> dict[str, Any]:
    suite_id = call.text("suite_id", missing=41021)
    secret = call.text("suite_secret", missing=41024)
    ticket = call.text("suite_ticket", missing=41023)
    suite = call.state.suite(suite_id)
    if suite is None:
        raise ApiError(40083, "unknown suite_id")
    if secret != suite.secret:
        raise ApiError(40080, "wrong suite_secret")
    if not credentials.ticket_valid(call.state, suite_id, ticket):
        raise ApiError(40085, "suite_ticket unknown or older than 1800 s")
    token, expires_in = credentials.issue_token(call.state, SUITE, suite_id, suite_id=suite_id)
    return {"suite_access_token": token.value, "expires_in": expires_in}


@route(
    "get_pre_auth_code",
    "/cgi-bin/service/get_pre_auth_code",
    method="GET",
    token=SUITE,
)
def get_pre_auth_code(call: Call) -> dict[str, Any]:
    ttl = call.state.settings.pre_auth_code_ttl
    code = PreAuthCode(
        code=ids.opaque(64), suite_id=call.token.suite_id, expires_at=call.now() + ttl
    )
    call.state.pre_auth_codes[code.code] = code
    return {"pre_auth_code": code.code, "expires_in": ttl}


def lookup_pre_auth_code(state, suite_id: str, value: str) -> PreAuthCode:
    """Return a live pre_auth_code of suite_id: unknown → 40077, expired → 42007."""
    code = state.pre_auth_codes.get(value)
    if code is None or code.suite_id != suite_id:
        raise ApiError(40077, "unknown pre_auth_code")
    if code.expires_at <= state.now():
        raise ApiError(42007, "pre_auth_code expired")
    return code


@route("set_session_info", "/cgi-bin/service/set_session_info", token=SUITE)
def set_session_info(call: Call) -> dict[str, Any]:
    value = call.text("pre_auth_code")
    session = call.obj("session_info")
    code = lookup_pre_auth_code(call.state, call.token.suite_id, value)
    appid = call.items("appid", required=False, source=session)
    if not all(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in appid):
        raise ApiError(40086, "appid must be a list of app ids")
    auth_type = call.integer("auth_type", required=False, default=0, source=session)
    if auth_type not in (0, 1):
        raise ApiError(40058, "auth_type must be 0 or 1")
    code.appid = appid
    code.auth_type = auth_type
    return {}


# ----- §5.2 permanent code -----------------------------------------------------------


def _exchange_auth_code(call: Call) -> tuple[Corp, Authorization, str]:
    """Consume an auth_code (single use, shared by v1 and v2) and return what it grants."""
    value = call.text("auth_code", missing=41008)
    state = call.state
    code = state.auth_codes.get(value)
    if (
        code is None
        or code.used
        or code.expires_at <= call.now()
        or code.suite_id != call.token.suite_id
    ):
        raise ApiError(40078, "auth_code consumed, expired or another suite's")
    corp = state.corp(code.corpid)
    auth = state.auth(code.suite_id, code.corpid)
    if corp is None or auth is None or not auth.active:
        raise ApiError(40078, "the authorization behind this auth_code is gone")
    if code.generation != auth.generation or (
        code.purpose == "install" and code.permanent_code != auth.permanent_code
    ):
        raise ApiError(40078, "auth_code of an earlier authorization")
    if code.void:
        raise ApiError(40078, "auth_code replaced by a newer reset_permanent_code")
    code.used = True
    if code.purpose == "reset" and code.permanent_code != auth.permanent_code:
        # From now on the old 代开发 secret fails gettoken with 40001 (§11 item 10).
        auth.retired_codes.append(auth.permanent_code)
        auth.permanent_code = code.permanent_code
    return corp, auth, code.state


@route("get_permanent_code", "/cgi-bin/service/v2/get_permanent_code", token=SUITE)
def get_permanent_code(call: Call) -> dict[str, Any]:
    corp, auth, state_param = _exchange_auth_code(call)
    return {
        "permanent_code": auth.permanent_code,
        "auth_corp_info": corp_info(corp, auth, full=False),
        "auth_user_info": _installer(corp, auth),
        "state": state_param,
    }


@route(
    "get_permanent_code_v1",
    "/cgi-bin/service/get_permanent_code",
    token=SUITE,
    legacy="optional",
)
def get_permanent_code_v1(call: Call) -> dict[str, Any]:
    corp, auth, state_param = _exchange_auth_code(call)
    suite = token_suite(call)
    body: dict[str, Any] = {}
    if not auth.customized:
        # v1 adds a corp token, except for 代开发 (§4.4 step 3).
        token, expires_in = _issue_corp_token(call, auth)
        body.update(access_token=token.value, expires_in=expires_in)
    info = corp_info(corp, auth, full=True)
    info.update(
        corp_agent_max=30, corp_wxqrcode=f"https://open.work.weixin.qq.com/wwqr/{corp.corpid}"
    )
    body.update(
        permanent_code=auth.permanent_code,
        auth_corp_info=info,
        auth_info={"agent": [agent_info(suite, auth)]},
        auth_user_info=_installer(corp, auth),
        state=state_param,
        **edition_info(suite, auth),
    )
    return body


def edition_info(suite: Suite, auth: Authorization) -> dict[str, Any]:
    """{"edition_info": …} for apps with 应用版本付费, else nothing: only v1 answers carry
    it, and only for those apps (§5.2, §5.3)."""
    if not suite.editions or not auth.edition:
        return {}
    return {"edition_info": {"agent": [{"agentid": auth.agentid, **auth.edition}]}}


# ----- §5.3 auth info ----------------------------------------------------------------


@route("get_auth_info", "/cgi-bin/service/v2/get_auth_info", token=SUITE)
def get_auth_info(call: Call) -> dict[str, Any]:
    corp, auth = _auth_by_code(call)
    return {
        "auth_corp_info": corp_info(corp, auth, full=True),
        "auth_info": {"agent": [agent_info(token_suite(call), auth)]},
    }


@route("get_auth_info_v1", "/cgi-bin/service/get_auth_info", token=SUITE)
def get_auth_info_v1(call: Call) -> dict[str, Any]:
    corp, auth = _auth_by_code(call)
    info = corp_info(corp, auth, full=True)
    info.update(
        corp_agent_max=30, corp_wxqrcode=f"https://open.work.weixin.qq.com/wwqr/{corp.corpid}"
    )
    suite = token_suite(call)
    return {
        "auth_corp_info": info,
        "auth_info": {"agent": [agent_info(suite, auth)]},
        **edition_info(suite, auth),
    }


# ----- §5.4 corp tokens --------------------------------------------------------------


@route("get_corp_token", "/cgi-bin/service/get_corp_token", token=SUITE, legacy="optional")
def get_corp_token(call: Call) -> dict[str, Any]:
    if token_suite(call).customized:
        raise ApiError(48002, "代开发 apps get their token from /cgi-bin/gettoken")
    corpid = call.text("auth_corpid")
    call.text("permanent_code", missing=41025)
    corp = corp_or_40013(call, corpid)
    if corp.dissolved:
        raise ApiError(corp.dissolved)
    corp, auth = _auth_by_code(call)
    token, expires_in = _issue_corp_token(call, auth)
    return {"access_token": token.value, "expires_in": expires_in}


@route("gettoken", "/cgi-bin/gettoken", method="GET")
def gettoken(call: Call) -> dict[str, Any]:
    corpid = call.text("corpid", missing=41002, source=call.query)
    secret = call.text("corpsecret", missing=41004, source=call.query)
    credentials.gettoken_ban_check(call.state, call.client_ip)
    corp = corp_or_40013(call, corpid)
    if corp.dissolved:
        raise ApiError(corp.dissolved)
    for auth in call.state.active_auths(corp.corpid):
        if auth.customized and auth.permanent_code == secret:
            token, expires_in = _issue_corp_token(call, auth)
            return {"access_token": token.value, "expires_in": expires_in}
    # Wrong, retired (after reset_permanent_code) or a third-party permanent code.
    credentials.gettoken_wrong_secret(call.state, call.client_ip)
    raise ApiError(40001, "invalid corpsecret")
