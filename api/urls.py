"""``/api/v1/…`` (the internal REST API), ``/api/schema/`` and ``/api/docs/``."""

from __future__ import annotations

from django.urls import include
from django.urls import path
from django.urls import re_path
from django.urls import register_converter
from drf_spectacular.views import SpectacularAPIView
from drf_spectacular.views import SpectacularSwaggerView

from api.gateway.views import WeComGatewayApi
from api.views import events
from api.views import licensing
from api.views import paid_apps
from api.views import tenants
from api.views.fallback import NotFoundApi
from webhooks.urls import urlpatterns as webhook_urls


class WeComIdConverter:
    """suite_id, corpid, order_id: WeCom's ids are short ASCII tokens."""

    regex = r"[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(WeComIdConverter, "wid")


class WeComPathConverter:
    """Everything after wecom/, control characters included: the gateway's view validates
    it (a bad path gets its 400, not Django's 404 for a route that did not match)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(WeComPathConverter, "wecompath")

TENANT = "suites/<wid:suite_id>/corps/<wid:corpid>/"
LICENSE = TENANT + "license/"

v1 = [
    path("suites/", tenants.SuiteListApi.as_view(), name="suites"),
    path(
        "suites/<wid:suite_id>/install-links/",
        tenants.InstallLinkCreateApi.as_view(),
        name="install-links",
    ),
    path("suites/<wid:suite_id>/oauth/user/", tenants.OAuthUserApi.as_view(), name="oauth-user"),
    path("suites/<wid:suite_id>/corps/", tenants.CorpListApi.as_view(), name="corps"),
    path(TENANT, tenants.CorpDetailApi.as_view(), name="corp"),
    path(TENANT + "access-token/", tenants.AccessTokenApi.as_view(), name="access-token"),
    path(
        TENANT + "access-token/refresh/",
        tenants.AccessTokenRefreshApi.as_view(),
        name="access-token-refresh",
    ),
    path(TENANT + "jsapi-signature/", tenants.JsapiSignatureApi.as_view(), name="jsapi-signature"),
    # The WeCom API gateway: everything after wecom/ is checked by the view itself (a
    # bad path gets the gateway's 400, not the catch-all 404).
    path(TENANT + "wecom/<wecompath:wecom_path>", WeComGatewayApi.as_view(), name="wecom-gateway"),
    path(LICENSE + "orders/", licensing.LicenseOrderListApi.as_view(), name="license-orders"),
    path(
        LICENSE + "orders/<wid:order_id>/",
        licensing.LicenseOrderDetailApi.as_view(),
        name="license-order",
    ),
    path(
        LICENSE + "orders/<wid:order_id>/cancel/",
        licensing.LicenseOrderCancelApi.as_view(),
        name="license-order-cancel",
    ),
    path(LICENSE + "renew/", licensing.LicenseRenewApi.as_view(), name="license-renew"),
    path(LICENSE + "accounts/", licensing.LicenseAccountListApi.as_view(), name="license-accounts"),
    path(
        LICENSE + "accounts/activate/",
        licensing.LicenseActivateApi.as_view(),
        name="license-activate",
    ),
    path(
        LICENSE + "accounts/batch-activate/",
        licensing.LicenseBatchActivateApi.as_view(),
        name="license-batch-activate",
    ),
    path(
        LICENSE + "accounts/transfer/",
        licensing.LicenseTransferApi.as_view(),
        name="license-transfer",
    ),
    path(
        LICENSE + "auto-active/",
        licensing.LicenseAutoActiveApi.as_view(),
        name="license-auto-active",
    ),
    path(LICENSE + "app-info/", licensing.LicenseAppInfoApi.as_view(), name="license-app-info"),
    # Paid apps (应用版本付费): the tenant's edition, its trial, its app orders.
    path(TENANT + "edition/", paid_apps.EditionApi.as_view(), name="edition"),
    path(
        TENANT + "edition/prolong-trial/",
        paid_apps.TrialProlongApi.as_view(),
        name="edition-prolong-trial",
    ),
    path(TENANT + "app-orders/", paid_apps.AppOrderListApi.as_view(), name="app-orders"),
    path(
        TENANT + "app-orders/<wid:app_order_id>/",
        paid_apps.AppOrderDetailApi.as_view(),
        name="app-order",
    ),
    path("login/qr/", tenants.QrLoginApi.as_view(), name="qr-login"),
    path("events/", events.EventListApi.as_view(), name="events"),
    # The webhooks app's routes (webhooks/urls.py), flattened so every /api/v1/ route is
    # one URLPattern here (the auth and schema tests walk this list).
    *(path("webhooks/" + str(p.pattern), p.callback, name=p.name) for p in webhook_urls),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    # Last: any other path under /api/ answers in the API's error shape.
    re_path(r"^.*$", NotFoundApi.as_view(), name="not-found"),
]
