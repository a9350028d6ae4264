"""Ops console for paid apps: every order with WeCom's fields, editions, trials.

Rows are written by services only (read-only here). Actions: read an order or an
edition again from WeCom, and extend trials (prolong_try, its own permission). The list
filters are the ones the dashboard links to, so a figure is the row count behind it.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib import messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join

from licensing.admin_common import ReadOnlyMixin
from licensing.admin_common import _report
from licensing.app_orders import editions
from licensing.app_orders import services
from licensing.app_orders.models import OVER_LIMIT_STATUSES
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import AppOrderStatusChange
from licensing.app_orders.models import AppStatus
from licensing.app_orders.models import TenantEdition
from licensing.app_orders.models import TenantEditionChange
from tenants.credentials import AuthorizationInactive
from tenants.credentials import CredentialUnavailable
from tenants.models import Authorization
from wecom.errors import WeComError
from wecom_provider.adminperms import GuardedModelAdmin
from wecom_provider.adminperms import ReadOnlyInline

# The dashboard's trial windows (days): ``?trial=7`` and ``?trial=30``.
TRIAL_WINDOWS = (7, 30)


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else f"{fen / 100:.2f}"


# --- orders -------------------------------------------------------------------------------------


class PollFilter(admin.SimpleListFilter):
    title = "polling"
    parameter_name = "polling"

    def lookups(self, request, model_admin):
        return [("due", "due now"), ("scheduled", "scheduled"), ("settled", "settled")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "due":
            return queryset.filter(next_sync_at__lte=now)
        if self.value() == "scheduled":
            return queryset.filter(next_sync_at__gt=now)
        if self.value() == "settled":
            return queryset.filter(next_sync_at__isnull=True)
        return queryset


class StatusChangeInline(ReadOnlyInline):
    model = AppOrderStatusChange
    fields = ("at", "from_status", "to_status", "source")


@admin.register(AppOrder)
class AppOrderAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = (
        "order_id",
        "corp",
        "suite",
        "status",
        "order_type",
        "edition_name",
        "user_count",
        "price_yuan",
        "order_time",
        "paid_time",
        "end_time",
        "order_from",
        "next_sync_at",
    )
    list_filter = ("status", "order_type", "order_from", "suite", "test_mode", PollFilter)
    search_fields = (
        "order_id",
        "corp__corpid",
        "corp__name",
        "edition_id",
        "edition_name",
        "operator_id",
        "replaces",
        "replaced_by",
    )
    list_select_related = ("corp", "suite")
    date_hierarchy = "order_time"
    inlines = [StatusChangeInline]
    actions = ["sync_now"]
    fieldsets = [
        (None, {"fields": ("order_id", "suite", "corp", "status", "order_type", "order_from")}),
        (
            "Edition bought",
            {"fields": ("edition_id", "edition_name", "user_count", "order_period")},
        ),
        (
            "Amounts (分)",
            {
                "fields": (
                    "price",
                    "service_share_amount",
                    "platform_share_amount",
                    "dealer_share_amount",
                    "dealer_corpid",
                    "dealer_corp_name",
                )
            },
        ),
        ("Times", {"fields": ("order_time", "paid_time", "begin_time", "end_time")}),
        (
            "Who and what",
            {
                "fields": (
                    "operator_id",
                    "operator_corpid",
                    "appid",
                    "test_mode",
                    "replaces",
                    "replaced_by",
                )
            },
        ),
        (
            "Mirror",
            {
                "fields": (
                    "status_source",
                    "status_changed_at",
                    "last_synced_at",
                    "next_sync_at",
                    "sync_attempts",
                    "last_sync_error",
                    "raw",
                )
            },
        ),
    ]

    @admin.display(description="price (¥)", ordering="price")
    def price_yuan(self, order: AppOrder) -> str:
        return _yuan(order.price)

    @admin.action(permissions=["sync_apporder"], description="Sync now from WeCom")
    def sync_now(self, request, queryset):
        done, failures = 0, []
        for order in queryset.select_related("suite"):
            try:
                services.app_order_sync(order=order, source="admin")
                done += 1
            except (WeComError, CredentialUnavailable, editions.PaidAppError) as exc:
                failures.append(f"{order.order_id}: {exc}")
        _report(self, request, done, failures, "synced")


# --- editions and trials ---------------------------------------------------------------------


class TrialFilter(admin.SimpleListFilter):
    title = "trial"
    parameter_name = "trial"

    def lookups(self, request, model_admin):
        return [
            *((str(days), f"ends within {days} days") for days in TRIAL_WINDOWS),
            ("expired", "trial expired"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value in {str(days) for days in TRIAL_WINDOWS}:
            # The same rows as selectors.trials_ending (the dashboard's list and figures).
            now = timezone.now()
            return queryset.filter(
                app_status=AppStatus.TRIAL,
                expired_time__gt=now,
                expired_time__lte=now + timedelta(days=int(value)),
                authorization__status=Authorization.Status.ACTIVE,
            )
        if value == "expired":
            return queryset.filter(app_status=AppStatus.TRIAL_EXPIRED)
        return queryset


class SeatsFilter(admin.SimpleListFilter):
    title = "seats"
    parameter_name = "seats"

    def lookups(self, request, model_admin):
        return [("over", "over the user limit (active tenants)")]

    def queryset(self, request, queryset):
        if self.value() == "over":
            return queryset.filter(
                app_status__in=OVER_LIMIT_STATUSES,
                authorization__status=Authorization.Status.ACTIVE,
            )
        return queryset


class EditionChangeInline(ReadOnlyInline):
    model = TenantEditionChange
    fields = ("at", "source", "order_id", "before", "after")


class ProlongForm(forms.Form):
    days = forms.IntegerField(
        min_value=1,
        max_value=editions.MAX_PROLONG_DAYS,
        help_text="Added to the trial's end. WeCom allows it on a trial or an expired trial, "
        "60 days in total.",
    )


@admin.register(TenantEdition)
class TenantEditionAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = (
        "tenant",
        "edition_name",
        "app_status",
        "user_limit",
        "expired_time",
        "days_left",
        "changed_at",
        "read_at",
        "next_check_at",
    )
    list_filter = ("app_status", TrialFilter, SeatsFilter, "authorization__suite")
    search_fields = (
        "authorization__corp__corpid",
        "authorization__corp__name",
        "edition_id",
        "edition_name",
    )
    list_select_related = ("authorization__corp", "authorization__suite")
    inlines = [EditionChangeInline]
    actions = ["refresh", "prolong_trial"]
    readonly_fields = ("trial_extensions",)

    @admin.display(description="tenant", ordering="authorization__corp__name")
    def tenant(self, row: TenantEdition) -> str:
        corp, suite = row.authorization.corp, row.authorization.suite
        return f"{corp.name or corp.corpid} ({corp.corpid}) · {suite.suite_id}"

    @admin.display(description="days left")
    def days_left(self, row: TenantEdition) -> str:
        if row.expired_time is None:
            return "—"
        return str(max(0, (row.expired_time - timezone.now()).days))

    @admin.display(description="trial extensions")
    def trial_extensions(self, row: TenantEdition) -> str:
        extensions = row.authorization.trial_extensions.all()[:20]
        return (
            format_html_join(
                "",
                "<div>{} +{} d until {} by {}</div>",
                ((e.created_at, e.days, e.try_end_time, e.actor) for e in extensions),
            )
            or "none"
        )

    @admin.action(permissions=["refresh_tenantedition"], description="Re-read edition from WeCom")
    def refresh(self, request, queryset):
        done, failures = 0, []
        for row in queryset.select_related("authorization"):
            try:
                editions.edition_refresh(authorization=row.authorization, source="admin")
                done += 1
            except (WeComError, CredentialUnavailable) as exc:
                failures.append(f"{row.authorization}: {exc}")
        _report(self, request, done, failures, "re-read")

    @admin.action(permissions=["prolong_trial"], description="Extend the trial (prolong_try)…")
    def prolong_trial(self, request, queryset):
        rows = list(queryset.select_related("authorization__corp", "authorization__suite"))
        form = ProlongForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done, failures = 0, []
            for row in rows:
                try:
                    editions.trial_prolong(
                        authorization=row.authorization,
                        days=form.cleaned_data["days"],
                        actor=request.user.get_username(),
                    )
                    done += 1
                except (
                    WeComError,
                    CredentialUnavailable,
                    AuthorizationInactive,
                    editions.PaidAppError,
                ) as exc:
                    failures.append(f"{row.authorization}: {exc}")
            _report(self, request, done, failures, "trial extended")
            return None
        if "apply" in request.POST:
            self.message_user(request, "give a number of days (1..60)", messages.WARNING)
        return TemplateResponse(
            request,
            "admin/licensing/prolong_trial.html",
            {
                **self.admin_site.each_context(request),
                "title": "Extend trials",
                "opts": self.model._meta,
                "rows": rows,
                "form": form,
                "action": "prolong_trial",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )
