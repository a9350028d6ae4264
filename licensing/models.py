"""Mirror of WeCom's interface licenses (接口调用许可, protocol doc §6).

Orders, renew jobs, multi-corp purchase jobs, accounts (active codes), per-corp
auto-activation and per-app license info. Every WeCom object keeps the JSON WeCom
last sent (``raw``) beside the modelled fields, so nothing WeCom says is lost.

Times WeCom sends as Unix seconds are stored as aware datetimes. Order status only
moves forward (``ORDER_REACHABLE``); services enforce it with conditional UPDATEs.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Corp
from tenants.models import Provider
from tenants.models import Suite


class AccountType(models.IntegerChoices):
    BASE = 1, "基础账号 (basic)"
    EXTERNAL_CONTACT = 2, "互通账号 (interop)"


class OrderType(models.IntegerChoices):
    NEW = 1, "购买账号 (new)"
    RENEW = 2, "续期账号 (renew)"
    MIGRATION = 5, "应用版本付费迁移"
    CONTRACT_MIGRATION = 6, "历史合同迁移"
    MULTI_CORP = 8, "多企业新购 (multi-corp parent)"


class OrderStatus(models.IntegerChoices):
    UNPAID = 0, "待支付 (unpaid)"
    PAID = 1, "已支付 (paid)"
    CANCELLED = 2, "已取消 (cancelled)"
    EXPIRED = 3, "已过期 (expired unpaid)"
    REFUNDING = 4, "申请退款中 (refund requested)"
    REFUNDED = 5, "退款成功 (refunded)"
    REFUND_REJECTED = 6, "退款被拒绝 (refund rejected)"
    INVALID = 7, "已失效 (invalid: test corp removed)"


# Direct moves of §6.5 (plus 6 → 7: a test corp leaving the list voids every order).
_S = OrderStatus
ORDER_TRANSITIONS: dict[int, frozenset[int]] = {
    _S.UNPAID: frozenset({_S.PAID, _S.CANCELLED, _S.EXPIRED, _S.INVALID}),
    _S.PAID: frozenset({_S.REFUNDING, _S.INVALID}),
    _S.REFUNDING: frozenset({_S.REFUNDED, _S.REFUND_REJECTED}),
    _S.REFUND_REJECTED: frozenset({_S.INVALID}),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REFUNDED: frozenset(),
    _S.INVALID: frozenset(),
}


def _closure(edges: dict[int, frozenset[int]]) -> dict[int, frozenset[int]]:
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


# Where a status may go, skipping states we never observed (a lost callback and a
# slow poll can make us see 0 then 5). Nothing reaches back: the graph is acyclic.
ORDER_REACHABLE: dict[int, frozenset[int]] = _closure(ORDER_TRANSITIONS)
# For the conditional UPDATE: the statuses a row may be in to move to ``status``.
ORDER_PREDECESSORS: dict[int, frozenset[int]] = {
    status: frozenset(s for s, reach in ORDER_REACHABLE.items() if status in reach)
    for status in ORDER_TRANSITIONS
}
# Polling stops here. 6 → 7 exists only for test corps and the reconciler sees it.
ORDER_TERMINAL = frozenset({_S.CANCELLED, _S.EXPIRED, _S.REFUNDED, _S.REFUND_REJECTED, _S.INVALID})
# Statuses in which WeCom has generated accounts (codes) for the order.
ORDER_HAS_ACCOUNTS = frozenset({_S.PAID, _S.REFUNDING, _S.REFUNDED, _S.REFUND_REJECTED})


class AccountStatus(models.IntegerChoices):
    UNBOUND = 1, "未绑定 (unbound)"
    ACTIVE = 2, "已绑定且有效 (active)"
    EXPIRED = 3, "已过期 (expired)"
    PENDING_TRANSFER = 4, "待转移 (pending transfer)"
    MERGED = 5, "已合并 (merged)"
    SHARED = 6, "已分配给下游 (shared downstream)"


class LicenseOrder(models.Model):
    """One WeCom license order (purchase, renewal, migration, or a multi-corp parent)."""

    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.PROTECT, related_name="license_orders"
    )
    order_id = models.CharField(max_length=64, unique=True)
    order_type = models.PositiveSmallIntegerField(choices=OrderType.choices, null=True)
    status = models.PositiveSmallIntegerField(
        choices=OrderStatus.choices, default=OrderStatus.UNPAID, db_index=True
    )
    # None for a multi-corp parent (order_type 8), whose sub-orders point at it.
    corp = models.ForeignKey(
        Corp, null=True, blank=True, on_delete=models.PROTECT, related_name="license_orders"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="sub_orders"
    )
    base_count = models.PositiveIntegerField(default=0)
    external_contact_count = models.PositiveIntegerField(default=0)
    duration_months = models.PositiveIntegerField(default=0)
    duration_days = models.PositiveIntegerField(default=0)
    new_expire_time = models.DateTimeField(null=True, blank=True)
    price = models.BigIntegerField(default=0, help_text="分 (1/100 CNY)")
    buyer_userid = models.CharField(max_length=128, blank=True)
    created_time = models.DateTimeField(null=True, blank=True, help_text="WeCom create_time")
    paid_at = models.DateTimeField(null=True, blank=True, help_text="WeCom pay_time")
    raw = models.JSONField(default=dict, blank=True, help_text="get_order.order as WeCom sent it")
    # Poller: due when next_sync_at <= now; None means nothing left to learn.
    next_sync_at = models.DateTimeField(null=True, blank=True)
    sync_attempts = models.PositiveIntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.CharField(max_length=300, blank=True)
    # Set once every account (code) of a paid order is mirrored with its details.
    accounts_synced_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_source = models.CharField(max_length=32, blank=True)  # callback, poll, service…
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_time", "-id"]
        indexes = [
            # The poller's scan is a range over due rows only.
            models.Index(
                fields=["next_sync_at"],
                name="license_order_sync_due",
                condition=Q(next_sync_at__isnull=False),
            ),
            models.Index(fields=["corp", "status"], name="license_order_corp_status"),
            models.Index(fields=["created_time"], name="license_order_created"),
        ]
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("sync_licenseorder", "Can sync a license order from WeCom"),
            ("cancel_licenseorder", "Can cancel an unpaid license order"),
        ]

    def __str__(self) -> str:
        return self.order_id

    @property
    def is_terminal(self) -> bool:
        return self.status in ORDER_TERMINAL

    @property
    def duration_total_days(self) -> int:
        return self.duration_months * 31 + self.duration_days


class LicenseAccount(models.Model):
    """One active code (激活码) as seen from one corp.

    A code shared downstream exists twice in WeCom: the upstream one in status 6 and
    the downstream copy (same code, ``shared_from_corp`` set). Hence unique per corp.
    """

    corp = models.ForeignKey(Corp, on_delete=models.PROTECT, related_name="license_accounts")
    active_code = models.CharField(max_length=128)
    order = models.ForeignKey(
        LicenseOrder, null=True, blank=True, on_delete=models.SET_NULL, related_name="accounts"
    )
    type = models.PositiveSmallIntegerField(choices=AccountType.choices)
    status = models.PositiveSmallIntegerField(
        choices=AccountStatus.choices, default=AccountStatus.UNBOUND
    )
    userid = models.CharField(max_length=128, blank=True)
    created_time = models.DateTimeField(null=True, blank=True, help_text="WeCom create_time")
    active_time = models.DateTimeField(null=True, blank=True)
    expire_time = models.DateTimeField(null=True, blank=True)
    merged_to_code = models.CharField(max_length=128, blank=True)
    merged_from_code = models.CharField(max_length=128, blank=True)
    shared_to_corp = models.ForeignKey(
        Corp, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    shared_from_corp = models.ForeignKey(
        Corp, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # WeCom no longer knows the code (701021 / invalid_active_code_list), e.g. an
    # unbound code of a refunded order.
    invalid_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True, help_text="active_info as WeCom sent it")
    info_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["corp_id", "-created_time", "active_code"]
        constraints = [
            models.UniqueConstraint(fields=["corp", "active_code"], name="license_account_code")
        ]
        indexes = [
            models.Index(fields=["corp", "status", "type"], name="license_account_corp_status"),
            models.Index(fields=["corp", "userid"], name="license_account_user"),
            models.Index(
                fields=["expire_time"],
                name="license_account_expiry",
                condition=Q(status=AccountStatus.ACTIVE),
            ),
        ]
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("activate_licenseaccount", "Can activate license codes for members"),
            ("refresh_licenseaccount", "Can re-read license accounts from WeCom"),
        ]

    def __str__(self) -> str:
        return f"{self.active_code} ({self.corp_id})"


class LicenseRenewJob(models.Model):
    """A renewal job (create_renew_order_job …, then submit_order_job → a renew order)."""

    class Status(models.TextChoices):
        OPEN = "open"  # accounts may still be appended
        SUBMITTED = "submitted"
        FAILED = "failed"

    jobid = models.CharField(max_length=128, unique=True)
    corp = models.ForeignKey(Corp, on_delete=models.PROTECT, related_name="license_renew_jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # Accounts WeCom accepted: [{"userid", "type"}]. Refused ones are batch item errors.
    accounts = models.JSONField(default=list, blank=True)
    buyer_userid = models.CharField(max_length=128, blank=True)
    months = models.PositiveIntegerField(null=True, blank=True)
    new_expire_time = models.DateTimeField(null=True, blank=True)
    order = models.OneToOneField(
        LicenseOrder, null=True, blank=True, on_delete=models.SET_NULL, related_name="renew_job"
    )
    raw = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"renew job {self.jobid}"


class LicenseNewOrderJob(models.Model):
    """A multi-corp purchase job (create_new_order_job … submit … new_order_job_result)."""

    class Status(models.TextChoices):
        OPEN = "open"
        SUBMITTED = "submitted"  # new_order_job_result said 2 (creating) or not read yet
        DONE = "done"
        FAILED = "failed"

    jobid = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # Items WeCom accepted: [{"corpid", "account_count", "account_duration", …}].
    buy_list = models.JSONField(default=list, blank=True)
    buyer_userid = models.CharField(max_length=128, blank=True)
    order = models.OneToOneField(
        LicenseOrder,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="new_order_job",
    )
    raw = models.JSONField(default=dict, blank=True, help_text="last new_order_job_result")
    next_sync_at = models.DateTimeField(null=True, blank=True)
    sync_attempts = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["next_sync_at"],
                name="license_newjob_sync_due",
                condition=Q(next_sync_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"multi-corp job {self.jobid}"


class LicenseBatch(models.Model):
    """One platform-level batch operation, split into ≤1000-item WeCom calls.

    Every failed item is a LicenseBatchItemError row with WeCom's errcode: a batch
    call answering errcode 0 may still have refused some items (§6.4 Batches).
    """

    class Operation(models.TextChoices):
        ACTIVATE = "activate"
        TRANSFER = "transfer"
        SHARE = "share"
        RENEW_JOB = "renew_job"
        NEW_ORDER_JOB = "new_order_job"
        ACCOUNT_INFO = "account_info"

    operation = models.CharField(max_length=32, choices=Operation.choices, db_index=True)
    corp = models.ForeignKey(
        Corp, null=True, blank=True, on_delete=models.PROTECT, related_name="license_batches"
    )
    target_corp = models.ForeignKey(
        Corp, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    renew_job = models.ForeignKey(
        LicenseRenewJob, null=True, blank=True, on_delete=models.CASCADE, related_name="batches"
    )
    new_order_job = models.ForeignKey(
        LicenseNewOrderJob,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="batches",
    )
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    actor = models.CharField(max_length=150, default="system")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "license batches"

    def __str__(self) -> str:
        return f"{self.operation} #{self.pk}: {self.succeeded}/{self.total} ok"


class LicenseBatchItemError(models.Model):
    """One refused item of a batch call, with WeCom's (or our local) errcode."""

    batch = models.ForeignKey(LicenseBatch, on_delete=models.CASCADE, related_name="errors")
    item = models.JSONField(default=dict, help_text="the request item (ids only)")
    errcode = models.IntegerField(db_index=True)
    errmsg = models.CharField(max_length=300, blank=True)
    # True when the platform refused it before calling WeCom (e.g. the 30-day rule).
    local = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["batch_id", "id"]

    def __str__(self) -> str:
        return f"errcode {self.errcode}: {self.item}"


