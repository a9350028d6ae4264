"""``/api/v1/webhooks/subscriptions/…``: a client manages its own subscriptions.

Needs the ``webhooks:manage`` scope (403 without it). A client only ever sees its own
subscriptions: another client's id answers the same 404 as one that does not exist.
The secret is in the answer that creates (or rotates) it, never again.
"""

from __future__ import annotations

from functools import cached_property

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from api.examples import examples_for
from api.exceptions import TenantNotFound
from api.models import SCOPE_WEBHOOKS_MANAGE
from api.views.base import ApiView
from api.views.base import error_responses
from webhooks import selectors
from webhooks import services
from webhooks.models import Subscription
from webhooks.serializers import DeliveryOutput
from webhooks.serializers import SecretOutput
from webhooks.serializers import SubscriptionCreatedOutput
from webhooks.serializers import SubscriptionInput
from webhooks.serializers import SubscriptionOutput
from webhooks.serializers import SubscriptionUpdateInput


def _invalid(exc: services.SubscriptionError) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field or "non_field_errors": [str(exc)]})


class WebhooksApi(ApiView):
    """Base: the webhooks:manage scope, checked before anything else."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not self.principal.client.has_scope(SCOPE_WEBHOOKS_MANAGE):
            raise PermissionDenied(f"This client lacks the {SCOPE_WEBHOOKS_MANAGE} scope.")


class OneSubscriptionApi(WebhooksApi):
    @cached_property
    def subscription(self) -> Subscription:
        found = selectors.subscription_of(client=self.principal.client, uid=self.kwargs["uid"])
        if found is None:
            raise TenantNotFound()
        return found


@extend_schema(tags=["webhooks"])
class SubscriptionListApi(WebhooksApi):
    write_actions = {"POST": "webhook_subscription.create"}

    @extend_schema(
        operation_id="webhook_subscriptions_list",
        examples=examples_for("webhook_subscriptions_list"),
        responses={200: SubscriptionOutput(many=True), **error_responses(403)},
    )
    def get(self, request):
        rows = selectors.subscriptions_of(client=self.principal.client)
        return Response(SubscriptionOutput(rows, many=True).data)

    @extend_schema(
        operation_id="webhook_subscriptions_create",
        examples=examples_for("webhook_subscriptions_create"),
        request=SubscriptionInput,
        responses={201: SubscriptionCreatedOutput, **error_responses(400, 403)},
    )
    def post(self, request):
        data = SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            subscription, secret = services.subscription_create(
                client=self.principal.client, **data.validated_data
            )
        except services.SubscriptionError as exc:
            raise _invalid(exc) from None
        self._audit_detail = {"subscription": subscription.uid}
        body = SubscriptionOutput(subscription).data
        return Response({**body, "secret": secret}, status=201)


@extend_schema(tags=["webhooks"])
class SubscriptionDetailApi(OneSubscriptionApi):
    write_actions = {
        "PATCH": "webhook_subscription.update",
        "DELETE": "webhook_subscription.delete",
    }

    @extend_schema(
        operation_id="webhook_subscription_get",
        examples=examples_for("webhook_subscription_get"),
        responses={200: SubscriptionOutput, **error_responses(403)},
    )
    def get(self, request, uid):
        return Response(SubscriptionOutput(self.subscription).data)

    @extend_schema(
        operation_id="webhook_subscription_update",
        examples=examples_for("webhook_subscription_update"),
        request=SubscriptionUpdateInput,
        responses={200: SubscriptionOutput, **error_responses(400, 403)},
    )
    def patch(self, request, uid):
        data = SubscriptionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        self._audit_detail = {"subscription": self.subscription.uid}
        try:
            subscription = services.subscription_update(
                subscription=self.subscription, **data.validated_data
            )
        except services.SubscriptionError as exc:
            raise _invalid(exc) from None
        return Response(SubscriptionOutput(subscription).data)

    @extend_schema(
        operation_id="webhook_subscription_delete",
        responses={204: None, **error_responses(403)},
    )
    def delete(self, request, uid):
        self._audit_detail = {"subscription": self.subscription.uid}
        self.subscription.delete()
        return Response(status=204)


@extend_schema(tags=["webhooks"])
class SubscriptionSecretRotateApi(OneSubscriptionApi):
    write_actions = {"POST": "webhook_subscription.rotate_secret"}

    @extend_schema(
        operation_id="webhook_subscription_rotate_secret",
        examples=examples_for("webhook_subscription_rotate_secret"),
        request=None,
        responses={200: SecretOutput, **error_responses(403)},
    )
    def post(self, request, uid):
        self._audit_detail = {"subscription": self.subscription.uid}
        secret = services.subscription_secret_rotate(subscription=self.subscription)
        return Response({"secret": secret})


@extend_schema(tags=["webhooks"])
class DeliveryListApi(OneSubscriptionApi):
    """The subscription's newest deliveries (up to 50) with their attempts."""

    @extend_schema(
        operation_id="webhook_deliveries_list",
        examples=examples_for("webhook_deliveries_list"),
        responses={200: DeliveryOutput(many=True), **error_responses(403)},
    )
    def get(self, request, uid):
        rows = self.subscription.deliveries.order_by("-id").prefetch_related("log")[:50]
        return Response(DeliveryOutput(rows, many=True).data)
