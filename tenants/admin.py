"""Tenants as an ops console: find, filter, trigger. No secret is ever shown.

Sealed columns are excluded from every form and list; actions call services.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.contrib import messages as flash
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html

from tenants import credentials
from tenants import install_links
from tenants import selectors
from tenants import services
from tenants.models import SUITE_TICKET_STALE_AFTER
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import Corp
from tenants.models import CredentialToken
from tenants.models import FeedEvent
from tenants.models import Provider
from tenants.models import Suite
from wecom.errors import WeComError
from wecom_provider.adminperms import GuardedModelAdmin
from wecom_provider.adminperms import ReadOnlyInline
from wecom_provider.adminperms import admin_view_requiring

logger = logging.getLogger(__name__)


def _sealed_columns(model) -> list[str]:
    return [f.name for f in model._meta.fields if f.name.endswith("_sealed")]


class ReadOnlySecretsAdmin(GuardedModelAdmin):
    """Base: sealed columns never appear; rows are created by commands and flows."""

    def get_exclude(self, request, obj=None):
        return [*_sealed_columns(self.model), *(super().get_exclude(request, obj) or [])]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Provider)
class ProviderAdmin(ReadOnlySecretsAdmin):
    list_display = ("corpid", "name", "updated_at")
    search_fields = ("corpid", "name")
    readonly_fields = ("corpid", "created_at", "updated_at")


class TicketStaleFilter(admin.SimpleListFilter):
    title = "suite ticket"
    parameter_name = "ticket"

    def lookups(self, request, model_admin):
        minutes = int(SUITE_TICKET_STALE_AFTER.total_seconds() // 60)
        return [("stale", f"stale (none for {minutes}+ min)"), ("fresh", "fresh")]

    def queryset(self, request, queryset):
        stale = selectors.suite_ticket_stale_q()
        if self.value() == "stale":
            return queryset.filter(stale)
        if self.value() == "fresh":
            return queryset.exclude(stale)
        return queryset


@admin.register(Suite)
class SuiteAdmin(ReadOnlySecretsAdmin):
    list_display = ("suite_id", "name", "kind", "ticket_age_display", "suite_token_state")
    list_filter = ("kind", TicketStaleFilter)
    search_fields = ("suite_id", "name")
    readonly_fields = (
        "provider",
        "suite_id",
        "kind",
        "suite_ticket_timestamp",
        "suite_ticket_received_at",
        "created_at",
        "updated_at",
    )
    actions = ("refresh_suite_token",)

    @admin.display(description="ticket age")
    def ticket_age_display(self, suite: Suite) -> str:
        age = suite.ticket_age()
        if age is None:
            return format_html('<span style="color:#ba2121">no ticket</span>')
        minutes = int(age.total_seconds() // 60)
        if suite.ticket_is_stale():
            return format_html('<span style="color:#ba2121">{} min (stale)</span>', minutes)
        return f"{minutes} min"

    @admin.display(description="suite token")
    def suite_token_state(self, suite: Suite) -> str:
        row = CredentialToken.objects.filter(owner_key=credentials.owner_key(suite)).first()
        return _token_state(row)

    @admin.action(permissions=["refresh_suite_token"], description="Refresh the suite token now")
    def refresh_suite_token(self, request, queryset) -> None:
        for suite in queryset:
            _refresh(self, request, suite)

    def get_urls(self):
        guarded = admin_view_requiring("tenants.create_test_install_link")(
            self.test_install_link_view
        )
        return [
            path(
                "<path:object_id>/test-install-link/",
                self.admin_site.admin_view(guarded),
                name="tenants_suite_test_install_link",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_create_test_install_link": request.user.has_perm(
                "tenants.create_test_install_link"
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def test_install_link_view(self, request, object_id: str) -> TemplateResponse:
        """GET: explain and offer the button; POST: create a signed test-install link."""
        suite = self.get_object(request, object_id)
        if suite is None:
            raise Http404("no such suite")
        link = None
        if request.method == "POST":
            link = install_links.test_link_create(suite_id=suite.suite_id)
            # Who made one, never the link itself: it grants a test install until it expires.
            logger.info(
                "test-install link created for %s by user %s", suite.suite_id, request.user.pk
            )
        response = TemplateResponse(
            request,
            "admin/tenants/suite/test_install_link.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Test-install link for {suite}",
                "opts": self.model._meta,
                "original": suite,
                "link": link,
                "max_age_minutes": settings.TEST_INSTALL_LINK_MAX_AGE // 60,
            },
        )
        add_never_cache_headers(response)  # the link grants a test install: keep no copy
        return response


def _token_state(row: CredentialToken | None) -> str:
    if row is None:
        return "none"
    if row.expires_at is None:
        state = "none"
    else:
        left = row.expires_at - timezone.now()
        minutes = int(left.total_seconds() // 60)
        state = "expired" if left <= timedelta(0) else f"{minutes} min left"
    if row.last_refresh_ok is False:
        state += f" · last refresh failed ({row.last_error})"
    if row.flagged:
        # WeCom refused the credential itself: no call until the backoff ends.
        state += " · FLAGGED: credential refused, fix the secret/code then refresh"
    return state


def _refresh(model_admin, request, owner) -> None:
    key = credentials.owner_key(owner)
    row = credentials.credential_row(owner)
    current = row.value if row.value_sealed else None
    # Ops asked for a refresh (e.g. after fixing a secret): the remembered failure yields.
    credentials.token_backoff_clear(owner)
    try:
        # Reporting the current token as rejected forces exactly one refresh.
        token = credentials.token_get(owner, rejected=current)
    except (WeComError, credentials.CredentialUnavailable) as exc:
        model_admin.message_user(request, f"{key}: refresh failed ({exc})", flash.ERROR)
        return
    minutes = token.expires_in() // 60
    model_admin.message_user(request, f"{key}: token valid for {minutes} min", flash.SUCCESS)


@admin.register(Corp)
class CorpAdmin(GuardedModelAdmin):
    list_display = ("corpid", "name", "corp_type", "scale", "industry", "updated_at")
    search_fields = ("corpid", "name", "full_name")
    readonly_fields = [f.name for f in Corp._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class HistoryInline(ReadOnlyInline):
    model = AuthorizationHistory
    fields = ("created_at", "action", "from_status", "to_status", "actor", "detail")


class TokenExpiryFilter(admin.SimpleListFilter):
    title = "corp token"
    parameter_name = "token"

    def lookups(self, request, model_admin):
        return [
            ("soon", "expiring within 30 min"),
            ("failed", "last refresh failed"),
            ("flagged", "credential flagged (WeCom refused it)"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "soon":
            return queryset.filter(token__expires_at__lt=timezone.now() + timedelta(minutes=30))
        if self.value() == "failed":
            return queryset.filter(token__last_refresh_ok=False)
        if self.value() == "flagged":
            return queryset.filter(token__flagged=True)
        return queryset


@admin.register(Authorization)
class AuthorizationAdmin(ReadOnlySecretsAdmin):
    list_display = (
        "corp_display",
        "suite",
        "status",
        "agent_id",
        "token_display",
        "credential_flagged",
        "activity",
        "agent_state",
        "event_display",
        "authorized_at",
        "cancelled_at",
    )
    list_filter = (
        "status",
        "suite",
        TokenExpiryFilter,
        "activity",
        "agent_state",
        "is_test_install",
    )
    search_fields = ("corp__corpid", "corp__name")
    list_select_related = ("corp", "suite", "token")
    inlines = [HistoryInline]
    actions = ("refresh_token_now", "resync_auth_info", "suspend", "resume")
    readonly_fields = [
        f.name for f in Authorization._meta.fields if not f.name.endswith("_sealed")
    ] + ["token_display", "event_display"]

    def has_change_permission(self, request, obj=None) -> bool:
        # Viewable, never editable: every change goes through an audited service.
        return request.method in {"GET", "HEAD"} and super().has_change_permission(request, obj)

    @admin.display(description="corp", ordering="corp__name")
    def corp_display(self, authorization: Authorization) -> str:
        return str(authorization.corp)

    @admin.display(description="newest event", ordering="event_timestamp")
    def event_display(self, authorization: Authorization) -> str:
        # The event-time clock later events are judged against (tenants/lifecycle.py).
        if authorization.event_timestamp is None:
            return "-"
        return f"{authorization.event_type} @ {authorization.event_timestamp}"

    @admin.display(description="credential flagged", boolean=True, ordering="token__flagged")
    def credential_flagged(self, authorization: Authorization) -> bool:
        # WeCom refused the secret / permanent code: no call is made until the backoff
        # ends or ops fix it and refresh. Only the flag shows, never the credential.
        token = getattr(authorization, "token", None)
        return bool(token and token.flagged)

    @admin.display(description="corp token")
    def token_display(self, authorization: Authorization) -> str:
        return _token_state(getattr(authorization, "token", None))

    @admin.action(permissions=["refresh_corp_token"], description="Refresh the corp token now")
    def refresh_token_now(self, request, queryset) -> None:
        for authorization in queryset.select_related("suite", "corp"):
            _refresh(self, request, authorization)

    @admin.action(permissions=["resync_authorization"], description="Re-sync auth info from WeCom")
    def resync_auth_info(self, request, queryset) -> None:
        for authorization in queryset.select_related("suite", "corp"):
            try:
                services.authorization_sync(
                    authorization=authorization,
                    with_edition=True,
                    actor=request.user.get_username(),
                )
            except WeComError as exc:
                self.message_user(request, f"{authorization}: {exc}", flash.ERROR)
            else:
                self.message_user(request, f"{authorization}: auth info synced", flash.SUCCESS)

    @admin.action(
        permissions=["suspend_authorization"], description="Suspend (stop refreshing tokens)"
    )
    def suspend(self, request, queryset) -> None:
        count = sum(
            services.authorization_suspend(
                authorization=a, reason="suspended by ops", actor=request.user.get_username()
            )
            for a in queryset.exclude(status=Authorization.Status.CANCELLED)
        )
        self.message_user(request, f"{count} authorization(s) suspended", flash.WARNING)

    @admin.action(permissions=["resume_authorization"], description="Resume")
    def resume(self, request, queryset) -> None:
        count = sum(
            services.authorization_resume(authorization=a, actor=request.user.get_username())
            for a in queryset
        )
        self.message_user(request, f"{count} authorization(s) resumed", flash.SUCCESS)


@admin.register(CredentialToken)
class CredentialTokenAdmin(ReadOnlySecretsAdmin):
    list_display = (
        "owner_key",
        "kind",
        "expires_at",
        "refresh_after",
        "refresh_enabled",
        "last_refresh_ok",
        "consecutive_failures",
        "last_error",
        "flagged",
        "retry_not_before",
    )
    # "flagged": WeCom refused the credential itself (wrong secret, dead code): ops act.
    list_filter = ("flagged", "kind", "refresh_enabled", "last_refresh_ok")
    search_fields = ("owner_key",)
    readonly_fields = [
        f.name for f in CredentialToken._meta.fields if not f.name.endswith("_sealed")
    ]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in {"GET", "HEAD"} and super().has_change_permission(request, obj)


@admin.register(FeedEvent)
class FeedEventAdmin(GuardedModelAdmin):
    list_display = ("id", "type", "suite", "corp", "created_at")
    list_filter = ("type",)
    search_fields = ("corp__corpid", "type")
    readonly_fields = ("type", "suite", "corp", "data", "source_key", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in {"GET", "HEAD"} and super().has_change_permission(request, obj)
