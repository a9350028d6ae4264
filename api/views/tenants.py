"""Suites, tenants (corps), install links, access tokens, JS-SDK signatures, login helpers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from api import selectors
from api import services
from api.examples import examples_for
from api.exceptions import TenantNotFound
from api.serializers import AccessTokenOutput
from api.serializers import AccessTokenRefreshInput
from api.serializers import CorpDetailOutput
from api.serializers import CorpListOutput
from api.serializers import CorpListQuery
from api.serializers import InstallLinkInput
from api.serializers import InstallLinkOutput
from api.serializers import JsapiSignatureInput
from api.serializers import JsapiSignatureOutput
from api.serializers import OAuthUserInput
from api.serializers import OAuthUserOutput
from api.serializers import QrLoginInput
from api.serializers import QrLoginOutput
from api.serializers import SuiteOutput
from api.views.base import ApiView
from api.views.base import SuiteScopedApi
from api.views.base import TenantScopedApi
from api.views.base import TenantScopedListApi
from api.views.base import error_responses
from api.views.params import SUITE_ID
from api.views.params import TENANT
from licensing import selectors as licensing_selectors
from tenants import credentials
from tenants import services as tenant_services
from tenants.models import Authorization
from tenants.models import Suite
from tenants.wecom import provider_api
from tenants.wecom import suite_api


def _token_body(token: credentials.TokenValue) -> dict:
    # A plain dict (the hot path): the same fields and formats AccessTokenOutput documents.
    return {
        "access_token": token.value,
        "expires_at": token.expires_at.isoformat().replace("+00:00", "Z"),
        "expires_in": token.expires_in(),
    }


# --- suites --------------------------------------------------------------------------------


@extend_schema(tags=["tenants"])
class SuiteListApi(TenantScopedListApi):
    """Suites the client can see, with whether it holds the whole suite."""

    serializer_class = SuiteOutput

    def scoped_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Suite.objects.none()
        return selectors.suites_visible_annotated(client=self.principal.client)

    @extend_schema(
        operation_id="suites_list",
        responses={200: SuiteOutput(many=True), **error_responses()},
        examples=examples_for("suites_list"),
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(SuiteOutput(page, many=True).data)


@extend_schema(tags=["tenants"])
class InstallLinkCreateApi(SuiteScopedApi):
    """Create a link that installs the suite (WeCom's install page, fresh pre-auth code)."""

    write_actions = {"POST": "install_link.create"}

    @extend_schema(
        operation_id="install_links_create",
        parameters=[SUITE_ID],
        request=InstallLinkInput,
        responses={201: InstallLinkOutput, **error_responses(400, 403, 502, 503)},
        examples=examples_for("install_links_create"),
    )
    def post(self, request, suite_id: str):
        suite = self.require_whole_suite()
        data = InstallLinkInput(data=request.data)
        data.is_valid(raise_exception=True)
        link = tenant_services.install_link_create(suite=suite, **data.validated_data)
        return Response(
            InstallLinkOutput({"url": link.url, "expires_at": link.expires_at}).data,
            status=status.HTTP_201_CREATED,
        )


# --- corps ------------------------------------------------------------------------------------


@extend_schema(tags=["tenants"])
class CorpListApi(SuiteScopedApi, TenantScopedListApi):
    """The suite's tenants the client can see; filter by status, search corpid or name."""

    serializer_class = CorpListOutput

    def scoped_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Authorization.objects.none()
        query = CorpListQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.authorizations_search(
            queryset=selectors.authorizations_visible(
                client=self.principal.client, suite=self.suite
            ),
            **query.validated_data,
        )

    @extend_schema(
        operation_id="corps_list",
        parameters=[SUITE_ID, CorpListQuery],
        responses={200: CorpListOutput(many=True), **error_responses(400)},
        examples=examples_for("corps_list"),
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CorpListOutput(page, many=True).data)


@extend_schema(tags=["tenants"])
class CorpDetailApi(TenantScopedApi):
    """One tenant: corp facts, agent, edition, status, times and a license summary."""

    @extend_schema(
        operation_id="corps_retrieve",
        parameters=TENANT,
        responses={200: CorpDetailOutput, **error_responses()},
        examples=examples_for("corps_retrieve"),
    )
    def get(self, request, suite_id: str, corpid: str):
        # The scoped lookup carries a few columns; the detail shows them all.
        tenant = Authorization.objects.select_related("suite", "corp").get(pk=self.tenant.pk)
        figures = licensing_selectors.license_corp_summary(corp=tenant.corp)
        return Response(CorpDetailOutput(tenant, context={"license": figures}).data)


# --- tokens --------------------------------------------------------------------------------------


@extend_schema(tags=["tokens"])
class AccessTokenApi(TenantScopedApi):
    """The corp access token and its true remaining life. Every read is audited.

    ``expires_in`` is at least 300 s, except when WeCom re-issued the same token (it
    hands back the current token while it is valid): such a token is served until it
    expires and renewed once after that. During a remembered failure (wrong secret,
    WeCom down) the answer is 503 with ``Retry-After`` and WeCom is not called.
    """

    audit_action = "token.read"
    audit_required = True

    @extend_schema(
        operation_id="access_token_retrieve",
        parameters=TENANT,
        responses={200: AccessTokenOutput, **error_responses(409, 502, 503)},
        examples=examples_for("access_token_retrieve"),
    )
    def get(self, request, suite_id: str, corpid: str):
        return Response(_token_body(credentials.token_get(self.tenant)))


@extend_schema(tags=["tokens"])
class AccessTokenRefreshApi(TenantScopedApi):
    """Report a token WeCom rejected: refreshed once if it is still the current one.

    At most one WeCom call per credential per 60 s (TOKEN_FORCED_REFRESH_COOLDOWN);
    other reports, and reports of a token already replaced, get the current token.
    """

    audit_action = "token.refresh"
    audit_required = True

    @extend_schema(
        operation_id="access_token_refresh",
        parameters=TENANT,
        request=AccessTokenRefreshInput,
        responses={200: AccessTokenOutput, **error_responses(400, 409, 502, 503)},
        examples=examples_for("access_token_refresh"),
    )
    def post(self, request, suite_id: str, corpid: str):
        tenant = self.tenant  # scope first: an out-of-scope tenant is 404 whatever the body
        data = AccessTokenRefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        token = credentials.token_get(tenant, rejected=data.validated_data["stale_token"])
        return Response(_token_body(token))


@extend_schema(tags=["tokens"])
class JsapiSignatureApi(TenantScopedApi):
    """Sign a page URL for wx.config (``corp``) or wx.agentConfig (``agent``).

    The JS-SDK ticket behind the signature is cached and fetched once for all callers
    (WeCom allows 400 fetches an hour per corp, 100 per app). After a failed fetch the
    answer is 503 with ``Retry-After`` until the backoff ends, and WeCom is not called.
    """

    audit_action = "jsapi.sign"
    audit_required = True

    @extend_schema(
        operation_id="jsapi_signature_create",
        parameters=TENANT,
        request=JsapiSignatureInput,
        responses={200: JsapiSignatureOutput, **error_responses(400, 409, 502, 503)},
        examples=examples_for("jsapi_signature_create"),
    )
    def post(self, request, suite_id: str, corpid: str):
        tenant = self.tenant
        data = JsapiSignatureInput(data=request.data)
        data.is_valid(raise_exception=True)
        kind = data.validated_data["kind"]
        ticket = services.jsapi_ticket_get(authorization=tenant, kind=kind)
        signature, nonce, timestamp = services.jsapi_signature(
            ticket=ticket.value, url=data.validated_data["url"]
        )
        self._audit_detail = {"kind": kind}
        return Response(
            JsapiSignatureOutput(
                {
                    "appId": tenant.corp.corpid,
                    "agentid": tenant.agent_id,
                    "timestamp": timestamp,
                    "nonceStr": nonce,
                    "signature": signature,
                    "kind": kind,
                }
            ).data
        )


# --- identity -------------------------------------------------------------------------------------


@extend_schema(tags=["identity"])
class OAuthUserApi(SuiteScopedApi):
    """Exchange a WeCom OAuth code (getuserinfo3rd) for the user's identity.

    The answer is given only if the user's corp is in the client's scope (else 404).
    """

    audit_action = "oauth.userinfo"
    wecom_input = True  # a used or foreign code (40029) is the client's error: 422

    @extend_schema(
        operation_id="oauth_user_create",
        parameters=[SUITE_ID],
        request=OAuthUserInput,
        responses={200: OAuthUserOutput, **error_responses(400, 409, 422, 502, 503)},
        examples=examples_for("oauth_user_create"),
    )
    def post(self, request, suite_id: str):
        suite = self.suite
        data = OAuthUserInput(data=request.data)
        data.is_valid(raise_exception=True)
        api = suite_api(suite)
        info = api.getuserinfo3rd(code=data.validated_data["code"])
        corpid = str(info.get("corpid") or "")
        self._audit_corpid = corpid
        whole = selectors.suite_granted(client=self.principal.client, suite=suite)
        if corpid:
            visible = selectors.authorization_visible(
                client=self.principal.client, suite_id=suite.suite_id, corpid=corpid
            )
            if visible is None:
                raise TenantNotFound()
        elif not whole:
            raise TenantNotFound()  # a non-member has no corp: only whole-suite clients
        detail = None
        if data.validated_data["detail"] and info.get("user_ticket"):
            detail = api.getuserdetail3rd(user_ticket=info["user_ticket"])
            detail = {k: detail.get(k) for k in ("name", "gender", "avatar", "qr_code")}
        return Response(
            OAuthUserOutput(
                {
                    "corpid": corpid,
                    "userid": info.get("userid") or "",
                    "open_userid": info.get("open_userid") or "",
                    "openid": info.get("openid") or "",
                    "detail": detail,
                }
            ).data
        )


@extend_schema(tags=["identity"])
class QrLoginApi(ApiView):
    """Exchange a provider QR-login auth_code (get_login_info) for the admin's identity.

    The answer is given only if the user's corp is in the client's scope (else 404).
    """

    audit_action = "login.qr"
    wecom_input = True

    @extend_schema(
        operation_id="qr_login_create",
        request=QrLoginInput,
        responses={200: QrLoginOutput, **error_responses(400, 422, 502, 503)},
        examples=examples_for("qr_login_create"),
    )
    def post(self, request):
        client = self.principal.client
        suite = selectors.suites_visible(client=client).select_related("provider").first()
        if suite is None:
            raise TenantNotFound()
        data = QrLoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        info = provider_api(suite.provider).get_login_info(
            auth_code=data.validated_data["auth_code"]
        )
        corpid = str((info.get("corp_info") or {}).get("corpid") or "")
        self._audit_corpid = corpid
        if not corpid or selectors.corp_visible(client=client, corpid=corpid) is None:
            raise TenantNotFound()
        return Response(
            QrLoginOutput(
                {
                    "usertype": info.get("usertype") or 0,
                    "corpid": corpid,
                    "user_info": info.get("user_info") or {},
                    "agent": info.get("agent") or [],
                    "auth_info": info.get("auth_info") or {},
                }
            ).data
        )
