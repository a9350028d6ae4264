"""Paid-app orders and editions (protocol doc §13), in the licensing app's tables.

Loaded by ``licensing/models.py`` (Django finds models through an app's models module).
Times WeCom sends as Unix seconds are stored as aware datetimes; amounts are integers in
分. ``raw`` keeps what WeCom last said beside the modelled fields.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Suite


class AppOrderStatus(models.IntegerChoices):
    UNPAID = 0, "待支付 (unpaid)"
    PAID = 1, "已支付 (paid)"
    CANCELLED = 2, "已取消 (cancelled)"
    EXPIRED = 3, "支付过期 (expired unpaid)"
    REFUNDING = 4, "申请退款中 (refund requested)"
    REFUNDED = 5, "退款成功 (refunded)"
    REFUND_REJECTED = 6, "退款被拒绝 (refund rejected)"


class AppOrderType(models.IntegerChoices):
    NEW = 0, "新购 (new)"
    EXPAND = 1, "扩容 (more users)"
    RENEW = 2, "续期 (renewal)"
    CHANGE_EDITION = 3, "变更版本 (edition change)"


class AppOrderFrom(models.IntegerChoices):
    CORP = 0, "the corp"
    PROVIDER = 1, "the provider (代下单)"
    DEALER = 2, "a dealer (代理商代下单)"


class AppStatus(models.IntegerChoices):
    NONE = 0, "没有付费 (not paid)"
    TRIAL = 1, "限时试用 (trial)"
    TRIAL_EXPIRED = 2, "试用过期 (trial expired)"
    PAID = 3, "付费有效期内 (paid)"
    PAID_EXPIRED = 4, "付费过期 (paid term over)"
    UNLIMITED_TRIAL = 5, "不限时试用 (unlimited trial)"
    OVER_LIMIT = 6, "超人数未超7天 (over the user limit < 7 days)"
    OVER_LIMIT_LONG = 7, "超人数超过7天 (over the user limit ≥ 7 days)"


# WeCom's documented moves (path/91909 statuses; §13.3). 6 is final: no page says a
# refused refund can be asked for again, and a move back would break the forward rule.
APP_ORDER_TRANSITIONS: dict[int, frozenset[int]] = {
    0: frozenset({1, 2, 3}),
    1: frozenset({4}),
    4: frozenset({5, 6}),
    2: frozenset(),
    3: frozenset(),
    5: frozenset(),
    6: frozenset(),
}


def _reachable(edges: dict[int, frozenset[int]]) -> dict[int, frozenset[int]]:
    reach: dict[int, frozenset[int]] = {}
    for start in edges:
        seen: set[int] = set()
        todo = list(edges[start])
        while todo:
            status = todo.pop()
            if status not in seen:
                seen.add(status)
                todo.extend(edges[status])
        reach[start] = frozenset(seen)
    return reach


# Where a status may go, skipping ones we never saw (0 then 5 after lost callbacks).
APP_ORDER_REACHABLE = _reachable(APP_ORDER_TRANSITIONS)
# For the conditional UPDATE: the statuses a row may be in to move to ``status``.
APP_ORDER_PREDECESSORS: dict[int, frozenset[int]] = {
    status: frozenset(s for s, reach in APP_ORDER_REACHABLE.items() if status in reach)
    for status in APP_ORDER_TRANSITIONS
}
APP_ORDER_FINAL = frozenset(s for s, nxt in APP_ORDER_TRANSITIONS.items() if not nxt)
# The edition follows these: a paid order set it, a refunded one may have put it back.
EDITION_MOVING_STATUSES = frozenset({AppOrderStatus.PAID, AppOrderStatus.REFUNDED})
TRIAL_STATUSES = frozenset({AppStatus.TRIAL, AppStatus.TRIAL_EXPIRED})
OVER_LIMIT_STATUSES = frozenset({AppStatus.OVER_LIMIT, AppStatus.OVER_LIMIT_LONG})


class AppOrder(models.Model):
    """One paid-app order with every field get_order gives (path/91909)."""

    order_id = models.CharField(max_length=64, unique=True, help_text="WeCom orderid")
    suite = models.ForeignKey(Suite, on_delete=models.PROTECT, related_name="app_orders")
    corp = models.ForeignKey(Corp, on_delete=models.PROTECT, related_name="app_orders")
    status = models.PositiveSmallIntegerField(choices=AppOrderStatus.choices, db_index=True)
    order_type = models.PositiveSmallIntegerField(choices=AppOrderType.choices, null=True)
    order_from = models.PositiveSmallIntegerField(choices=AppOrderFrom.choices, null=True)
    edition_id = models.CharField(max_length=64, blank=True)
    edition_name = models.CharField(max_length=128, blank=True)
    price = models.BigIntegerField(null=True, blank=True, help_text="应付价格, 分")
    user_count = models.PositiveIntegerField(null=True, blank=True)
    order_period = models.PositiveIntegerField(null=True, blank=True, help_text="days")
    order_time = models.DateTimeField(null=True, blank=True)
    paid_time = models.DateTimeField(null=True, blank=True)
    begin_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    operator_id = models.CharField(max_length=128, blank=True)
    operator_corpid = models.CharField(max_length=64, blank=True)
    appid = models.IntegerField(null=True, blank=True, help_text="legacy multi-app suites only")
    service_share_amount = models.BigIntegerField(null=True, blank=True, help_text="分")
    platform_share_amount = models.BigIntegerField(null=True, blank=True, help_text="分")
    dealer_share_amount = models.BigIntegerField(null=True, blank=True, help_text="分")
    dealer_corpid = models.CharField(max_length=64, blank=True)
    dealer_corp_name = models.CharField(max_length=200, blank=True)
    test_mode = models.BooleanField(default=False, help_text="a test install's order")
    # change_order (a price change makes a new order id): the link, only from the callback.
    replaces = models.CharField(max_length=64, blank=True)
    replaced_by = models.CharField(max_length=64, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="the order as WeCom sent it")
    # Poller: due when next_sync_at <= now; None once the order is final.
    next_sync_at = models.DateTimeField(null=True, blank=True)
    sync_attempts = models.PositiveIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.CharField(max_length=300, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_source = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-order_time", "-id"]
        indexes = [
            models.Index(
                fields=["next_sync_at"],
                name="app_order_sync_due",
                condition=Q(next_sync_at__isnull=False),
            ),
            models.Index(fields=["suite", "corp", "status"], name="app_order_tenant_status"),
            models.Index(fields=["order_time"], name="app_order_time"),
        ]
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [("sync_apporder", "Can sync an app order from WeCom")]

    def __str__(self) -> str:
        return self.order_id

    @property
    def is_final(self) -> bool:
        return self.status in APP_ORDER_FINAL


class AppOrderStatusChange(models.Model):
    """One move of an order's status (append-only): who saw it first, and when."""

    order = models.ForeignKey(AppOrder, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.PositiveSmallIntegerField(
        choices=AppOrderStatus.choices, null=True, blank=True
    )
    to_status = models.PositiveSmallIntegerField(choices=AppOrderStatus.choices)
    source = models.CharField(max_length=32)  # callback, poll, reconcile, admin, api
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["order_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status} → {self.to_status}"


class TenantEdition(models.Model):
    """A tenant's paid edition as WeCom last said (edition_info, v1 get_auth_info)."""

    authorization = models.OneToOneField(
        Authorization, on_delete=models.CASCADE, related_name="paid_edition"
    )
    edition_id = models.CharField(max_length=64, blank=True)
    edition_name = models.CharField(max_length=128, blank=True)
    app_status = models.PositiveSmallIntegerField(choices=AppStatus.choices, null=True, blank=True)
    user_limit = models.PositiveIntegerField(null=True, blank=True)
    expired_time = models.DateTimeField(null=True, blank=True, help_text="trial or term end")
    is_virtual_version = models.BooleanField(default=False)
    is_shared_from_other_corp = models.BooleanField(default=False)
    raw = models.JSONField(default=dict, blank=True, help_text="edition_info entry; {} = none")
    # The fence: when the read this row reflects began. A slower read that began
    # earlier never overwrites it (editions.edition_observe).
    read_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=32, blank=True)
    # Poller: read again at the end of the trial/term, or daily at the latest.
    next_check_at = models.DateTimeField(null=True, blank=True)
    check_attempts = models.PositiveIntegerField(default=0)
    last_check_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["expired_time", "id"]
        indexes = [
            models.Index(
                fields=["next_check_at"],
                name="tenant_edition_check_due",
                condition=Q(next_check_at__isnull=False),
            ),
            models.Index(fields=["app_status", "expired_time"], name="tenant_edition_status"),
        ]
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("refresh_tenantedition", "Can re-read a tenant's edition from WeCom"),
            ("prolong_trial", "Can extend a tenant's trial (prolong_try)"),
        ]

    def __str__(self) -> str:
        return f"{self.edition_name or self.edition_id or 'no edition'} ({self.authorization})"

    @property
    def is_trial(self) -> bool:
        return self.app_status in TRIAL_STATUSES

    @property
    def over_limit(self) -> bool:
        return self.app_status in OVER_LIMIT_STATUSES


class TenantEditionChange(models.Model):
    """One change of a tenant's edition (append-only): before, after, and what told us."""

    edition = models.ForeignKey(TenantEdition, on_delete=models.CASCADE, related_name="changes")
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=32)  # callback, order, poll, reconcile, admin, api…
    order_id = models.CharField(max_length=64, blank=True, help_text="the order that moved it")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["edition_id", "-at", "-id"]

    def __str__(self) -> str:
        return f"{self.edition_id} @ {self.at:%Y-%m-%d %H:%M}"


class TrialExtension(models.Model):
    """One successful prolong_try: who extended whose trial, by how much, until when."""

    authorization = models.ForeignKey(
        Authorization, on_delete=models.CASCADE, related_name="trial_extensions"
    )
    days = models.PositiveSmallIntegerField()
    try_end_time = models.DateTimeField()
    actor = models.CharField(max_length=150)  # admin username or api:<client>
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"+{self.days} d until {self.try_end_time:%Y-%m-%d} ({self.actor})"
