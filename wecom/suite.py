"""APIs authorised by a suite_access_token: install flow, corp tokens, OAuth (§4, §5)."""

from __future__ import annotations

from collections.abc import Sequence

from wecom.endpoints import ENDPOINTS
from wecom.endpoints import TokenKind
from wecom.facade import JSON
from wecom.facade import Facade
from wecom.facade import compact
from wecom.facade import int_field
from wecom.facade import str_field
from wecom.facade import uses
from wecom.tokens import DEFAULT_EXPIRES_IN
from wecom.tokens import AccessToken
from wecom.tokens import PreAuthCode


class SuiteApi(Facade):
    """APIs authorised by a suite_access_token: install flow, corp tokens, OAuth."""

    kind = TokenKind.SUITE

    @uses("get_pre_auth_code")
    def get_pre_auth_code(self) -> PreAuthCode:
        """Return a pre_auth_code for the install link (valid `expires_in`, ~1200 s)."""
        ep = ENDPOINTS["get_pre_auth_code"]
        body = self._send(ep)
        return PreAuthCode(
            str_field(ep, body, "pre_auth_code"), int_field(ep, body, "expires_in", 1200)
        )

    @uses("set_session_info")
    def set_session_info(
        self, *, pre_auth_code: str, auth_type: int = 0, appids: Sequence[int] | None = None
    ) -> JSON:
        """Return WeCom's answer to configuring an install; auth_type 1 = test install."""
        if auth_type not in (0, 1):
            raise ValueError("auth_type is 0 (正式授权) or 1 (测试授权)")
        session_info: JSON = {"auth_type": auth_type}
        if appids is not None:  # legacy multi-app suites only; empty means all apps
            session_info["appid"] = list(appids)
        return self._call(
            "set_session_info", json={"pre_auth_code": pre_auth_code, "session_info": session_info}
        )

    @uses("get_permanent_code")
    def get_permanent_code(self, *, auth_code: str) -> JSON:
        """Return the v2 answer: permanent_code, auth_corp_info, auth_user_info, state."""
        return self._call("get_permanent_code", json={"auth_code": auth_code})

    @uses("get_permanent_code_v1")
    def get_permanent_code_v1(self, *, auth_code: str) -> JSON:
        """Return the legacy v1 answer (adds corp token and auth_info; slow)."""
        return self._call("get_permanent_code_v1", json={"auth_code": auth_code})

    @uses("get_auth_info")
    def get_auth_info(self, *, auth_corpid: str, permanent_code: str) -> JSON:
        """Return the v2 auth info (auth_corp_info, auth_info.agent[], dealer_corp_info)."""
        return self._call(
            "get_auth_info", json={"auth_corpid": auth_corpid, "permanent_code": permanent_code}
        )

    @uses("get_auth_info_v1")
    def get_auth_info_v1(self, *, auth_corpid: str, permanent_code: str) -> JSON:
        """Return the legacy v1 auth info (adds corp_wxqrcode, edition_info)."""
        return self._call(
            "get_auth_info_v1", json={"auth_corpid": auth_corpid, "permanent_code": permanent_code}
        )

    @uses("get_corp_token")
    def get_corp_token(self, *, auth_corpid: str, permanent_code: str) -> AccessToken:
        """Return a third-party app's corp token (代开发 apps use get_customized_corp_token)."""
        ep = ENDPOINTS["get_corp_token"]
        body = self._send(ep, json={"auth_corpid": auth_corpid, "permanent_code": permanent_code})
        return AccessToken(
            str_field(ep, body, "access_token"),
            int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    @uses("get_admin_list_legacy")
    def get_admin_list_legacy(self, *, auth_corpid: str, agentid: int) -> JSON:
        """Return the legacy admin list (service/get_admin_list, "已不再维护")."""
        return self._call(
            "get_admin_list_legacy", json={"auth_corpid": auth_corpid, "agentid": agentid}
        )

    @uses("get_app_qrcode")
    def get_app_qrcode(
        self,
        *,
        suite_id: str,
        appid: int | None = None,
        state: str | None = None,
        style: int | None = None,
    ) -> JSON:
        """Return {"qrcode": <url>, ...}: the install QR of a published app (result_type=2)."""
        return self._call(
            "get_app_qrcode",
            json=compact(suite_id=suite_id, appid=appid, state=state, style=style, result_type=2),
        )

    def get_app_qrcode_png(
        self,
        *,
        suite_id: str,
        appid: int | None = None,
        state: str | None = None,
        style: int | None = None,
    ) -> bytes:
        """Return the install QR code as PNG bytes (result_type=1)."""
        body = compact(suite_id=suite_id, appid=appid, state=state, style=style, result_type=1)
        return self._send(ENDPOINTS["get_app_qrcode"], json=body, binary=True)

    @uses("getuserinfo3rd")
    def getuserinfo3rd(self, *, code: str) -> JSON:
        """Return the OAuth user (corpid, userid, open_userid, user_ticket; or openid)."""
        return self._call("getuserinfo3rd", params={"code": code})

    @uses("getuserinfo3rd_legacy")
    def getuserinfo3rd_legacy(self, *, code: str) -> JSON:
        """Return the OAuth user from the legacy path (capitalised keys: CorpId, UserId)."""
        return self._call("getuserinfo3rd_legacy", params={"code": code})

    @uses("getuserdetail3rd")
    def getuserdetail3rd(self, *, user_ticket: str) -> JSON:
        """Return the member's sensitive info (gender is a string) for a user_ticket."""
        return self._call("getuserdetail3rd", json={"user_ticket": user_ticket})

    @uses("getuserdetail3rd_legacy")
    def getuserdetail3rd_legacy(self, *, user_ticket: str) -> JSON:
        """Return getuserdetail3rd's answer from the legacy path."""
        return self._call("getuserdetail3rd_legacy", json={"user_ticket": user_ticket})
