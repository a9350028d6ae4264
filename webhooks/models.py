"""Webhook subscriptions of API clients, their deliveries and each delivery attempt.

A ``Subscription`` says where a product wants feed events pushed (``url``) and which
(``event_types``, shell-style wildcards). Its signing secret is in the Standard Webhooks
format (``whsec_<base64>``), sealed at rest like every other secret and shown once.

A ``Delivery`` is one feed event for one subscription: at-least-once, retried on the
schedule in ``webhooks.schedule`` until a 2xx, a 410, or the end of the schedule. Its
body is sealed: an ``add_external_contact`` body carries a WelcomeCode. Each try is an
``Attempt`` row (the delivery log), with truncated, redacted request and response bodies.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

from api.models import ApiClient
from tenants.models import FeedEvent
from wecom_provider.fieldcrypt import SealedSecret


def new_uid(prefix: str) -> str:
    """Return a public, unguessable id such as ``sub_3f9a…`` (never a secret)."""
    return f"{prefix}_{secrets.token_hex(10)}"


class Subscription(models.Model):
    """Where (and which) feed events of one API client are pushed."""

    class DisabledReason(models.TextChoices):
        NONE = "", "-"
        MANUAL = "manual", "disabled by a person or the client"
        GONE = "gone", "the receiver answered 410 Gone"
        FAILING = "failing", "every delivery failed for too long"

    uid = models.CharField(max_length=32, unique=True, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    # Patterns such as "external_contact.*" or "tenant.cancelled"; ["*"] is everything.
    event_types = models.JSONField(default=list)
    description = models.CharField(max_length=200, blank=True)
    secret_sealed = models.TextField(editable=False, default="")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(
        max_length=16, choices=DisabledReason.choices, blank=True, default=""
    )
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by the first failed attempt after a success, cleared by the next success: the
    # auto-disable clock (WEBHOOK_DISABLE_AFTER_DAYS).
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    secret = SealedSecret("secret_sealed", row=lambda s: s.uid)

    class Meta:
        ordering = ["client_id", "id"]
        verbose_name = "webhook subscription"
        permissions = [
            ("rotate_webhook_secret", "Can rotate a webhook signing secret"),
            ("enable_subscription", "Can enable or disable a webhook subscription"),
        ]

    def __str__(self) -> str:
        return f"{self.uid} ({self.client_id})"


class Delivery(models.Model):
    """One feed event for one subscription (a replay is another row, same webhook id)."""

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its next attempt (or one is under way)
        DELIVERED = "delivered"  # a 2xx answered
        FAILED = "failed"  # the retry schedule ran out
        CANCELLED = "cancelled"  # the subscription was disabled (410, failing, by hand)

    uid = models.CharField(max_length=32, unique=True, editable=False)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    # SET_NULL: feed retention may prune the event; the log of its delivery stays.
    feed_event = models.ForeignKey(
        FeedEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The webhook-id header: the same for every attempt and every replay of one event,
    # so a receiver dedupes on it.
    msg_id = models.CharField(max_length=64, db_index=True)
    event_type = models.CharField(max_length=64)
    cursor = models.BigIntegerField(help_text="the feed event id (?after= on /api/v1/events/)")
    event_at = models.DateTimeField(help_text="when the event was published on the feed")
    body_sealed = models.TextField(editable=False, default="")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    # Due time of the next attempt; while an attempt runs it holds the lease's end, so a
    # worker that died mid-attempt hands the row back to the sweep (never two at once).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    body = SealedSecret("body_sealed", row=lambda d: d.uid, remember=False)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # One first delivery per (subscription, event): publishing twice, a redelivered
            # task or a racing sweep can never push an event twice as new deliveries.
            models.UniqueConstraint(
                fields=["subscription", "feed_event"],
                condition=Q(replay_of__isnull=True),
                name="webhook_delivery_once",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            )
        ]
        permissions = [("replay_delivery", "Can replay webhook deliveries")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription_id} ({self.status})"


class Attempt(models.Model):
    """One HTTP attempt of a delivery: the delivery log a product engineer reads."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=24)  # delivered, gone, http_error, refused, …
    error = models.CharField(max_length=200, blank=True)
    # Truncated; the request body with short-lived codes redacted (webhooks.payloads).
    request_excerpt = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number} {self.outcome}"
