"""Shapes of the webhook subscription API (rules live in webhooks/services.py)."""

from __future__ import annotations

from rest_framework import serializers


class SubscriptionInput(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="https:// (a public address)")
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=64),
        help_text='patterns with * and ? wildcards, e.g. ["external_contact.*", "tenant.*"]',
    )
    description = serializers.CharField(max_length=200, required=False, default="")


class SubscriptionUpdateInput(serializers.Serializer):
    url = serializers.CharField(max_length=500, required=False)
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    description = serializers.CharField(max_length=200, required=False)
    enabled = serializers.BooleanField(required=False)


class SubscriptionOutput(serializers.Serializer):
    id = serializers.CharField(source="uid")
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    disabled_at = serializers.DateTimeField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class SubscriptionCreatedOutput(SubscriptionOutput):
    secret = serializers.CharField(
        help_text="whsec_…: verify signatures with it. Shown in this answer only."
    )


class SecretOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="the new whsec_… secret, shown in this answer only")


class AttemptOutput(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField()
    error = serializers.CharField()
    response_excerpt = serializers.CharField()


class DeliveryOutput(serializers.Serializer):
    id = serializers.CharField(source="uid")
    webhook_id = serializers.CharField(source="msg_id")
    type = serializers.CharField(source="event_type")
    cursor = serializers.CharField()
    event_at = serializers.DateTimeField()
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    replay = serializers.SerializerMethodField()
    log = AttemptOutput(many=True)

    def get_replay(self, obj) -> bool:
        return obj.replay_of_id is not None
