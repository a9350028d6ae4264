"""Shapes of the paid-app endpoints (应用版本付费): a tenant's orders, edition and trial."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.app_orders.editions import MAX_PROLONG_DAYS
from licensing.app_orders.models import AppOrderStatus
from licensing.app_orders.models import AppOrderType
from licensing.app_orders.models import TenantEdition

APP_STATUS_NAMES = {
    0: "none",
    1: "trial",
    2: "trial_expired",
    3: "paid",
    4: "paid_expired",
    5: "unlimited_trial",
    6: "over_limit",
    7: "over_limit_long",
}


class AppOrderOutput(serializers.Serializer):
    order_id = serializers.CharField(help_text="WeCom orderid")
    suite_id = serializers.CharField(source="suite.suite_id")
    corpid = serializers.CharField(source="corp.corpid")
    status = serializers.ChoiceField(
        choices=AppOrderStatus.choices,
        help_text="0 unpaid, 1 paid, 2 cancelled, 3 expired unpaid, 4 refund requested, "
        "5 refunded, 6 refund refused; only ever moves forward",
    )
    order_type = serializers.IntegerField(
        allow_null=True, help_text="0 new, 1 more users, 2 renewal, 3 edition change"
    )
    order_from = serializers.IntegerField(
        allow_null=True, help_text="0 the corp, 1 the provider on its behalf, 2 a dealer"
    )
    edition_id = serializers.CharField()
    edition_name = serializers.CharField()
    price = serializers.IntegerField(allow_null=True, help_text="应付价格, 分 (1/100 CNY)")
    user_count = serializers.IntegerField(allow_null=True)
    order_period = serializers.IntegerField(allow_null=True, help_text="days")
    order_time = serializers.DateTimeField(allow_null=True)
    paid_time = serializers.DateTimeField(allow_null=True)
    begin_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    operator_id = serializers.CharField(help_text="empty when the provider or a dealer ordered")
    operator_corpid = serializers.CharField()
    service_share_amount = serializers.IntegerField(allow_null=True, help_text="分")
    platform_share_amount = serializers.IntegerField(allow_null=True, help_text="分")
    dealer_share_amount = serializers.IntegerField(allow_null=True, help_text="分")
    dealer_corpid = serializers.CharField()
    dealer_corp_name = serializers.CharField()
    test_mode = serializers.BooleanField(help_text="an order of a test install")
    replaces = serializers.CharField(help_text="the order a price change replaced")
    replaced_by = serializers.CharField(help_text="the order that replaced this one")
    last_synced_at = serializers.DateTimeField(allow_null=True)


class AppOrderQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=AppOrderStatus.choices, required=False)
    order_type = serializers.ChoiceField(choices=AppOrderType.choices, required=False)


class EditionChangeOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    source = serializers.CharField(help_text="callback, order, poll, reconcile, prolong_try…")
    order_id = serializers.CharField()
    before = serializers.DictField()
    after = serializers.DictField()


class TrialExtensionOutput(serializers.Serializer):
    days = serializers.IntegerField()
    try_end_time = serializers.DateTimeField()
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()


class EditionOutput(serializers.Serializer):
    suite_id = serializers.CharField(source="authorization.suite.suite_id")
    corpid = serializers.CharField(source="authorization.corp.corpid")
    edition_id = serializers.CharField(help_text="empty: the app has no paid edition here")
    edition_name = serializers.CharField()
    app_status = serializers.IntegerField(allow_null=True, help_text="WeCom's app_status 0..7")
    app_status_name = serializers.SerializerMethodField()
    user_limit = serializers.IntegerField(allow_null=True)
    expired_time = serializers.DateTimeField(
        allow_null=True, help_text="when the trial or the paid term ends"
    )
    days_left = serializers.SerializerMethodField()
    is_virtual_version = serializers.BooleanField()
    is_shared_from_other_corp = serializers.BooleanField()
    over_limit = serializers.BooleanField(help_text="more users than the edition allows (6, 7)")
    read_at = serializers.DateTimeField(allow_null=True, help_text="when WeCom was last asked")
    changed_at = serializers.DateTimeField(allow_null=True)
    history = serializers.SerializerMethodField()
    trial_extensions = serializers.SerializerMethodField()

    @extend_schema_field(
        serializers.ChoiceField(choices=sorted(set(APP_STATUS_NAMES.values())), allow_null=True)
    )
    def get_app_status_name(self, row: TenantEdition) -> str | None:
        return APP_STATUS_NAMES.get(row.app_status) if row.app_status is not None else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_days_left(self, row: TenantEdition) -> int | None:
        if row.expired_time is None:
            return None
        return max(0, (row.expired_time - timezone.now()).days)

    @extend_schema_field(EditionChangeOutput(many=True))
    def get_history(self, row: TenantEdition) -> list[dict]:
        if row.pk is None:
            return []
        return EditionChangeOutput(row.changes.all()[:20], many=True).data

    @extend_schema_field(TrialExtensionOutput(many=True))
    def get_trial_extensions(self, row: TenantEdition) -> list[dict]:
        extensions = row.authorization.trial_extensions.all()[:20]
        return TrialExtensionOutput(extensions, many=True).data


class TrialProlongInput(serializers.Serializer):
    days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PROLONG_DAYS,
        help_text="days added to the trial (WeCom: on a trial or an expired trial, 60 days "
        "in total); each call extends again",
    )


class TrialProlongOutput(serializers.Serializer):
    days = serializers.IntegerField()
    try_end_time = serializers.DateTimeField(help_text="the new end WeCom answered")
    edition = EditionOutput()
