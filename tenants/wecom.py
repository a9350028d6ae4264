"""WeCom API facades whose tokens come from tenants.credentials.

Services get their facades here (``provider_api``, ``suite_api``, ``corp_api``): the
token sources read tokens through tenants.credentials (cache, lock, database), so a
token WeCom rejects is force-refreshed once by the client, single-flight. The client
itself (one per process) is tenants/client.py's.
"""

from __future__ import annotations

from tenants.client import RATE_KEY  # noqa: F401 (re-exported)
from tenants.client import call_limiter  # noqa: F401 (re-exported)
from tenants.client import wecom_client
from tenants.credentials import CredentialSource
from tenants.models import Authorization
from tenants.models import Provider
from tenants.models import Suite
from wecom.client import CorpApi
from wecom.client import ProviderApi
from wecom.client import SuiteApi
from wecom.endpoints import TokenKind


def provider_api(provider: Provider) -> ProviderApi:
    return wecom_client().provider(CredentialSource(TokenKind.PROVIDER, provider))


def suite_api(suite: Suite) -> SuiteApi:
    return wecom_client().suite(CredentialSource(TokenKind.SUITE, suite))


def corp_api(authorization: Authorization) -> CorpApi:
    return wecom_client().corp(
        CredentialSource(TokenKind.CORP, authorization), corp_id=authorization.corp.corpid
    )
