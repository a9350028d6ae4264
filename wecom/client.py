"""Typed HTTP client for the WeCom service-provider APIs.

Layout (one module per piece):
- ``wecom.transport.Transport``: one ``httpx.Client`` and the single ``_request()`` that
  applies timeouts, logging, metrics and error mapping;
- ``WeComClient`` (here) is that transport plus the three calls that need no token
  (they *mint* tokens): ``get_provider_token``, ``get_suite_token``,
  ``get_customized_corp_token`` (代开发 gettoken), and the facades;
- token-bearing calls live on per-kind facades (``client.provider(tokens)``,
  ``client.suite(tokens)``, ``client.corp(tokens)``): wecom/provider.py (with the
  licence APIs of wecom/licence.py), wecom/suite.py, wecom/corp.py, on the shared
  plumbing of wecom/facade.py (wecom/paid_apps.py's PaidAppApi is a SuiteApi with the
  paid-app calls; wecom/gateway.py forwards the products' raw calls). A facade only
  accepts a token source of its own kind and only exposes its kind's endpoints, so
  sending a suite token to a license API cannot be written;
- credentials and token sources: wecom/tokens.py; cursor pages and batches:
  wecom/paging.py.

The names of those modules are re-exported here: ``from wecom.client import …``.
"""

from __future__ import annotations

from wecom.corp import CorpApi
from wecom.endpoints import ENDPOINTS
from wecom.facade import int_field
from wecom.facade import str_field
from wecom.facade import uses
from wecom.paging import chunked
from wecom.paging import iter_pages
from wecom.provider import ProviderApi
from wecom.suite import SuiteApi
from wecom.tokens import DEFAULT_EXPIRES_IN
from wecom.tokens import AccessToken
from wecom.tokens import PreAuthCode
from wecom.tokens import StaticToken
from wecom.tokens import Ticket
from wecom.tokens import TokenSource
from wecom.transport import DEFAULT_BASE_URL
from wecom.transport import OnCall
from wecom.transport import Transport
from wecom.transport import logger  # noqa: F401 (the client's logger, by its fixed name)

__all__ = [
    "DEFAULT_BASE_URL",
    "AccessToken",
    "CorpApi",
    "OnCall",
    "PreAuthCode",
    "ProviderApi",
    "StaticToken",
    "SuiteApi",
    "Ticket",
    "TokenSource",
    "WeComClient",
    "chunked",
    "iter_pages",
]


class WeComClient(Transport):
    """HTTP client for qyapi.weixin.qq.com (or a simulator at ``base_url``).

    Thread-safe; create one per process and reuse it (it pools connections).
    """

    # facades ----------------------------------------------------------------------
    def provider(self, tokens: TokenSource) -> ProviderApi:
        """Return the facade for provider_access_token APIs (licenses, login, links)."""
        return ProviderApi(self, tokens)

    def suite(self, tokens: TokenSource) -> SuiteApi:
        """Return the facade for suite_access_token APIs (install, OAuth)."""
        return SuiteApi(self, tokens)

    def corp(self, tokens: TokenSource, *, corp_id: str | None = None) -> CorpApi:
        """Return the facade for one corp's access_token APIs; corp_id only labels logs."""
        return CorpApi(self, tokens, corp_id=corp_id)

    # token-free calls: they mint the tokens ----------------------------------------
    @uses("get_provider_token")
    def get_provider_token(self, *, corpid: str, provider_secret: str) -> AccessToken:
        """Return a provider_access_token for the provider's own corpid."""
        ep = ENDPOINTS["get_provider_token"]
        body = self._request(ep, json={"corpid": corpid, "provider_secret": provider_secret})
        return AccessToken(
            str_field(ep, body, "provider_access_token"),
            int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    @uses("get_suite_token")
    def get_suite_token(
        self, *, suite_id: str, suite_secret: str, suite_ticket: str
    ) -> AccessToken:
        """Return a suite_access_token; suite_id may be a 代开发 template id (dk…)."""
        ep = ENDPOINTS["get_suite_token"]
        body = self._request(
            ep,
            json={"suite_id": suite_id, "suite_secret": suite_secret, "suite_ticket": suite_ticket},
        )
        return AccessToken(
            str_field(ep, body, "suite_access_token"),
            int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    @uses("gettoken")
    def get_customized_corp_token(self, *, corpid: str, corpsecret: str) -> AccessToken:
        """Return a 代开发 corp token: corpid=auth_corpid, corpsecret=its permanent_code."""
        ep = ENDPOINTS["gettoken"]
        body = self._request(ep, params={"corpid": corpid, "corpsecret": corpsecret})
        return AccessToken(
            str_field(ep, body, "access_token"),
            int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )
