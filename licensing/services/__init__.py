"""Writes for the licensing app: orders, jobs, accounts, activation, reconciliation.

Every WeCom call goes through the protocol library (``tenants.wecom.provider_api``)
and happens outside database transactions. Two rules hold everywhere:

- **Order status only moves forward.** ``license_order_transition`` is a conditional
  UPDATE on the current status (``ORDER_PREDECESSORS``), so a callback and a poll
  racing on one order can never move it back; the loser updates 0 rows.
- **Batch results are never dropped.** A platform batch (``LicenseBatch``) is split
  into ≤1000-item WeCom calls; every refused item becomes a ``LicenseBatchItemError``
  with WeCom's errcode, even when the call as a whole answered errcode 0.

The package: ``orders`` (creation, status, polling, callbacks' news), ``accounts``
(active codes, activation, per-corp settings), ``batches`` (activation, transfer and
sharing in ≤1000-item calls), ``jobs`` (renewal and multi-corp purchase jobs), ``events``
(auto-activation, unlicensed members), ``reconcile`` (expiry notices, reconciliation),
and ``common`` (what they share). Callers import this package: ``from licensing import
services``.
"""

from licensing.services.accounts import ACCOUNT_INFO_FIELDS
from licensing.services.accounts import UserLicenseInfo
from licensing.services.accounts import license_account_activate
from licensing.services.accounts import license_accounts_refresh
from licensing.services.accounts import license_app_info_sync
from licensing.services.accounts import license_auto_active_get
from licensing.services.accounts import license_auto_active_set
from licensing.services.accounts import license_order_accounts_sync
from licensing.services.accounts import license_user_info_sync
from licensing.services.batches import license_accounts_activate_batch
from licensing.services.batches import license_codes_share
from licensing.services.batches import license_transfer
from licensing.services.common import ACCOUNTS_BACKOFF
from licensing.services.common import DAY
from licensing.services.common import LIST_ORDER_WINDOW
from licensing.services.common import MULTI_CORP_ITEMS_PER_CALL
from licensing.services.common import NEW_ORDER_JOB_BACKOFF
from licensing.services.common import POLL_BACKOFF
from licensing.services.common import POLL_LEASE
from licensing.services.common import TRANSPORT_ERRCODE
from licensing.services.common import TRY_NEXT_CODE_ERRCODES
from licensing.services.common import LicenseBatchFailed
from licensing.services.common import LicenseError
from licensing.services.common import license_provider
from licensing.services.common import license_write_guard
from licensing.services.events import license_auto_activated
from licensing.services.events import license_unlicensed_record
from licensing.services.jobs import license_new_order_job_create
from licensing.services.jobs import license_new_order_job_submit
from licensing.services.jobs import license_new_order_job_sync
from licensing.services.jobs import license_new_order_jobs_claim_due
from licensing.services.jobs import license_renew_job_create
from licensing.services.jobs import license_renew_job_submit
from licensing.services.orders import license_order_cancel
from licensing.services.orders import license_order_create
from licensing.services.orders import license_order_event
from licensing.services.orders import license_order_sync
from licensing.services.orders import license_order_sync_by_id
from licensing.services.orders import license_order_transition
from licensing.services.orders import license_orders_claim_due
from licensing.services.reconcile import ReconcileResult
from licensing.services.reconcile import license_corp_accounts_reconcile
from licensing.services.reconcile import license_expiry_scan
from licensing.services.reconcile import license_orders_reconcile
from licensing.services.reconcile import license_reconcile
from licensing.services.reconcile import license_reconcile_corps
from licensing.services.reconcile import list_order_windows

__all__ = [
    "ACCOUNTS_BACKOFF",
    "ACCOUNT_INFO_FIELDS",
    "DAY",
    "LIST_ORDER_WINDOW",
    "MULTI_CORP_ITEMS_PER_CALL",
    "NEW_ORDER_JOB_BACKOFF",
    "POLL_BACKOFF",
    "POLL_LEASE",
    "TRANSPORT_ERRCODE",
    "TRY_NEXT_CODE_ERRCODES",
    "LicenseBatchFailed",
    "LicenseError",
    "ReconcileResult",
    "UserLicenseInfo",
    "license_account_activate",
    "license_accounts_activate_batch",
    "license_accounts_refresh",
    "license_app_info_sync",
    "license_auto_activated",
    "license_auto_active_get",
    "license_auto_active_set",
    "license_codes_share",
    "license_corp_accounts_reconcile",
    "license_expiry_scan",
    "license_new_order_job_create",
    "license_new_order_job_submit",
    "license_new_order_job_sync",
    "license_new_order_jobs_claim_due",
    "license_order_accounts_sync",
    "license_order_cancel",
    "license_order_create",
    "license_order_event",
    "license_order_sync",
    "license_order_sync_by_id",
    "license_order_transition",
    "license_orders_claim_due",
    "license_orders_reconcile",
    "license_provider",
    "license_reconcile",
    "license_reconcile_corps",
    "license_renew_job_create",
    "license_renew_job_submit",
    "license_transfer",
    "license_unlicensed_record",
    "license_user_info_sync",
    "license_write_guard",
    "list_order_windows",
]
