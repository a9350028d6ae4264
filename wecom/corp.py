"""APIs authorised by one corp's access_token (third-party or 代开发)."""

from __future__ import annotations

from collections.abc import Sequence

from wecom.endpoints import ENDPOINTS
from wecom.endpoints import TokenKind
from wecom.facade import JSON
from wecom.facade import Facade
from wecom.facade import int_field
from wecom.facade import str_field
from wecom.facade import uses
from wecom.tokens import DEFAULT_EXPIRES_IN
from wecom.tokens import Ticket


class CorpApi(Facade):
    """APIs authorised by one corp's access_token (third-party or 代开发)."""

    kind = TokenKind.CORP

    @uses("get_admin_list")
    def get_admin_list(self) -> JSON:
        """Return {"admin": [{"userid", "auth_type"}]} for the token's app."""
        return self._call("get_admin_list", json={})

    @uses("get_permissions")
    def get_permissions(self) -> JSON:
        """Return {"app_permissions": [...]}: the real grants of a 代开发 app."""
        return self._call("get_permissions", json={})

    @uses("userid_to_openuserid")
    def userid_to_openuserid(self, *, userid_list: Sequence[str]) -> JSON:
        """Return open_userid_list and invalid_userid_list for ≤1000 userids."""
        return self._call("userid_to_openuserid", json={"userid_list": list(userid_list)})

    @uses("get_jsapi_ticket")
    def get_jsapi_ticket(self) -> Ticket:
        """Return the corp jsapi_ticket for wx.config (400 fetches/h per corp: cache it)."""
        return self._ticket("get_jsapi_ticket")

    @uses("get_agent_jsapi_ticket")
    def get_agent_jsapi_ticket(self) -> Ticket:
        """Return the app ticket for wx.agentConfig (100 fetches/h per app: cache it)."""
        return self._ticket("get_agent_jsapi_ticket")

    @uses("getcallbackip")
    def getcallbackip(self) -> JSON:
        """Return {"ip_list": [...]}: the source IPs of WeCom callbacks."""
        return self._call("getcallbackip")

    def _ticket(self, name: str) -> Ticket:
        ep = ENDPOINTS[name]
        body = self._send(ep)
        return Ticket(
            str_field(ep, body, "ticket"), int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN)
        )