class LicenseTransfer(models.Model):
    """A successful license transfer (handover → takeover): the 30-day rule's memory."""

    corp = models.ForeignKey(Corp, on_delete=models.PROTECT, related_name="license_transfers")
    handover_userid = models.CharField(max_length=128)
    takeover_userid = models.CharField(max_length=128)
    batch = models.ForeignKey(
        LicenseBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    transferred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-transferred_at"]
        indexes = [
            models.Index(
                fields=["corp", "handover_userid", "transferred_at"], name="license_transfer_user"
            )
        ]

    def __str__(self) -> str:
        return f"{self.handover_userid} → {self.takeover_userid}"


class CorpLicenseSettings(models.Model):
    """Per-corp license switches: auto-activation (自动激活)."""

    corp = models.OneToOneField(Corp, on_delete=models.CASCADE, related_name="license_settings")
    auto_active_status = models.PositiveSmallIntegerField(null=True, blank=True)  # 0 off, 1 on
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    accounts_reconciled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "corp license settings"

    def __str__(self) -> str:
        return f"license settings of {self.corp_id}"


class AppLicenseInfo(models.Model):
    """get_app_license_info for one (corp, suite): enforcement and the trial window."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="app_license_infos")
    suite = models.ForeignKey(Suite, on_delete=models.CASCADE, related_name="app_license_infos")
    license_status = models.PositiveSmallIntegerField(null=True, blank=True)  # 0 off, 1 on
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    license_check_time = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["corp", "suite"], name="app_license_info_corp_suite")
        ]

    def __str__(self) -> str:
        return f"{self.corp_id}@{self.suite_id}"


class UnlicensedMember(models.Model):
    """A member who opened an app without a license (unlicensed_notify, §8.4)."""

    corp = models.ForeignKey(Corp, on_delete=models.CASCADE, related_name="unlicensed_members")
    suite = models.ForeignKey(Suite, null=True, blank=True, on_delete=models.CASCADE)
    userid = models.CharField(max_length=128)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    times_seen = models.PositiveIntegerField(default=1)
    # Set when the member gets a license (activation through us, or auto_activate).
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["corp", "userid"], name="unlicensed_member_corp_user")
        ]

    def __str__(self) -> str:
        return f"{self.userid}@{self.corp_id}"


class LicenseEventReceipt(models.Model):
    """One row per license callback already applied: makes handlers idempotent."""

    key = models.CharField(max_length=200, unique=True)
    info_type = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class CorpLicenseSummary(Corp):
    """Corp seen through its licenses (admin only; figures come from selectors)."""

    class Meta:
        proxy = True
        verbose_name = "corp license summary"
        verbose_name_plural = "corp license summaries"
        # Custom permissions gate the admin actions (roles: ops/roles.py).
        permissions = [
            ("sync_license_info", "Can read app license info from WeCom"),
            ("reconcile_license_accounts", "Can reconcile activated accounts"),
        ]


# Paid apps (应用版本付费) live in their own module; importing them here registers them
# with the licensing app (Django finds an app's models through its models module).
from licensing.app_orders.models import AppOrder  # noqa: E402,F401
from licensing.app_orders.models import AppOrderStatusChange  # noqa: E402,F401
from licensing.app_orders.models import TenantEdition  # noqa: E402,F401
from licensing.app_orders.models import TenantEditionChange  # noqa: E402,F401
from licensing.app_orders.models import TrialExtension  # noqa: E402,F401
