"""The registry of WeCom endpoints the provider platform calls.

Each `Endpoint` states how to call one API: HTTP method, path, which token kind it
needs and in which query parameter that token travels (protocol doc §2, §5.0, §6).
The client reads everything from here, so a path or token parameter is written
once. Registry names are what logs and metrics show; they are the WeCom API
names, with `_v1` / `_legacy` for the older path of a pair (§5.9).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "BATCH_MAX_ITEMS",
    "ENDPOINTS",
    "PAGE_LIMIT_MAX",
    "Endpoint",
    "HttpMethod",
    "TokenKind",
    "endpoint",
]

# §10: license list `limit` ≤1000; activate/transfer/share/renew and
# userid_to_openuserid ≤1000 items per call.
PAGE_LIMIT_MAX = 1000
BATCH_MAX_ITEMS = 1000


class TokenKind(StrEnum):
    NONE = "none"  # the token-minting calls themselves
    PROVIDER = "provider"  # provider_access_token (corpid + provider_secret)
    SUITE = "suite"  # suite_access_token (suite_id + suite_secret + suite_ticket)
    CORP = "corp"  # an authorizing corp's access_token (get_corp_token or 代开发 gettoken)


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"


# The usual query parameter per kind; get_login_info is the one exception (§2).
_DEFAULT_TOKEN_PARAM: Mapping[TokenKind, str | None] = {
    TokenKind.NONE: None,
    TokenKind.PROVIDER: "provider_access_token",
    TokenKind.SUITE: "suite_access_token",
    TokenKind.CORP: "access_token",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to call one WeCom API."""

    name: str
    method: HttpMethod
    path: str
    token: TokenKind
    # Query parameter carrying the token; None only for TokenKind.NONE.
    token_param: str | None
    doc: str = ""  # "path/NNNNN" on developer.work.weixin.qq.com
    # Fixed query parameters, e.g. ticket/get's type=agent_config.
    fixed_params: tuple[tuple[str, str], ...] = ()
    # Success bodies may lack errcode ("因历史原因…调用失败时才返回errcode", §1). The
    # client treats a missing errcode as success everywhere; this is documentation.
    legacy_body: bool = False
    # Request-body list capped per call (§10); the client refuses longer lists.
    batch_field: str | None = None
    batch_max: int = BATCH_MAX_ITEMS
    # Response list of per-item results (an errcode each). When every item failed,
    # WeCom answers errcode 701024 *with* this list: the client returns that answer
    # instead of raising, so the caller sees why each item failed (§10).
    item_results: str | None = None
    # Response list of a cursor-paginated endpoint (cursor/next_cursor/has_more).
    page_items: str | None = None
    # The answer may be raw bytes (get_app_qrcode with result_type=1 returns a PNG).
    binary_ok: bool = False

    def __post_init__(self) -> None:
        if (self.token is TokenKind.NONE) != (self.token_param is None):
            raise ValueError(f"{self.name}: token_param must be set iff a token is needed")
        if not self.path.startswith("/cgi-bin/") or "?" in self.path:
            raise ValueError(f"{self.name}: path must be a bare /cgi-bin/ path")


def _ep(
    name: str,
    method: HttpMethod,
    path: str,
    token: TokenKind,
    *,
    token_param: str | None = None,
    **extra: Any,
) -> Endpoint:
    param = token_param if token_param is not None else _DEFAULT_TOKEN_PARAM[token]
    return Endpoint(name=name, method=method, path=path, token=token, token_param=param, **extra)


GET, POST = HttpMethod.GET, HttpMethod.POST
NONE, PROVIDER, SUITE, CORP = TokenKind.NONE, TokenKind.PROVIDER, TokenKind.SUITE, TokenKind.CORP


def _license(name: str, **extra: Any) -> Endpoint:
    # §6: every license API is POST /cgi-bin/license/<name>?provider_access_token=…
    return _ep(name, POST, f"/cgi-bin/license/{name}", PROVIDER, **extra)


