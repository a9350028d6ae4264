"""API clients (internal products), their keys, the audit log and cached JS-SDK tickets.

A key is shown once, when it is created; the database keeps only its SHA-256 digest
and a short public prefix to find the row (``wcp_<prefix>_<secret>``). An
``ApiClient`` may hold two usable keys at once, so a product can rotate without
downtime. Scope is the client's suites (every corp of those suites) plus its corps
(those corps only, in any suite); a client with neither sees nothing.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Suite
from wecom_provider.fieldcrypt import SealedSecret

# At most this many usable (unrevoked, unexpired) keys per client: the old and the new
# one during a rotation.
MAX_ACTIVE_KEYS = 2

# Extra powers a client may hold beyond reading its tenants (none by default).
SCOPE_WEBHOOKS_MANAGE = "webhooks:manage"
SCOPE_CHOICES = [(SCOPE_WEBHOOKS_MANAGE, "manage its webhook subscriptions")]


class ApiClient(models.Model):
    """An internal product calling ``/api/v1/``."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    suites = models.ManyToManyField(
        Suite, blank=True, related_name="+", help_text="every corp of these suites"
    )
    corps = models.ManyToManyField(
        Corp, blank=True, related_name="+", help_text="these corps only (in any suite)"
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="requests per minute; empty: the API_RATE_LIMIT_PER_MINUTE setting",
    )
    revoked_at = models.DateTimeField(
        null=True, blank=True, help_text="set: every key of the client stops working at once"
    )
    # e.g. ["webhooks:manage"]; empty: none (fail-closed for every client created before).
    scopes = models.JSONField(
        default=list, blank=True, help_text='extra scopes, e.g. ["webhooks:manage"]'
    )
    # The WeCom API gateway (api/gateway/): the /cgi-bin/ paths the client may call with
    # its tenants' corp tokens. Empty: none (fail-closed, 403 before any WeCom call).
    wecom_paths = models.JSONField(
        default=list,
        blank=True,
        verbose_name="WeCom gateway paths",
        help_text='WeCom API paths the client may call through the gateway, "*" matching '
        'any characters: e.g. ["user/*", "department/list", "message/send"]. Empty: none.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("issue_apikey", "Can issue a new API key"),
            ("revoke_apiclient", "Can revoke an API client"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from api.gateway.policy import patterns_problems

        known = {value for value, _ in SCOPE_CHOICES}
        if not isinstance(self.scopes, list) or not set(self.scopes) <= known:
            raise ValidationError({"scopes": f"a list of: {', '.join(sorted(known))}"})
        if self.wecom_paths is None:  # an emptied admin field
            self.wecom_paths = []
        if problems := patterns_problems(self.wecom_paths):
            raise ValidationError({"wecom_paths": problems})

    def has_scope(self, scope: str) -> bool:
        return isinstance(self.scopes, list) and scope in self.scopes


class ApiKey(models.Model):
    """One key of a client: a public prefix and the SHA-256 digest of the whole key."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    # Public lookup id (12 hex characters), also shown in admin and the audit log.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=150, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Written at most about once a minute per key (not on every request).
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["client_id", "-created_at"]
        verbose_name = "API key"
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("revoke_apikey", "Can revoke an API key"),
        ]

    def __str__(self) -> str:
        return f"wcp_{self.prefix}…"

    @property
    def display(self) -> str:
        return f"wcp_{self.prefix}…"

    def is_usable(self, *, now=None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @staticmethod
    def usable_q(*, now=None) -> Q:
        now = now or timezone.now()
        return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class AuditLog(models.Model):
    """Append-only: one row per token or secret-adjacent read and per write.

    Ids only, never a token, ticket, code or key. Rows are never updated or deleted
    (the admin offers neither; on PostgreSQL and SQLite a trigger refuses both).
    Suite and corp are the ids the request named, kept as text: the log outlives rows.
    """

    class Outcome(models.TextChoices):
        OK = "ok"
        INVALID = "invalid"
        DENIED = "denied"
        NOT_FOUND = "not_found"
        CONFLICT = "conflict"
        THROTTLED = "throttled"
        WECOM_ERROR = "wecom_error"
        UNAVAILABLE = "unavailable"
        ERROR = "error"

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, related_name="+", editable=False
    )
    key_prefix = models.CharField(max_length=16, editable=False)
    suite_id = models.CharField(max_length=64, blank=True, editable=False)
    corpid = models.CharField(max_length=64, blank=True, editable=False)
    action = models.CharField(max_length=64, db_index=True, editable=False)
    method = models.CharField(max_length=8, editable=False)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, editable=False)
    status_code = models.PositiveSmallIntegerField(editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    detail = models.JSONField(default=dict, blank=True, editable=False)  # ids only

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["client", "created_at"], name="audit_client_time")]
        verbose_name = "API audit log entry"
        verbose_name_plural = "API audit log"

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} ({self.client_id})"


class JsapiTicket(models.Model):
    """A corp's JS-SDK ticket (``corp``: wx.config, ``agent``: wx.agentConfig), sealed.

    WeCom allows 400 fetches an hour per corp and 100 per app, so tickets are cached
    (Redis holds the sealed value, this row the durable copy) and fetched single-flight.
    """

    class Kind(models.TextChoices):
        CORP = "corp"
        AGENT = "agent"

    authorization = models.ForeignKey(Authorization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # "jsapi:<kind>:<suite_id>:<corpid>": ids only; also the lock and cache key.
    owner_key = models.CharField(max_length=200, unique=True, editable=False)
    value_sealed = models.TextField(blank=True, default="", editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    obtained_at = models.DateTimeField(null=True, blank=True)
    fetch_count = models.PositiveIntegerField(default=0)
    # Fencing, as on CredentialToken: invalidation bumps it; a fetch started under an
    # older generation does not store its ticket.
    generation = models.PositiveBigIntegerField(default=0)
    # The rest as on CredentialToken (one machinery, tenants.fetching): WeCom handed back
    # the ticket we held; the remembered failure and its backoff (WeCom allows 400
    # ticket fetches an hour per corp, 100 per app, so a failing fetch must not be
    # repeated by every signature request); the last forced refetch (cool-down).
    reissues_same = models.BooleanField(default=False)
    retry_not_before = models.DateTimeField(null=True, blank=True)
    forced_refresh_at = models.DateTimeField(null=True, blank=True)
    flagged = models.BooleanField(default=False)
    last_refresh_at = models.DateTimeField(null=True, blank=True)
    last_refresh_ok = models.BooleanField(null=True)
    last_error = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)

    value = SealedSecret("value_sealed", row=lambda t: t.owner_key)

    class Meta:
        ordering = ["owner_key"]
        verbose_name = "JS-SDK ticket"

    def __str__(self) -> str:
        return self.owner_key
