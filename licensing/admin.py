"""Ops console for licenses: find, filter, trigger. Mirror rows are read-only here;
every change goes through licensing.services (and so through WeCom)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib import messages
from django.template.response import TemplateResponse
from django.utils import timezone

from licensing import selectors
from licensing import services
from licensing.admin_common import ReadOnlyMixin
from licensing.admin_common import _report
from licensing.models import AccountStatus
from licensing.models import AppLicenseInfo
from licensing.models import CorpLicenseSettings
from licensing.models import CorpLicenseSummary
from licensing.models import LicenseAccount
from licensing.models import LicenseBatch
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseNewOrderJob
from licensing.models import LicenseOrder
from licensing.models import LicenseRenewJob
from licensing.models import OrderStatus
from licensing.models import UnlicensedMember
from wecom.errors import WeComError
from wecom_provider.adminperms import GuardedModelAdmin
from wecom_provider.adminperms import ReadOnlyInline

# --- orders ---------------------------------------------------------------------------------


class SyncDueFilter(admin.SimpleListFilter):
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


class SubOrderInline(ReadOnlyInline):
    model = LicenseOrder
    fk_name = "parent"
    fields = ("order_id", "corp", "status", "base_count", "external_contact_count", "price")
    show_change_link = True


@admin.register(LicenseOrder)
class LicenseOrderAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = (
        "order_id",
        "order_type",
        "status",
        "corp",
        "base_count",
        "external_contact_count",
        "duration",
        "price_yuan",
        "created_time",
        "paid_at",
        "accounts_synced_at",
        "next_sync_at",
    )
    list_filter = ("status", "order_type", SyncDueFilter, "status_source")
    search_fields = ("order_id", "corp__corpid", "corp__name", "buyer_userid")
    list_select_related = ("corp",)
    date_hierarchy = "created_time"
    inlines = [SubOrderInline]
    actions = ["sync_now", "cancel"]

    @admin.display(description="duration")
    def duration(self, order: LicenseOrder) -> str:
        if order.new_expire_time:
            return f"until {order.new_expire_time:%Y-%m-%d}"
        return f"{order.duration_months} mo + {order.duration_days} d"

    @admin.display(description="price (¥)", ordering="price")
    def price_yuan(self, order: LicenseOrder) -> str:
        return f"{order.price / 100:.2f}"

    @admin.action(permissions=["sync_licenseorder"], description="Sync now from WeCom")
    def sync_now(self, request, queryset):
        done, failures = 0, []
        for order in queryset:
            try:
                services.license_order_sync(order=order, source="admin")
                done += 1
            except (WeComError, services.LicenseError) as exc:
                failures.append(f"{order.order_id}: {exc}")
        _report(self, request, done, failures, "synced")

    @admin.action(permissions=["cancel_licenseorder"], description="Cancel (unpaid orders only)")
    def cancel(self, request, queryset):
        done, failures = 0, []
        for order in queryset:
            if order.status != OrderStatus.UNPAID:
                failures.append(f"{order.order_id}: not awaiting payment")
                continue
            try:
                services.license_order_cancel(order=order)
                done += 1
            except (WeComError, services.LicenseError) as exc:
                failures.append(f"{order.order_id}: {exc}")
        _report(self, request, done, failures, "cancelled")


# --- accounts -------------------------------------------------------------------------------


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiry"
    parameter_name = "expiry"

    def lookups(self, request, model_admin):
        days = selectors.expiry_warning_days()
        return [
            ("soon", f"expiring within {days} days"),
            ("7", "expiring within 7 days"),
            ("expired", "expired"),
            ("none", "not activated"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        value = self.value()
        if value == "soon":
            days = selectors.expiry_warning_days()
            return queryset.filter(
                status=AccountStatus.ACTIVE,
                expire_time__gt=now,
                expire_time__lte=now + timedelta(days=days),
            )
        if value == "7":
            return queryset.filter(
                status=AccountStatus.ACTIVE,
                expire_time__gt=now,
                expire_time__lte=now + timedelta(days=7),
            )
        if value == "expired":
            return queryset.filter(expire_time__lte=now)
        if value == "none":
            return queryset.filter(expire_time__isnull=True)
        return queryset


class InvalidFilter(admin.SimpleListFilter):
    title = "known to WeCom"
    parameter_name = "invalid"

    def lookups(self, request, model_admin):
        return [("no", "valid"), ("yes", "invalid (refunded or unknown)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(invalid_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(invalid_at__isnull=True)
        return queryset


class ActivateForm(forms.Form):
    userids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One member userid per line, matched in order to the selected unbound codes.",
    )

    def clean_userids(self) -> list[str]:
        values = [line.strip() for line in self.cleaned_data["userids"].splitlines()]
        values = [v for v in values if v]
        if not values:
            raise forms.ValidationError("give at least one userid")
        return values


@admin.register(LicenseAccount)
class LicenseAccountAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = (
        "active_code",
        "corp",
        "type",
        "status",
        "userid",
        "active_time",
        "expire_time",
        "order",
        "shared_to_corp",
        "invalid_at",
    )
    list_filter = ("type", "status", ExpiryFilter, InvalidFilter)
    search_fields = ("active_code", "userid", "corp__corpid", "corp__name", "order__order_id")
    list_select_related = ("corp", "order", "shared_to_corp")
    actions = ["activate", "refresh"]

    @admin.action(permissions=["activate_licenseaccount"], description="Activate for members…")
    def activate(self, request, queryset):
        codes = list(
            queryset.filter(status=AccountStatus.UNBOUND, invalid_at__isnull=True)
            .select_related("corp")
            .order_by("corp_id", "created_time", "active_code")
        )
        if not codes:
            self.message_user(request, "select unbound, valid codes", messages.WARNING)
            return None
        if len({c.corp_id for c in codes}) > 1:
            self.message_user(request, "select codes of one corp at a time", messages.WARNING)
            return None
        form = ActivateForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            userids = form.cleaned_data["userids"][: len(codes)]
            items = [
                {"active_code": code.active_code, "userid": userid}
                for code, userid in zip(codes, userids, strict=False)
            ]
            corp = codes[0].corp
            try:
                batch = services.license_accounts_activate_batch(
                    corp=corp, items=items, actor=request.user.get_username()
                )
            except (WeComError, services.LicenseError) as exc:
                self.message_user(request, f"activation failed: {exc}", messages.ERROR)
                return None
            failures = [
                f"{e.item.get('active_code')} → {e.item.get('userid')}: errcode {e.errcode}"
                for e in batch.errors.all()
            ]
            _report(self, request, batch.succeeded, failures, "activated")
            return None
        return TemplateResponse(
            request,
            "admin/licensing/activate.html",
            {
                **self.admin_site.each_context(request),
                "title": "Activate licenses",
                "opts": self.model._meta,
                "codes": codes,
                "form": form,
                "action": "activate",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(permissions=["refresh_licenseaccount"], description="Re-read from WeCom")
    def refresh(self, request, queryset):
        done, failures = 0, []
        by_corp: dict = {}
        for account in queryset.select_related("corp"):
            by_corp.setdefault(account.corp, []).append(account.active_code)
        for corp, codes in by_corp.items():
            try:
                done += services.license_accounts_refresh(corp=corp, active_codes=codes)
            except (WeComError, services.LicenseError) as exc:
                failures.append(f"{corp.corpid}: {exc}")
        _report(self, request, done, failures, "re-read")


# --- per-corp summary -----------------------------------------------------------------------


@admin.register(CorpLicenseSummary)
class CorpLicenseSummaryAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = ("corpid", "name", "bought", "active", "free", "expiring", "trial_end")
    search_fields = ("corpid", "name")
    actions = ["sync_license_info", "reconcile_accounts"]
    fields = ("corpid", "name", "full_name")

    def get_queryset(self, request):
        return selectors.license_corp_summaries()

    @admin.display(description="bought", ordering="licenses_bought")
    def bought(self, corp) -> int:
        return corp.licenses_bought

    @admin.display(description="active", ordering="licenses_active")
    def active(self, corp) -> int:
        return corp.licenses_active

    @admin.display(description="free", ordering="licenses_free")
    def free(self, corp) -> int:
        return corp.licenses_free

    @admin.display(description="expiring (30 d)", ordering="licenses_expiring")
    def expiring(self, corp) -> int:
        return corp.licenses_expiring

    @admin.display(description="trial ends", ordering="trial_end")
    def trial_end(self, corp):
        return corp.trial_end

    @admin.action(
        permissions=["sync_license_info"],
        description="Read app license info and auto-activation from WeCom",
    )
    def sync_license_info(self, request, queryset):
        done, failures = 0, []
        for corp in queryset:
            try:
                for authorization in corp.authorizations.select_related("suite"):
                    services.license_app_info_sync(corp=corp, suite=authorization.suite)
                services.license_auto_active_get(corp=corp)
                done += 1
            except (WeComError, services.LicenseError) as exc:
                failures.append(f"{corp.corpid}: {exc}")
        _report(self, request, done, failures, "read")

    @admin.action(
        permissions=["reconcile_license_accounts"], description="Reconcile activated accounts"
    )
    def reconcile_accounts(self, request, queryset):
        done, failures = 0, []
        for corp in queryset:
            try:
                services.license_corp_accounts_reconcile(corp=corp)
                done += 1
            except (WeComError, services.LicenseError) as exc:
                failures.append(f"{corp.corpid}: {exc}")
        _report(self, request, done, failures, "reconciled")


# --- jobs, batches, members, settings -------------------------------------------------------


@admin.register(LicenseRenewJob)
class LicenseRenewJobAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = ("jobid", "corp", "status", "account_count", "order", "submitted_at")
    list_filter = ("status",)
    search_fields = ("jobid", "corp__corpid")

    @admin.display(description="accounts")
    def account_count(self, job: LicenseRenewJob) -> int:
        return len(job.accounts)


@admin.register(LicenseNewOrderJob)
class LicenseNewOrderJobAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = ("jobid", "status", "corp_count", "order", "submitted_at", "next_sync_at")
    list_filter = ("status",)
    search_fields = ("jobid",)

    @admin.display(description="corps")
    def corp_count(self, job: LicenseNewOrderJob) -> int:
        return len(job.buy_list)


class BatchItemErrorInline(ReadOnlyInline):
    model = LicenseBatchItemError
    fields = ("item", "errcode", "errmsg", "local")


@admin.register(LicenseBatch)
class LicenseBatchAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = (
        "id",
        "operation",
        "corp",
        "target_corp",
        "total",
        "succeeded",
        "failed",
        "calls",
        "actor",
        "created_at",
    )
    list_filter = ("operation",)
    search_fields = ("corp__corpid", "actor")
    inlines = [BatchItemErrorInline]


@admin.register(LicenseBatchItemError)
class LicenseBatchItemErrorAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = ("batch", "errcode", "item", "errmsg", "local", "created_at")
    list_filter = ("errcode", "local", "batch__operation")


class ResolvedFilter(admin.SimpleListFilter):
    title = "resolved"
    parameter_name = "resolved"

    def lookups(self, request, model_admin):
        return [("no", "still unlicensed"), ("yes", "licensed since")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(UnlicensedMember)
class UnlicensedMemberAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = ("userid", "corp", "suite", "times_seen", "last_seen_at", "resolved_at")
    list_filter = (ResolvedFilter, "suite")
    search_fields = ("userid", "corp__corpid", "corp__name")
    list_select_related = ("corp", "suite")


@admin.register(AppLicenseInfo)
class AppLicenseInfoAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = (
        "corp",
        "suite",
        "license_status",
        "trial_start",
        "trial_end",
        "license_check_time",
        "synced_at",
    )
    list_filter = ("license_status", "suite")
    search_fields = ("corp__corpid", "corp__name")


@admin.register(CorpLicenseSettings)
class CorpLicenseSettingsAdmin(ReadOnlyMixin, GuardedModelAdmin):
    list_display = ("corp", "auto_active_status", "synced_at", "accounts_reconciled_at")
    list_filter = ("auto_active_status",)
    search_fields = ("corp__corpid",)


# Paid apps' console (orders, editions, trials) lives beside its services; importing it
# here registers it when the admin autodiscovers this module.
from licensing.app_orders import admin as app_order_admin  # noqa: E402,F401
