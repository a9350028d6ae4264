"""Who the platform serves, and the credentials that keep each tenant reachable.

Provider → Suite (third-party app or 代开发 template) → Authorization (Corp × Suite),
plus CredentialToken rows for the provider, suite and corp access tokens. Every
secret column holds a sealed value (wecom_provider.fieldcrypt); the plaintext is
only ever reached through the SealedSecret attribute next to it.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from wecom_provider.fieldcrypt import SealedSecret

# WeCom accepts a suite_ticket for 30 minutes and pushes a new one every 10.
SUITE_TICKET_MAX_AGE = timedelta(minutes=30)
SUITE_TICKET_STALE_AFTER = timedelta(minutes=20)


class Provider(models.Model):
    """The service-provider corp itself (usually one row)."""

    corpid = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    provider_secret_sealed = models.TextField(editable=False)
    callback_token_sealed = models.TextField(editable=False)
    encoding_aes_key_sealed = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    provider_secret = SealedSecret("provider_secret_sealed", row=lambda p: p.corpid)
    callback_token = SealedSecret("callback_token_sealed", row=lambda p: p.corpid)
    encoding_aes_key = SealedSecret("encoding_aes_key_sealed", row=lambda p: p.corpid)

    class Meta:
        ordering = ["corpid"]

    def __str__(self) -> str:
        return self.name or self.corpid


class Suite(models.Model):
    """One app of the provider: a third-party suite or a 代开发 (customized) template."""

    class Kind(models.TextChoices):
        THIRD_PARTY = "third_party", "third-party app"
        CUSTOMIZED_TEMPLATE = "customized_template", "customized-app template (代开发)"

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="suites")
    suite_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.THIRD_PARTY)
    secret_sealed = models.TextField(editable=False)
    callback_token_sealed = models.TextField(editable=False)
    encoding_aes_key_sealed = models.TextField(editable=False)
    # The newest suite_ticket by WeCom's TimeStamp; an older push never overwrites it.
    suite_ticket_sealed = models.TextField(blank=True, default="", editable=False)
    suite_ticket_timestamp = models.BigIntegerField(null=True, blank=True)
    suite_ticket_received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    secret = SealedSecret("secret_sealed", row=lambda s: s.suite_id)
    callback_token = SealedSecret("callback_token_sealed", row=lambda s: s.suite_id)
    encoding_aes_key = SealedSecret("encoding_aes_key_sealed", row=lambda s: s.suite_id)
    suite_ticket = SealedSecret("suite_ticket_sealed", row=lambda s: s.suite_id)

    class Meta:
        ordering = ["suite_id"]
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("refresh_suite_token", "Can refresh a suite token now"),
            ("create_test_install_link", "Can create a signed test-install link"),
        ]

    def __str__(self) -> str:
        return self.name or self.suite_id

    @property
    def is_customized(self) -> bool:
        return self.kind == self.Kind.CUSTOMIZED_TEMPLATE

    def ticket_age(self, *, now=None) -> timedelta | None:
        """Return how old the newest ticket is (by WeCom's TimeStamp), or None without one."""
        if self.suite_ticket_timestamp is None:
            return None
        now = now or timezone.now()
        return now - datetime.fromtimestamp(self.suite_ticket_timestamp, tz=UTC)

    def ticket_is_stale(self, *, now=None) -> bool:
        age = self.ticket_age(now=now)
        return age is None or age > SUITE_TICKET_STALE_AFTER


class Corp(models.Model):
    """A tenant company, keyed by the corpid WeCom gives this provider."""

    corpid = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    full_name = models.CharField(max_length=300, blank=True)
    corp_type = models.CharField(max_length=32, blank=True)
    subject_type = models.PositiveSmallIntegerField(null=True, blank=True)
    scale = models.CharField(max_length=64, blank=True)
    industry = models.CharField(max_length=128, blank=True)
    sub_industry = models.CharField(max_length=128, blank=True)
    user_max = models.PositiveIntegerField(null=True, blank=True)
    verified_end_time = models.BigIntegerField(null=True, blank=True)
    square_logo_url = models.URLField(max_length=500, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="auth_corp_info as WeCom sent it")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["corpid"]

    def __str__(self) -> str:
        return f"{self.name} ({self.corpid})" if self.name else self.corpid


class Authorization(models.Model):
    """Corp × Suite: the heart of multi-tenancy."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        CANCELLED = "cancelled"

    class Activity(models.TextChoices):
        NORMAL = "normal"
        LOW_ACTIVE_ALERT = "low_active_alert", "low activity warned (low_active_alert)"
        LOW_ACTIVE = "low_active", "low activity (low_active)"

    class AgentState(models.TextChoices):
        OPEN = "open"
        INACTIVE_ALERT = "inactive_alert", "closing warned (inactive_alert)"
        CLOSED = "closed", "closed for disuse (close_inactive_agent)"

    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="authorizations")
    corp = models.ForeignKey(Corp, on_delete=models.PROTECT, related_name="authorizations")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=200, blank=True)
    permanent_code_sealed = models.TextField(blank=True, default="", editable=False)
    agent_id = models.BigIntegerField(null=True, blank=True)
    auth_mode = models.PositiveSmallIntegerField(null=True, blank=True)  # 0 admin, 1 member
    is_customized_app = models.BooleanField(default=False)
    edition = models.JSONField(default=dict, blank=True)
    auth_info = models.JSONField(default=dict, blank=True, help_text="auth_info as WeCom sent it")
    admin_list = models.JSONField(default=list, blank=True)
    installer_userid = models.CharField(max_length=128, blank=True)
    installer_open_userid = models.CharField(max_length=128, blank=True)
    installer_name = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=128, blank=True, help_text="install link / QR state")
    is_test_install = models.BooleanField(default=False)
    authorized_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    auth_info_synced_at = models.DateTimeField(null=True, blank=True)
    # agent/get_permissions as WeCom answered it (read on install and every change_auth).
    permissions = models.JSONField(default=list, blank=True)
    # The newest change_auth's diff: {at, timestamp, diff: {agents, privileges, …}}.
    last_change = models.JSONField(default=dict, blank=True)
    # Event-time order (tenants/lifecycle.py): WeCom's TimeStamp of the newest lifecycle
    # event applied (create_auth, cancel_auth, reset_permanent_code, or an install
    # redirect by our clock) and its type. An older event changes nothing.
    event_timestamp = models.BigIntegerField(null=True, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    # The same for change_auth (re-reads), change_editon and the activity events, each
    # ordered on its own: they never move the lifecycle clock above.
    change_timestamp = models.BigIntegerField(null=True, blank=True)
    edition_timestamp = models.BigIntegerField(null=True, blank=True)
    # Low activity (低活跃, data-URL events): what customer data the app still gets.
    activity = models.CharField(
        max_length=24, choices=Activity.choices, default=Activity.NORMAL, db_index=True
    )
    activity_effect_at = models.DateTimeField(
        null=True, blank=True, help_text="EffectTime of the low_active_alert"
    )
    activity_timestamp = models.BigIntegerField(null=True, blank=True)
    # Long unused (长期未使用): WeCom warns, then closes the app until an admin reopens it.
    agent_state = models.CharField(
        max_length=24, choices=AgentState.choices, default=AgentState.OPEN, db_index=True
    )
    agent_state_effect_at = models.DateTimeField(
        null=True, blank=True, help_text="EffectTime of the inactive_alert"
    )
    agent_state_timestamp = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Bound to (suite, corp) ids: a code copied to another tenant's row does not open.
    permanent_code = SealedSecret(
        "permanent_code_sealed", row=lambda a: f"{a.suite_id}|{a.corp_id}"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["suite", "corp"], name="authorization_suite_corp")
        ]
        indexes = [models.Index(fields=["status", "auth_info_synced_at"])]
        ordering = ["-authorized_at"]
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("refresh_corp_token", "Can refresh a corp token now"),
            ("resync_authorization", "Can re-sync auth info from WeCom"),
            ("suspend_authorization", "Can suspend an authorization"),
            ("resume_authorization", "Can resume an authorization"),
        ]

    def __str__(self) -> str:
        return f"{self.corp_id}@{self.suite_id}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class AuthorizationHistory(models.Model):
    """Append-only record of every status and credential change of an authorization."""

    authorization = models.ForeignKey(
        Authorization, on_delete=models.CASCADE, related_name="history"
    )
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    actor = models.CharField(max_length=150, default="system")
    detail = models.JSONField(default=dict, blank=True)  # never a secret
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "authorization history"

    def __str__(self) -> str:
        return f"{self.action} {self.from_status}→{self.to_status}"


class AuthCodeClaim(models.Model):
    """One row per auth_code: the unique digest makes the exchange happen exactly once.

    The install redirect and the create_auth callback (or a redelivered task) may race
    for the same code. The first to insert the claim calls WeCom; the others read the result.
    """

    class Status(models.TextChoices):
        CLAIMED = "claimed"
        EXCHANGED = "exchanged"
        FAILED = "failed"

    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="auth_code_claims")
    code_digest = models.CharField(max_length=64, unique=True)  # sha256(suite_id|code)
    source = models.CharField(max_length=16)  # redirect, callback, reset
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CLAIMED)
    authorization = models.ForeignKey(
        Authorization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source} code {self.code_digest[:12]}… {self.status}"


class CredentialToken(models.Model):
    """A provider, suite or corp access token: sealed value plus its expiry.

    The database row is the durable copy, Redis the fast one. ``refresh_after`` is when
    beat should renew it (about 75 % into its life, with jitter); the refresh scan is an
    index range over due rows only.
    """

    class Kind(models.TextChoices):
        PROVIDER = "provider"
        SUITE = "suite"
        CORP = "corp"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # "provider:<corpid>", "suite:<suite_id>", "corp:<suite_id>:<corpid>": ids only, used
    # for lock and cache keys as well.
    owner_key = models.CharField(max_length=200, unique=True)
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.CASCADE)
    suite = models.ForeignKey(Suite, null=True, blank=True, on_delete=models.CASCADE)
    authorization = models.OneToOneField(
        Authorization, null=True, blank=True, on_delete=models.CASCADE, related_name="token"
    )
    value_sealed = models.TextField(blank=True, default="", editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    obtained_at = models.DateTimeField(null=True, blank=True)
    refresh_after = models.DateTimeField(null=True, blank=True)
    refresh_enabled = models.BooleanField(default=True)
    refresh_count = models.PositiveIntegerField(default=0)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refresh_ok = models.BooleanField(null=True)
    last_error = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Fencing: every write (a stored token, an invalidation) bumps the generation, and a
    # write computed under an older generation is refused (compare-and-set on it).
    generation = models.PositiveBigIntegerField(default=0)
    # WeCom handed back the value we already held (same token while valid): serve it to
    # its real expiry and ask again only after that, never ahead of it.
    reissues_same = models.BooleanField(default=False)
    # Negative cache: no WeCom call for this credential before this time (a failure's
    # backoff); products get 503 with Retry-After meanwhile.
    retry_not_before = models.DateTimeField(null=True, blank=True)
    # The last upstream call made because a product reported this token rejected: at
    # most one such call per TOKEN_FORCED_REFRESH_COOLDOWN.
    forced_refresh_at = models.DateTimeField(null=True, blank=True)
    # The last failure was a credential one (wrong secret, dead permanent code): ops must act.
    flagged = models.BooleanField(default=False)

    value = SealedSecret("value_sealed", row=lambda t: t.owner_key)

    class Meta:
        indexes = [
            models.Index(
                fields=["refresh_after"],
                name="token_refresh_due",
                condition=Q(refresh_enabled=True),
            )
        ]
        ordering = ["owner_key"]

    def __str__(self) -> str:
        return self.owner_key


class FeedEvent(models.Model):
    """An event products read from ``/api/v1/events/`` (ordered by id, the cursor).

    Written by services when something a product cares about happened: a tenant was
    authorized, changed or cancelled; a license was paid, refunded, is expiring or an
    unlicensed member showed up; contacts or external contacts changed. ``data`` holds
    ids and facts only, never a secret or a code.
    """

    type = models.CharField(max_length=64, db_index=True)
    suite = models.ForeignKey(Suite, null=True, blank=True, on_delete=models.CASCADE)
    corp = models.ForeignKey(Corp, null=True, blank=True, on_delete=models.CASCADE)
    data = models.JSONField(default=dict, blank=True)
    # Makes publishing idempotent: the same source event yields one feed entry.
    source_key = models.CharField(max_length=128, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"
