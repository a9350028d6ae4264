"""WeCom-shaped API errors: HTTP 200 with errcode and an errmsg carrying a hint (§1, §9)."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

# Short English texts in WeCom's style. Never branch on these: WeCom changes them.
ERRMSG: dict[int, str] = {
    -1: "system busy",
    40001: "invalid credential",
    40003: "invalid userid",
    40004: "invalid media type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40009: "invalid image size",
    40010: "invalid voice size",
    40011: "invalid video size",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40029: "invalid code",
    40056: "invalid agentid",
    40058: "invalid Request Parameter",
    40063: "some parameters are empty",
    40077: "invalid pre_auth_code",
    40078: "invalid auth_code",
    40080: "invalid suite_secret",
    40082: "invalid suite_access_token or provider_access_token",
    40083: "invalid suite_id",
    40084: "invalid permanent_code",
    40085: "invalid suite_ticket",
    40086: "invalid appid",
    40088: "jobid not found",
    40089: "job result has been cleared",
    40096: "invalid external userid",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    41008: "missing auth code",
    41021: "suite_id missing",
    41022: "suite_access_token missing",
    41023: "suite_ticket missing",
    41024: "secret missing",
    41025: "permanent_code missing",
    41005: "media data missing",
    41050: "invalid welcome_code",
    42001: "access_token expired",
    42007: "pre_auth_code expired",
    42009: "suite_access_token expired",
    45009: "reach max api daily quota limit",
    45033: "api concurrent out of limit",
    48001: "api unauthorized",
    48002: "api forbidden",
    48003: "invalid suite_id for this suite_access_token",
    48004: "auth relation invalid",
    49009: "invalid buyer_userid",
    50001: "redirect_url not trusted",
    60011: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    60123: "invalid party id",
    81013: "user & party & tag all invalid",
    84014: "user_ticket expired",
    84015: "invalid user_ticket",
    84061: "not external contact",
    90432: "recharge account not opened",
    90433: "insufficient balance",
    92002: "not allow to cross corp access",
    301002: "no right on this app",
    301007: "corp is not available, maybe dissolved or banned",
    2000002: "invalid corpid parameter",
}
# The license family shares one text: the number is the information (§9).
LICENSE_ERRMSG = "license operation failed"

_seq = itertools.count(1)


class ApiError(Exception):
    """A WeCom error answer: errcode, a detail text, and extra keys kept in the body."""

    def __init__(self, errcode: int, detail: str | None = None, **extra: Any) -> None:
        self.errcode = errcode
        self.detail = detail
        self.extra = extra
        super().__init__(f"{errcode} {detail or ''}".strip())


def errmsg(errcode: int, detail: str | None, *, client_ip: str, now: int) -> str:
    """Return an errmsg shaped like WeCom's: text, hint, caller ip, and a help link."""
    text = ERRMSG.get(errcode) or (LICENSE_ERRMSG if 701000 <= errcode < 702000 else "error")
    if detail:
        text = f"{text}: {detail}"
    hint = f"{now}_{next(_seq)}_{secrets.token_hex(16)}"
    return (
        f"{text}, hint: [{hint}], from ip: {client_ip}, "
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    )


def error_body(error: ApiError, *, client_ip: str, now: int, warning: bool = False) -> dict:
    """Return the JSON body of an error answer."""
    msg = errmsg(error.errcode, error.detail, client_ip=client_ip, now=now)
    if warning:
        msg = f"Warning: wrong json format. {msg}"
    return {"errcode": error.errcode, "errmsg": msg, **error.extra}