# fmt: off
_ALL: tuple[Endpoint, ...] = (
    # §5.1 tokens and pre-auth
    _ep("get_provider_token", POST, "/cgi-bin/service/get_provider_token", NONE,
        doc="path/91200", legacy_body=True),
    _ep("get_suite_token", POST, "/cgi-bin/service/get_suite_token", NONE,
        doc="path/90600", legacy_body=True),
    _ep("get_pre_auth_code", GET, "/cgi-bin/service/get_pre_auth_code", SUITE,
        doc="path/90601"),
    _ep("set_session_info", POST, "/cgi-bin/service/set_session_info", SUITE,
        doc="path/90602"),
    # §5.2 / §5.3: v2 is current, v1 is the slow legacy variant
    _ep("get_permanent_code", POST, "/cgi-bin/service/v2/get_permanent_code", SUITE,
        doc="path/100776"),
    _ep("get_permanent_code_v1", POST, "/cgi-bin/service/get_permanent_code", SUITE,
        doc="path/90603", legacy_body=True),
    _ep("get_auth_info", POST, "/cgi-bin/service/v2/get_auth_info", SUITE,
        doc="path/100779"),
    _ep("get_auth_info_v1", POST, "/cgi-bin/service/get_auth_info", SUITE,
        doc="path/90604"),
    # §5.4 corp tokens: third-party vs 代开发 (whose corpsecret is the permanent_code)
    _ep("get_corp_token", POST, "/cgi-bin/service/get_corp_token", SUITE,
        doc="path/90605", legacy_body=True),
    _ep("gettoken", GET, "/cgi-bin/gettoken", NONE, doc="path/91039"),
    # §5.5 admins, permissions, QR codes, links
    _ep("get_admin_list", POST, "/cgi-bin/agent/get_admin_list", CORP, doc="path/100073"),
    _ep("get_admin_list_legacy", POST, "/cgi-bin/service/get_admin_list", SUITE,
        doc="path/90606"),
    _ep("get_permissions", POST, "/cgi-bin/agent/get_permissions", CORP, doc="path/99052"),
    _ep("get_app_qrcode", POST, "/cgi-bin/service/get_app_qrcode", SUITE,
        doc="path/95430", binary_ok=True),
    _ep("get_customized_auth_url", POST, "/cgi-bin/service/get_customized_auth_url", PROVIDER,
        doc="path/98744"),
    _ep("get_register_code", POST, "/cgi-bin/service/get_register_code", PROVIDER,
        doc="path/90581"),
    # §5.6 ID conversion
    _ep("corpid_to_opencorpid", POST, "/cgi-bin/service/corpid_to_opencorpid", PROVIDER,
        doc="path/95604"),
    _ep("userid_to_openuserid", POST, "/cgi-bin/batch/userid_to_openuserid", CORP,
        doc="path/97062", batch_field="userid_list"),
    # §5.7 identity
    _ep("getuserinfo3rd", GET, "/cgi-bin/service/auth/getuserinfo3rd", SUITE,
        doc="path/91121"),
    _ep("getuserinfo3rd_legacy", GET, "/cgi-bin/service/getuserinfo3rd", SUITE),
    _ep("getuserdetail3rd", POST, "/cgi-bin/service/auth/getuserdetail3rd", SUITE,
        doc="path/91122"),
    _ep("getuserdetail3rd_legacy", POST, "/cgi-bin/service/getuserdetail3rd", SUITE),
    # The one provider API that takes the provider token as `access_token` (§2).
    _ep("get_login_info", POST, "/cgi-bin/service/get_login_info", PROVIDER,
        token_param="access_token", doc="path/91125"),  # noqa: S106 (a param name)
    # §5.8 JS-SDK tickets
    _ep("get_jsapi_ticket", GET, "/cgi-bin/get_jsapi_ticket", CORP, doc="path/90539"),
    _ep("get_agent_jsapi_ticket", GET, "/cgi-bin/ticket/get", CORP, doc="path/90539",
        fixed_params=(("type", "agent_config"),)),
    _ep("getcallbackip", GET, "/cgi-bin/getcallbackip", CORP, doc="path/91116"),
    # §6.3 license orders
    _license("create_new_order", doc="path/95644"),
    _license("create_renew_order_job", batch_field="account_list",
             item_results="invalid_account_list"),
    _license("submit_order_job"),
    _license("list_order", page_items="order_list"),
    _license("get_order"),
    _license("list_order_account", page_items="account_list"),
    _license("cancel_order", doc="path/96106"),
    # Multi-corp jobs: ≤10 buy_list items per call (§6.3 rules).
    _license("create_new_order_job", batch_field="buy_list", batch_max=10),
    _license("submit_new_order_job"),
    _license("new_order_job_result"),
    _license("get_union_order", page_items="buy_list"),
    _license("submit_pay_job"),
    _license("pay_job_result"),
    _ep("get_account_balance", GET, "/cgi-bin/service/get_account_balance", PROVIDER,
        doc="path/100137"),
    # §6.4 license accounts
    _license("active_account"),
    _license("batch_active_account", batch_field="active_list", item_results="active_result"),
    _license("active_account_by_type"),
    _license("get_active_info_by_code"),
    _license("batch_get_active_info_by_code", batch_field="active_code_list"),
    # (sic): "actived" is WeCom's spelling of the path.
    _license("list_actived_account", page_items="account_list"),
    _license("get_active_info_by_user"),
    _license("batch_transfer_license", batch_field="transfer_list",
             item_results="transfer_result"),
    _license("batch_share_active_code", batch_field="share_list", item_results="share_result"),
    _license("get_app_license_info"),
    _license("set_auto_active_status"),
    _license("get_auto_active_status"),
    # §13 paid apps (应用版本付费): typed methods on paid_apps.PaidAppApi
    _ep("app_get_order", POST, "/cgi-bin/service/get_order", SUITE, doc="path/91909"),
    _ep("app_get_order_list", POST, "/cgi-bin/service/get_order_list", SUITE, doc="path/91910"),
    _ep("prolong_try", POST, "/cgi-bin/service/prolong_try", SUITE, doc="path/91913"),
)
# fmt: on


def _index(endpoints: tuple[Endpoint, ...]) -> Mapping[str, Endpoint]:
    by_name: dict[str, Endpoint] = {}
    for ep in endpoints:
        if ep.name in by_name:
            raise ValueError(f"duplicate endpoint name {ep.name}")
        by_name[ep.name] = ep
    return MappingProxyType(by_name)


ENDPOINTS: Mapping[str, Endpoint] = _index(_ALL)


def endpoint(name: str) -> Endpoint:
    """Return the registry entry called `name` (KeyError if there is none)."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise KeyError(f"unknown WeCom endpoint {name!r}") from None
