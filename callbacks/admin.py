"""The inbox as an ops console: find, filter, replay, quarantine. Codes stay masked."""

from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import admin
from django.contrib import messages as flash
from django.utils import timezone
from django.utils.html import format_html

from callbacks import selectors
from callbacks import services
from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from wecom_provider.adminperms import GuardedModelAdmin


class AgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}

    def lookups(self, request, model_admin):
        return [("1h", "last hour"), ("24h", "last 24 hours"), ("7d", "last 7 days")]

    def queryset(self, request, queryset):
        window = self.WINDOWS.get(self.value() or "")
        if window is None:
            return queryset
        return queryset.filter(received_at__gte=timezone.now() - window)


@admin.register(CallbackEvent)
class CallbackEventAdmin(GuardedModelAdmin):
    list_display = (
        "id",
        "received_at",
        "endpoint",
        "info_type",
        "change_type",
        "suite_id",
        "corp_id",
        "status",
        "attempts",
        "duplicates",
        "ack_ms",
        "short_error",
    )
    list_filter = ("status", AgeFilter, "endpoint", "info_type", "suite_id")
    # Exact matches only: each one is an index lookup on a table of millions of rows.
    search_fields = ("=corp_id", "=suite_id", "=info_type", "=dedupe_key")
    date_hierarchy = "received_at"
    actions = ("replay", "quarantine")
    readonly_fields = [
        field.name for field in CallbackEvent._meta.fields if field.name != "payload_sealed"
    ] + ["payload_masked"]
    exclude = ("payload_sealed",)
    list_per_page = 100

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in {"GET", "HEAD"} and super().has_change_permission(request, obj)

    @admin.display(description="last error")
    def short_error(self, obj: CallbackEvent) -> str:
        return obj.last_error[:80]

    @admin.display(description="payload (codes masked)")
    def payload_masked(self, obj: CallbackEvent) -> str:
        masked = json.dumps(selectors.masked_payload(obj), ensure_ascii=False, indent=2)
        return format_html("<pre>{}</pre>", masked)

    @admin.action(permissions=["replay_callback"], description="Replay selected callbacks")
    def replay(self, request, queryset) -> None:
        count = sum(services.callback_replay(event=event) for event in queryset)
        self.message_user(request, f"{count} callback(s) queued for replay", flash.SUCCESS)

    @admin.action(permissions=["quarantine_callback"], description="Quarantine selected callbacks")
    def quarantine(self, request, queryset) -> None:
        count = sum(services.callback_quarantine(event=event) for event in queryset)
        self.message_user(request, f"{count} callback(s) quarantined", flash.WARNING)

    def changelist_view(self, request, extra_context=None):
        counts = selectors.inbox_counts()
        extra_context = {
            **(extra_context or {}),
            "title": (
                f"Callbacks: {counts['pending']} pending · {counts['failed']} failed, "
                f"{counts['superseded']} superseded and {counts['rejected']} rejected "
                "in the last hour"
            ),
        }
        return super().changelist_view(request, extra_context)


@admin.register(CallbackRejection)
class CallbackRejectionAdmin(GuardedModelAdmin):
    list_display = ("minute", "endpoint", "reason", "count")
    list_filter = ("endpoint", "reason")
    date_hierarchy = "minute"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.method in {"GET", "HEAD"} and super().has_change_permission(request, obj)
