"""API clients, keys and the audit log in the ops console.

A key is shown exactly once, on a page rendered by the very request that created it
(new client or "issue a new key"), sent with ``Cache-Control: no-store``. It never goes
into a message, cookie, session or log line (messages live in a signed, not encrypted,
cookie or in the session row); admin never shows a key or its hash again. The audit log is
view-only: no add, change or delete.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib import messages as flash
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from api import services
from api.models import ApiClient
from api.models import ApiKey
from api.models import AuditLog
from api.models import JsapiTicket
from wecom_provider.adminperms import GuardedModelAdmin
from wecom_provider.adminperms import ReadOnlyInline


def _key_page(request, model_admin, issued: list[tuple[ApiClient, str]]) -> TemplateResponse:
    response = TemplateResponse(
        request,
        "admin/api/key_issued.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": "New API key(s): shown once",
            "opts": model_admin.model._meta,
            "issued": issued,
        },
    )
    # The page holds a secret: no browser or proxy cache may keep it.
    add_never_cache_headers(response)
    return response


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ("display", "created_at", "created_by", "expires_at", "revoked_at", "last_used_at")


@admin.register(ApiClient)
class ApiClientAdmin(GuardedModelAdmin):
    list_display = ("name", "suite_count", "corp_count", "rate_limit_per_minute", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "description")
    filter_horizontal = ("suites", "corps")
    fields = (
        "name",
        "description",
        "suites",
        "corps",
        "scopes",
        "wecom_paths",
        "rate_limit_per_minute",
        "revoked_at",
    )
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
            # Kept on the request only, for response_add to render.
            request._issued_api_keys = [(form.instance, issued.key)]

    def response_add(self, request, obj, post_url_continue=None):
        issued = getattr(request, "_issued_api_keys", None)
        if issued:
            return _key_page(request, self, issued)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(
        permissions=["issue_apikey"],
        description="Issue a new key (rotation: the old key keeps working)",
    )
    def issue_key(self, request, queryset):
        issued_keys = []
        for client in queryset:
            try:
                issued = services.api_key_issue(client=client, actor=request.user.get_username())
            except services.ApiClientError as exc:
                flash.error(request, str(exc))
                continue
            issued_keys.append((client, issued.key))
        return _key_page(request, self, issued_keys) if issued_keys else None

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
    list_display = (
        "owner_key",
        "kind",
        "expires_at",
        "obtained_at",
        "fetch_count",
        "flagged",
        "last_error",
        "retry_not_before",
    )
    list_filter = ("kind", "flagged", "last_refresh_ok")
    search_fields = ("owner_key",)
    fields = (
        "owner_key",
        "kind",
        "expires_at",
        "obtained_at",
        "fetch_count",
        "flagged",
        "last_refresh_at",
        "last_refresh_ok",
        "last_error",
        "consecutive_failures",
        "retry_not_before",
        "forced_refresh_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
