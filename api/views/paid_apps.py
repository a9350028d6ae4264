"""Paid apps (应用版本付费) of one tenant: its edition, its trial, its app orders.

Reads answer from the mirror (``?sync=true`` asks WeCom first); the one write extends the
trial through WeCom (``prolong_try``) and refuses an inactive tenant with 409 first.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from api.examples import examples_for
from api.exceptions import ApiError
from api.exceptions import TenantNotFound
from api.paid_app_serializers import AppOrderOutput
from api.paid_app_serializers import AppOrderQuery
from api.paid_app_serializers import EditionOutput
from api.paid_app_serializers import TrialProlongInput
from api.paid_app_serializers import TrialProlongOutput
from api.views.base import TenantScopedApi
from api.views.base import TenantScopedListApi
from api.views.base import error_responses
from api.views.params import ID_PATTERN
from api.views.params import TENANT
from licensing import services as license_services
from licensing.app_orders import editions
from licensing.app_orders import selectors
from licensing.app_orders import services
from licensing.app_orders.models import AppOrder
from tenants.models import Authorization

APP_ORDER_ID = OpenApiParameter(
    "app_order_id", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=ID_PATTERN
)
SYNC = OpenApiParameter(
    "sync",
    OpenApiTypes.BOOL,
    OpenApiParameter.QUERY,
    required=False,
    description="true: read it from WeCom first",
)


def _sync_requested(request) -> bool:
    return serializers.BooleanField().to_internal_value(request.query_params.get("sync", False))


def _full(tenant: Authorization) -> Authorization:
    # The scoped lookup carries a few columns; the edition needs the tenants copy too.
    return Authorization.objects.select_related("suite", "corp").get(pk=tenant.pk)


@extend_schema(tags=["paid apps"])
class EditionApi(TenantScopedApi):
    """The tenant's edition: trial or paid term, user limit, end, history, extensions."""

    @extend_schema(
        operation_id="edition_retrieve",
        parameters=[*TENANT, SYNC],
        responses={200: EditionOutput, **error_responses(400, 409, 502, 503)},
        examples=examples_for("edition_retrieve"),
    )
    def get(self, request, *args, **kwargs):
        tenant = self.tenant
        if _sync_requested(request):
            license_services.license_write_guard(authorization=tenant)  # 409 when inactive
            editions.edition_refresh(authorization=tenant, source="api")
        return Response(EditionOutput(selectors.edition_state(authorization=_full(tenant))).data)


@extend_schema(tags=["paid apps"])
class TrialProlongApi(TenantScopedApi):
    """Extend the tenant's trial through WeCom (prolong_try); every call extends again."""

    write_actions = {"POST": "trial.prolong"}
    wecom_input = True  # WeCom's refusal (not a trial, over 60 days) is a 422

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and throttles first
        if request.method == "POST":
            license_services.license_write_guard(authorization=self.tenant)  # 404, then 409

    @extend_schema(
        operation_id="edition_prolong_trial",
        parameters=TENANT,
        request=TrialProlongInput,
        responses={200: TrialProlongOutput, **error_responses(400, 409, 422, 502, 503)},
        examples=examples_for("edition_prolong_trial"),
    )
    def post(self, request, *args, **kwargs):
        tenant = self.tenant
        data = TrialProlongInput(data=request.data)
        data.is_valid(raise_exception=True)
        days = data.validated_data["days"]
        try:
            extension = editions.trial_prolong(
                authorization=tenant, days=days, actor=f"api:{self.principal.client.name}"
            )
        except editions.PaidAppError as exc:
            raise ApiError(status_code=409, code="paid_app_conflict", message=str(exc)) from None
        self._audit_detail = {"days": days}
        body = {
            "days": extension.days,
            "try_end_time": extension.try_end_time,
            "edition": selectors.edition_state(authorization=_full(tenant)),
        }
        return Response(TrialProlongOutput(body).data)


@extend_schema(tags=["paid apps"])
class AppOrderListApi(TenantScopedApi, TenantScopedListApi):
    """The tenant's app orders with every WeCom field (newest mirror state)."""

    serializer_class = AppOrderOutput

    def scoped_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AppOrder.objects.none()
        query = AppOrderQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.app_orders_of(authorization=self.tenant, **query.validated_data)

    @extend_schema(
        operation_id="app_orders_list",
        parameters=[*TENANT, AppOrderQuery],
        responses={200: AppOrderOutput(many=True), **error_responses(400)},
        examples=examples_for("app_orders_list"),
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AppOrderOutput(page, many=True).data)


@extend_schema(tags=["paid apps"])
class AppOrderDetailApi(TenantScopedApi):
    """One app order of the tenant (``?sync=true`` reads it from WeCom first)."""

    @extend_schema(
        operation_id="app_orders_retrieve",
        parameters=[*TENANT, APP_ORDER_ID, SYNC],
        responses={200: AppOrderOutput, **error_responses(400, 502, 503)},
        examples=examples_for("app_orders_retrieve"),
    )
    def get(self, request, *args, **kwargs):
        order = selectors.app_order_of(
            authorization=self.tenant, order_id=self.kwargs["app_order_id"]
        )
        if order is None:
            raise TenantNotFound()
        if _sync_requested(request):
            order = services.app_order_sync(order=order, source="api")
        return Response(AppOrderOutput(order).data)
