"""The callback inbox: one row per distinct WeCom callback, stored before we answer.

A row is inserted by the request (unique ``dedupe_key``: WeCom's retries and replays
land on the same row) and processed by a task afterwards. The decrypted payload is
sealed at rest: it can carry single-use auth codes and suite tickets.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from wecom_provider.fieldcrypt import SealedSecret


class CallbackEvent(models.Model):
    class Endpoint(models.TextChoices):
        COMMAND = "command", "suite command URL (指令回调)"
        DATA = "data", "suite data URL (数据回调)"
        SYSTEM = "system", "provider system events (系统事件)"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        DONE = "done"
        IGNORED = "ignored"
        FAILED = "failed"
        QUARANTINED = "quarantined"
        # Authentic but not applied, with the reason in ``result``: an event older than
        # what its authorization already reflects (tenants/lifecycle.py), or one naming
        # a suite or provider other than the URL that verified it (callbacks/binding.py).
        SUPERSEDED = "superseded"
        REJECTED = "rejected"

    endpoint = models.CharField(max_length=16, choices=Endpoint.choices)
    route_id = models.CharField(max_length=64, help_text="suite_id or provider corpid in the URL")
    receive_id = models.CharField(max_length=128)
    info_type = models.CharField(max_length=64)
    change_type = models.CharField(max_length=64, blank=True)
    suite_id = models.CharField(max_length=64, blank=True)
    corp_id = models.CharField(max_length=128, blank=True)
    event_timestamp = models.BigIntegerField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=64)
    payload_sealed = models.TextField(editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    priority = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    result = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    ack_ms = models.FloatField(null=True, blank=True, help_text="time to store and answer")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    duplicates = models.PositiveIntegerField(default=0, help_text="deliveries after the first")

    payload = SealedSecret("payload_sealed", row=lambda e: e.dedupe_key, remember=False)

    class Meta:
        # Every callback updates each of these indexes before it is acknowledged, so
        # there are only the ones the sweeper, the admin's filters and exact searches
        # use. Declared here rather than with db_index/unique, which on PostgreSQL also
        # add a LIKE-pattern copy of each text index that no query of ours uses.
        constraints = [
            # WeCom's retries and replays land on the row already there.
            models.UniqueConstraint(fields=["dedupe_key"], name="callback_dedupe"),
        ]
        indexes = [
            # The sweeper's scan: rows that are waiting and due.
            models.Index(
                fields=["next_attempt_at"],
                name="callback_due",
                condition=Q(status__in=["pending", "processing"]),
            ),
            # The admin's "needs attention" filters; new rows are not in it.
            models.Index(
                fields=["status"],
                name="callback_attention",
                condition=Q(status__in=["failed", "quarantined"]),
            ),
            models.Index(fields=["info_type"], name="callback_info_type"),
            models.Index(fields=["suite_id"], name="callback_suite"),
            models.Index(fields=["corp_id"], name="callback_corp"),
        ]
        ordering = ["-received_at", "-id"]
        verbose_name = "callback"
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("replay_callback", "Can replay a callback"),
            ("quarantine_callback", "Can quarantine a callback"),
        ]

    def __str__(self) -> str:
        return f"{self.info_type}#{self.pk} ({self.status})"


class CallbackRejection(models.Model):
    """Rejected callbacks counted per minute, endpoint and reason (no payload is kept)."""

    minute = models.DateTimeField()
    endpoint = models.CharField(max_length=16)
    reason = models.CharField(max_length=32)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "endpoint", "reason"], name="callback_rejection_bucket"
            )
        ]
        ordering = ["-minute"]

    def __str__(self) -> str:
        return f"{self.minute:%H:%M} {self.endpoint} {self.reason}: {self.count}"
