"""Webhook subscriptions and the delivery log in the ops console.

A subscription's secret is shown once, on the page rendered by the request that made it
(new subscription, or "rotate secret"), with ``Cache-Control: no-store``; never on the
change page, in a message or a log line. The delivery log is read-only: attempts with
status, latency and truncated bodies (short-lived codes redacted).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib import messages as flash
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

from webhooks import services
from webhooks.models import Attempt
from webhooks.models import Delivery
from webhooks.models import Subscription
from webhooks.models import new_uid
from wecom_provider.adminperms import GuardedModelAdmin
from wecom_provider.adminperms import ReadOnlyInline
from wecom_provider.adminperms import admin_view_requiring


def _secret_page(request, model_admin, issued: list[tuple[Subscription, str]]):
    response = TemplateResponse(
        request,
        "admin/webhooks/secret_issued.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": "Webhook signing secret(s): shown once",
            "opts": model_admin.model._meta,
            "issued": issued,
        },
    )
    add_never_cache_headers(response)  # the page holds a secret
    return response


class SubscriptionForm(forms.ModelForm):
    event_types = forms.CharField(
        help_text="patterns separated by commas or spaces, e.g. external_contact.* tenant.*"
    )

    class Meta:
        model = Subscription
        fields = ("client", "url", "event_types", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["event_types"] = " ".join(self.instance.event_types or [])

    def clean_url(self):
        try:
            return services.url_clean(self.cleaned_data["url"])
        except services.SubscriptionError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_event_types(self):
        try:
            return services.event_types_clean(self.cleaned_data["event_types"])
        except services.SubscriptionError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Subscription)
class SubscriptionAdmin(GuardedModelAdmin):
    form = SubscriptionForm
    list_display = ("uid", "client", "url", "types", "enabled", "disabled_reason", "failing_since")
    list_filter = ("enabled", "disabled_reason", "client")
    search_fields = ("uid", "url", "client__name")
    readonly_fields = ("uid", "enabled", "disabled_reason", "disabled_at", "failing_since")
    actions = ["disable", "enable", "rotate_secret"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("client", "url", "event_types", "description")
        return ("uid", "client", "url", "event_types", "description", *self.readonly_fields[1:])

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "client") if obj is not None else ()

    @admin.display(description="event types")
    def types(self, obj: Subscription) -> str:
        return " ".join(obj.event_types or [])

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.uid = new_uid("sub")
            secret = services.new_secret()
            obj.secret = secret
            # Kept on the request only, for response_add to render once.
            request._issued_webhook_secrets = [(obj, secret)]
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        issued = getattr(request, "_issued_webhook_secrets", None)
        if issued:
            return _secret_page(request, self, issued)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(permissions=["enable_subscription"], description="Disable (stop delivering)")
    def disable(self, request, queryset) -> None:
        for subscription in queryset:
            services.subscription_disable(
                subscription=subscription, reason=Subscription.DisabledReason.MANUAL
            )
        flash.success(request, f"Disabled {len(queryset)} subscription(s).")

    @admin.action(permissions=["enable_subscription"], description="Enable again")
    def enable(self, request, queryset) -> None:
        for subscription in queryset:
            services.subscription_enable(subscription=subscription)
        flash.success(request, f"Enabled {len(queryset)} subscription(s).")

    @admin.action(
        permissions=["rotate_webhook_secret"], description="Rotate the signing secret (shown once)"
    )
    def rotate_secret(self, request, queryset):
        issued = [(s, services.subscription_secret_rotate(subscription=s)) for s in queryset]
        return _secret_page(request, self, issued) if issued else None

    def get_urls(self):
        replay = admin_view_requiring("webhooks.replay_delivery")(self.replay_range_view)
        return [
            path(
                "<path:object_id>/replay/",
                self.admin_site.admin_view(replay),
                name="webhooks_subscription_replay",
            ),
            *super().get_urls(),
        ]

    def replay_range_view(self, request, object_id):
        subscription = self.get_object(request, object_id)
        if subscription is None:
            return redirect(reverse("admin:webhooks_subscription_changelist"))
        form = ReplayRangeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                count = services.deliveries_replay_range(
                    subscription=subscription,
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                )
            except services.SubscriptionError as exc:
                form.add_error(None, str(exc))
            else:
                flash.success(request, f"Replaying {count} event(s) to {subscription.uid}.")
                return redirect(
                    reverse("admin:webhooks_delivery_changelist")
                    + f"?subscription__id__exact={subscription.pk}"
                )
        return TemplateResponse(
            request,
            "admin/webhooks/replay_range.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Replay events to {subscription.uid}",
                "opts": self.model._meta,
                "subscription": subscription,
                "form": form,
            },
        )


class ReplayRangeForm(forms.Form):
    start = forms.DateTimeField(help_text="UTC, e.g. 2026-12-04 10:00")
    end = forms.DateTimeField(help_text="UTC, inclusive")


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "outcome",
        "error",
        "request_excerpt",
        "response_excerpt",
    )


@admin.register(Delivery)
class DeliveryAdmin(GuardedModelAdmin):
    list_display = (
        "uid",
        "event_type",
        "cursor",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "first_attempt_latency",
        "next_attempt_at",
        "replay_of",
    )
    list_filter = ("status", "event_type", "subscription")
    search_fields = ("uid", "msg_id", "subscription__uid", "event_type")
    date_hierarchy = "created_at"
    list_select_related = ("subscription",)
    fields = (
        "uid",
        "subscription",
        "msg_id",
        "event_type",
        "cursor",
        "event_at",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "first_attempt_at",
        "first_attempt_latency",
        "finished_at",
        "replay_of",
    )
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="first attempt after publish")
    def first_attempt_latency(self, obj: Delivery) -> str:
        if obj.first_attempt_at is None:
            return "-"
        return f"{(obj.first_attempt_at - obj.event_at).total_seconds():.3f} s"

    @admin.action(permissions=["replay_delivery"], description="Replay (send the event again)")
    def replay(self, request, queryset) -> None:
        done = 0
        for delivery in queryset.select_related("subscription"):
            try:
                services.delivery_replay(delivery=delivery)
            except services.SubscriptionError as exc:
                flash.error(request, str(exc))
                continue
            done += 1
        flash.success(request, f"Replaying {done} delivery(ies).")
