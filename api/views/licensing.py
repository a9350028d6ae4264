"""Interface licenses of one tenant: orders, renewals, accounts, activation, transfer,
auto-activation and the app's license info. Every write calls one licensing service."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status
from rest_framework.response import Response

from api import selectors
from api.examples import examples_for
from api.exceptions import TenantNotFound
from api.serializers import AppLicenseInfoOutput
from api.serializers import AutoActiveInput
from api.serializers import AutoActiveOutput
from api.serializers import LicenseAccountOutput
from api.serializers import LicenseAccountQuery
from api.serializers import LicenseActivateInput
from api.serializers import LicenseBatchActivateInput
from api.serializers import LicenseBatchOutput
from api.serializers import LicenseOrderCreateInput
from api.serializers import LicenseOrderOutput
from api.serializers import LicenseOrderQuery
from api.serializers import LicenseRenewInput
from api.serializers import LicenseRenewOutput
from api.serializers import LicenseTransferInput
from api.views.base import TenantScopedApi
from api.views.base import TenantScopedListApi
from api.views.base import error_responses
from api.views.params import ORDER_ID
from api.views.params import TENANT
from licensing import services as license_services
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder

WECOM_WRITE_ERRORS = (400, 409, 422, 502, 503)


def _actor(view) -> str:
    return f"api:{view.principal.client.name}"[:150]


class _LicenceWrites(TenantScopedApi):
    """Licence writes refuse an inactive tenant (409) before anything reaches WeCom."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and throttles first
        if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
            self.resolve_target()  # scope first: a foreign object is 404 whatever the status
            license_services.license_write_guard(authorization=self.tenant)

    def resolve_target(self) -> None:
        """Raise 404 for an out-of-scope URL before the activity check can answer 409."""


class _OrderLookup(_LicenceWrites):
    def resolve_target(self) -> None:
        self.order()

    def order(self) -> LicenseOrder:
        order = selectors.license_order_of(corp=self.tenant.corp, order_id=self.kwargs["order_id"])
        if order is None:
            raise TenantNotFound()
        return order


