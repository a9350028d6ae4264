"""API clients, keys and the audit log in the ops console.

A key is shown exactly once, in the message after it is created (new client or
"issue a new key"); admin never shows a key or its hash again. The audit log is
view-only: no add, change or delete.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib import messages as flash

from api import services
from api.models import ApiClient
from api.models import ApiKey
from api.models import AuditLog
from api.models import JsapiTicket
from wecom_provider.adminperms import GuardedModelAdmin


def _show_key_once(request, client: ApiClient, issued: services.IssuedKey) -> None:
    flash.warning(
        request,
        f"New API key for {client.name} (shown only now; copy it): {issued.key}",
    )


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("display", "created_at", "created_by", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(GuardedModelAdmin):
    list_display = ("name", "suite_count", "corp_count", "rate_limit_per_minute", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "description")
    filter_horizontal = ("suites", "corps")
    fields = ("name", "description", "suites", "corps", "rate_limit_per_minute", "revoked_at")
    readonly_fields = ("revoked_at",)
    inlines = [ApiKeyInline]
    actions = ["issue_key", "revoke"]

    @admin.display(description="suites")
    def suite_count(self, obj: ApiClient) -> int:
        return obj.suites.count()

    @admin.display(description="corps")
    def corp_count(self, obj: ApiClient) -> int:
        return obj.corps.count()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            # A new client gets its first key once its scope is saved.
            issued = services.api_key_issue(client=form.instance, actor=request.user.get_username())
            _show_key_once(request, form.instance, issued)

    @admin.action(
        permissions=["issue_apikey"],
        description="Issue a new key (rotation: the old key keeps working)",
    )
    def issue_key(self, request, queryset) -> None:
        for client in queryset:
            try:
                issued = services.api_key_issue(client=client, actor=request.user.get_username())
            except services.ApiClientError as exc:
                flash.error(request, str(exc))
                continue
            _show_key_once(request, client, issued)

    @admin.action(
        permissions=["revoke_apiclient"], description="Revoke (every key stops working now)"
    )
    def revoke(self, request, queryset) -> None:
        count = sum(services.api_client_revoke(client=client) for client in queryset)
        flash.success(request, f"Revoked {count} client(s).")


@admin.register(ApiKey)
class ApiKeyAdmin(GuardedModelAdmin):
    list_display = ("display", "client", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "client__name")
    fields = ("display", "client", "created_at", "created_by", "expires_at", "revoked_at")
    readonly_fields = ("display", "client", "created_at", "created_by", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # keys are issued from the client (command or client action)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the audit log refers to keys by prefix

    @admin.display(description="key")
    def display(self, obj: ApiKey) -> str:
        return obj.display

    @admin.action(permissions=["revoke_apikey"], description="Revoke (stops working now)")
    def revoke(self, request, queryset) -> None:
        count = sum(services.api_key_revoke(key=key) for key in queryset)
        flash.success(request, f"Revoked {count} key(s).")


@admin.register(AuditLog)
class AuditLogAdmin(GuardedModelAdmin):
    list_display = (
        "created_at",
        "client",
        "key_prefix",
        "action",
        "outcome",
        "status_code",
        "suite_id",
        "corpid",
        "request_id",
    )
    list_filter = ("outcome", "action", "client")
    search_fields = ("suite_id", "corpid", "request_id", "key_prefix")
    date_hierarchy = "created_at"
    list_select_related = ("client",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(JsapiTicket)
class JsapiTicketAdmin(GuardedModelAdmin):
    list_display = ("owner_key", "kind", "expires_at", "obtained_at", "fetch_count")
    search_fields = ("owner_key",)
    fields = ("owner_key", "kind", "expires_at", "obtained_at", "fetch_count")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