@extend_schema(tags=["licenses"])
class LicenseOrderListApi(_LicenceWrites, TenantScopedListApi):
    """The tenant's license orders (newest mirror state); create a purchase order."""

    write_actions = {"POST": "license.order.create"}

    serializer_class = LicenseOrderOutput

    def scoped_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LicenseOrder.objects.none()
        query = LicenseOrderQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.license_orders_of(
            corp=self.tenant.corp, status=query.validated_data.get("status")
        ).select_related("corp")

    @extend_schema(
        operation_id="license_orders_list",
        parameters=[*TENANT, LicenseOrderQuery],
        responses={200: LicenseOrderOutput(many=True), **error_responses(400)},
        examples=examples_for("license_orders_list"),
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(LicenseOrderOutput(page, many=True).data)

    @extend_schema(
        operation_id="license_orders_create",
        parameters=TENANT,
        request=LicenseOrderCreateInput,
        responses={201: LicenseOrderOutput, **error_responses(*WECOM_WRITE_ERRORS)},
        examples=examples_for("license_orders_create"),
    )
    def post(self, request, *args, **kwargs):
        self.wecom_input = True  # WeCom refusals of what the client sent are 422
        corp = self.tenant.corp
        data = LicenseOrderCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        order = license_services.license_order_create(corp=corp, **data.validated_data)
        self._audit_detail = {"order_id": order.order_id}
        return Response(LicenseOrderOutput(order).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["licenses"])
class LicenseOrderDetailApi(_OrderLookup):
    """One order of the tenant (``?sync=true`` re-reads it from WeCom first)."""

    @extend_schema(
        operation_id="license_orders_retrieve",
        parameters=[
            *TENANT,
            ORDER_ID,
            OpenApiParameter("sync", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False),
        ],
        responses={200: LicenseOrderOutput, **error_responses(400, 409, 502, 503)},
        examples=examples_for("license_orders_retrieve"),
    )
    def get(self, request, *args, **kwargs):
        order = self.order()
        sync = serializers.BooleanField().to_internal_value(request.query_params.get("sync", False))
        if sync:
            order = license_services.license_order_sync(order=order, source="api")
        return Response(LicenseOrderOutput(order).data)


@extend_schema(tags=["licenses"])
class LicenseOrderCancelApi(_OrderLookup):
    """Cancel an unpaid order (409 if it is not awaiting payment)."""

    write_actions = {"POST": "license.order.cancel"}

    wecom_input = True  # WeCom refusals of what the client sent are 422

    @extend_schema(
        operation_id="license_orders_cancel",
        parameters=[*TENANT, ORDER_ID],
        request=None,
        responses={200: LicenseOrderOutput, **error_responses(409, 422, 502, 503)},
        examples=examples_for("license_orders_cancel"),
    )
    def post(self, request, *args, **kwargs):
        order = self.order()
        self._audit_detail = {"order_id": order.order_id}
        order = license_services.license_order_cancel(order=order)
        return Response(LicenseOrderOutput(order).data)


@extend_schema(tags=["licenses"])
class LicenseRenewApi(_LicenceWrites):
    """Renew members' accounts: one renewal job, submitted at once; returns its order."""

    write_actions = {"POST": "license.renew"}

    wecom_input = True  # WeCom refusals of what the client sent are 422

    @extend_schema(
        operation_id="license_renew_create",
        parameters=TENANT,
        request=LicenseRenewInput,
        responses={201: LicenseRenewOutput, **error_responses(422, *WECOM_WRITE_ERRORS)},
        examples=examples_for("license_renew_create"),
    )
    def post(self, request, *args, **kwargs):
        corp = self.tenant.corp
        data = LicenseRenewInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        job = license_services.license_renew_job_create(
            corp=corp, accounts=values["accounts"], actor=_actor(self)
        )
        order = license_services.license_renew_job_submit(
            job=job,
            buyer_userid=values["buyer_userid"],
            months=values.get("months"),
            new_expire_time=values.get("new_expire_time"),
        )
        job.refresh_from_db()
        self._audit_detail = {"jobid": job.jobid, "order_id": order.order_id}
        return Response(
            LicenseRenewOutput({"jobid": job.jobid, "accounts": job.accounts, "order": order}).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(tags=["licenses"])
class LicenseAccountListApi(TenantScopedApi, TenantScopedListApi):
    """The tenant's license accounts (active codes) with filters."""

    serializer_class = LicenseAccountOutput

    def scoped_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return LicenseAccount.objects.none()
        query = LicenseAccountQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        return selectors.license_accounts_of(
            corp=self.tenant.corp,
            status=values.get("status"),
            account_type=values.get("type"),
            userid=values.get("userid"),
            order_id=values.get("order_id"),
        )

    @extend_schema(
        operation_id="license_accounts_list",
        parameters=[*TENANT, LicenseAccountQuery],
        responses={200: LicenseAccountOutput(many=True), **error_responses(400)},
        examples=examples_for("license_accounts_list"),
    )
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(LicenseAccountOutput(page, many=True).data)


@extend_schema(tags=["licenses"])
class LicenseActivateApi(_LicenceWrites):
    """Activate a license for one member (a free code is picked unless one is given)."""

    write_actions = {"POST": "license.activate"}

    wecom_input = True  # WeCom refusals of what the client sent are 422

    @extend_schema(
        operation_id="license_accounts_activate",
        parameters=TENANT,
        request=LicenseActivateInput,
        responses={200: LicenseAccountOutput, **error_responses(*WECOM_WRITE_ERRORS)},
        examples=examples_for("license_accounts_activate"),
    )
    def post(self, request, *args, **kwargs):
        corp = self.tenant.corp
        data = LicenseActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        account = license_services.license_account_activate(
            corp=corp,
            userid=values["userid"],
            account_type=values["type"],
            active_code=values.get("active_code"),
        )
        self._audit_detail = {"userid": values["userid"]}
        return Response(LicenseAccountOutput(account).data)


@extend_schema(tags=["licenses"])
class LicenseBatchActivateApi(_LicenceWrites):
    """Bind many codes to members; every refused item is listed with WeCom's errcode."""

    write_actions = {"POST": "license.batch_activate"}

    wecom_input = True  # WeCom refusals of what the client sent are 422

    @extend_schema(
        operation_id="license_accounts_batch_activate",
        parameters=TENANT,
        request=LicenseBatchActivateInput,
        responses={200: LicenseBatchOutput, **error_responses(*WECOM_WRITE_ERRORS)},
        examples=examples_for("license_accounts_batch_activate"),
    )
    def post(self, request, *args, **kwargs):
        corp = self.tenant.corp
        data = LicenseBatchActivateInput(data=request.data)
        data.is_valid(raise_exception=True)
        batch = license_services.license_accounts_activate_batch(
            corp=corp, items=data.validated_data["items"], actor=_actor(self)
        )
        self._audit_detail = {"batch": batch.pk}
        return Response(LicenseBatchOutput(batch).data)


@extend_schema(tags=["licenses"])
class LicenseTransferApi(_LicenceWrites):
    """Move members' licenses to other members of the same corp."""

    write_actions = {"POST": "license.transfer"}

    wecom_input = True  # WeCom refusals of what the client sent are 422

    @extend_schema(
        operation_id="license_accounts_transfer",
        parameters=TENANT,
        request=LicenseTransferInput,
        responses={200: LicenseBatchOutput, **error_responses(*WECOM_WRITE_ERRORS)},
        examples=examples_for("license_accounts_transfer"),
    )
    def post(self, request, *args, **kwargs):
        corp = self.tenant.corp
        data = LicenseTransferInput(data=request.data)
        data.is_valid(raise_exception=True)
        batch = license_services.license_transfer(
            corp=corp,
            transfers=data.validated_data["transfers"],
            force=data.validated_data["force"],
            actor=_actor(self),
        )
        self._audit_detail = {"batch": batch.pk}
        return Response(LicenseBatchOutput(batch).data)


@extend_schema(tags=["licenses"])
class LicenseAutoActiveApi(_LicenceWrites):
    """The corp's auto-activation switch (read from WeCom; set it with PUT)."""

    write_actions = {"PUT": "license.auto_active.set"}

    @staticmethod
    def _body(row) -> dict:
        enabled = None if row.auto_active_status is None else row.auto_active_status == 1
        return AutoActiveOutput({"enabled": enabled, "synced_at": row.synced_at}).data

    @extend_schema(
        operation_id="license_auto_active_retrieve",
        parameters=TENANT,
        responses={200: AutoActiveOutput, **error_responses(409, 502, 503)},
        examples=examples_for("license_auto_active_retrieve"),
    )
    def get(self, request, *args, **kwargs):
        return Response(self._body(license_services.license_auto_active_get(corp=self.tenant.corp)))

    @extend_schema(
        operation_id="license_auto_active_update",
        parameters=TENANT,
        request=AutoActiveInput,
        responses={200: AutoActiveOutput, **error_responses(*WECOM_WRITE_ERRORS)},
        examples=examples_for("license_auto_active_update"),
    )
    def put(self, request, *args, **kwargs):
        self.wecom_input = True  # e.g. 701071: the corp never bought a license
        corp = self.tenant.corp
        data = AutoActiveInput(data=request.data)
        data.is_valid(raise_exception=True)
        row = license_services.license_auto_active_set(
            corp=corp, enabled=data.validated_data["enabled"]
        )
        self._audit_detail = {"enabled": data.validated_data["enabled"]}
        return Response(self._body(row))


@extend_schema(tags=["licenses"])
class LicenseAppInfoApi(TenantScopedApi):
    """This app's license info for the corp: enforcement and trial window (from WeCom)."""

    @extend_schema(
        operation_id="license_app_info_retrieve",
        parameters=TENANT,
        responses={200: AppLicenseInfoOutput, **error_responses(409, 502, 503)},
        examples=examples_for("license_app_info_retrieve"),
    )
    def get(self, request, *args, **kwargs):
        tenant = self.tenant
        info = license_services.license_app_info_sync(corp=tenant.corp, suite=tenant.suite)
        return Response(AppLicenseInfoOutput(info).data)
