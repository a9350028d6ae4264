"""Renewal jobs and multi-corp purchase jobs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from licensing import selectors
from licensing.models import LicenseBatch
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseNewOrderJob
from licensing.models import LicenseOrder
from licensing.models import LicenseRenewJob
from licensing.models import OrderStatus
from licensing.models import OrderType
from licensing.services.batches import batch_run
from licensing.services.common import MULTI_CORP_ITEMS_PER_CALL
from licensing.services.common import NEW_ORDER_JOB_BACKOFF
from licensing.services.common import POLL_LEASE
from licensing.services.common import TRANSPORT_ERRCODE
from licensing.services.common import LicenseBatchFailed
from licensing.services.common import as_int
from licensing.services.common import error_text
from licensing.services.common import license_api
from licensing.services.common import license_provider
from licensing.services.common import poll_backoff
from licensing.services.common import to_unix
from licensing.services.orders import license_order_sync
from licensing.services.orders import license_order_sync_by_id
from tenants.models import Corp
from wecom.errors import WeComError

logger = logging.getLogger(__name__)

# new_order_job_result's status (§6.3): its own numbering, not an order status.
JOB_DONE, JOB_RUNNING, JOB_FAILED = 1, 2, 3


# --- renew jobs and multi-corp purchase jobs ------------------------------------------------


def license_renew_job_create(
    *,
    corp: Corp,
    accounts: Sequence[Mapping[str, Any]],
    job: LicenseRenewJob | None = None,
    actor: str = "system",
) -> LicenseRenewJob:
    """Create (or append to) a renewal job, ≤1000 accounts per call; return the job.

    ``accounts``: [{"userid", "type"}]. WeCom's invalid_account_list items are stored
    as errors of the job's batch. Raises LicenseBatchFailed if no account was taken.
    """
    api = license_api(corp=corp)
    payload = [{"userid": a["userid"], "type": as_int(a.get("type"), 1)} for a in accounts]
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.RENEW_JOB,
        corp=corp,
        total=len(payload),
        renew_job=job,
        actor=actor,
    )
    state = {"jobid": job.jobid if job else None}

    answers: list[Mapping[str, Any]] = []

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.create_renew_order_job(
            corpid=corp.corpid, account_list=chunk, jobid=state["jobid"]
        )
        answers.append(answer)
        state["jobid"] = answer.get("jobid") or state["jobid"]
        return answer.get("invalid_account_list") or []

    accepted = batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("userid"), as_int(i.get("type"))),
        complete=False,
    )
    if state["jobid"] is None:
        raise LicenseBatchFailed("WeCom accepted no account for renewal", batch)
    with transaction.atomic():
        job, _ = LicenseRenewJob.objects.get_or_create(
            jobid=state["jobid"], defaults={"corp": corp}
        )
        job = LicenseRenewJob.objects.select_for_update().get(pk=job.pk)
        job.accounts = [*job.accounts, *accepted]
        if answers:
            # The last answer as WeCom sent it (refused items are also batch errors).
            job.raw = {**job.raw, "create_renew_order_job": answers[-1]}
        job.save(update_fields=["accounts", "raw", "updated_at"])
        LicenseBatch.objects.filter(pk=batch.pk).update(renew_job=job)
    return job


def license_renew_job_submit(
    *,
    job: LicenseRenewJob,
    buyer_userid: str,
    months: int | None = None,
    new_expire_time: datetime | None = None,
) -> LicenseOrder:
    """Submit a renewal job (months or a new expiry date); return the renew order."""
    api = license_api(corp=job.corp)
    answer = api.submit_order_job(
        jobid=job.jobid,
        buyer_userid=buyer_userid,
        months=months,
        new_expire_time=to_unix(new_expire_time) if new_expire_time else None,
    )
    order_id = answer["order_id"]
    now = timezone.now()
    order, _ = LicenseOrder.objects.get_or_create(
        order_id=order_id,
        defaults={
            "provider": license_provider(corp=job.corp),
            "corp": job.corp,
            "order_type": OrderType.RENEW,
            "status": OrderStatus.UNPAID,
            "status_source": "submit",
            "status_changed_at": now,
            "buyer_userid": buyer_userid,
            "duration_months": months or 0,
            "new_expire_time": new_expire_time,
            "next_sync_at": now,
        },
    )
    LicenseRenewJob.objects.filter(pk=job.pk).update(
        raw={**job.raw, "submit_order_job": answer},
        status=LicenseRenewJob.Status.SUBMITTED,
        order=order,
        buyer_userid=buyer_userid,
        months=months,
        new_expire_time=new_expire_time,
        submitted_at=now,
        updated_at=now,
    )
    job.refresh_from_db()
    try:
        return license_order_sync(order=order, source="submit")
    except WeComError as exc:
        logger.warning("renew order %s: first read failed: %s", order_id, error_text(exc))
        return order


def license_new_order_job_create(
    *,
    items: Sequence[Mapping[str, Any]],
    job: LicenseNewOrderJob | None = None,
    actor: str = "system",
) -> LicenseNewOrderJob:
    """Create (or extend) a multi-corp purchase job, ≤10 corps per call; return the job.

    ``items``: [{"corp" (Corp) or "corpid", "base_count", "external_contact_count",
    "months", "days", "auto_active_status"}]. Refused corps are batch item errors.
    """
    payload = []
    for item in items:
        corp = item.get("corp")
        corpid = corp.corpid if isinstance(corp, Corp) else item["corpid"]
        duration = {"months": as_int(item.get("months"))}
        if item.get("days"):
            duration["days"] = as_int(item["days"])
        entry: dict[str, Any] = {
            "corpid": corpid,
            "account_count": {
                "base_count": as_int(item.get("base_count")),
                "external_contact_count": as_int(item.get("external_contact_count")),
            },
            "account_duration": duration,
        }
        if item.get("auto_active_status") is not None:
            entry["auto_active_status"] = as_int(item["auto_active_status"])
        payload.append(entry)
    api = license_api()
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.NEW_ORDER_JOB,
        total=len(payload),
        new_order_job=job,
        actor=actor,
    )
    state = {"jobid": job.jobid if job else None}

    answers: list[Mapping[str, Any]] = []

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.create_new_order_job(buy_list=chunk, jobid=state["jobid"])
        answers.append(answer)
        state["jobid"] = answer.get("jobid") or state["jobid"]
        return answer.get("invalid_list") or []

    accepted = batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("corpid"),),
        complete=False,
        size=MULTI_CORP_ITEMS_PER_CALL,
    )
    if state["jobid"] is None:
        raise LicenseBatchFailed("WeCom accepted no corp for the multi-corp order", batch)
    with transaction.atomic():
        job, _ = LicenseNewOrderJob.objects.get_or_create(jobid=state["jobid"])
        job = LicenseNewOrderJob.objects.select_for_update().get(pk=job.pk)
        job.buy_list = [*job.buy_list, *accepted]
        if answers and not job.raw:
            job.raw = {"create_new_order_job": answers[-1]}
        job.save(update_fields=["buy_list", "raw", "updated_at"])
        LicenseBatch.objects.filter(pk=batch.pk).update(new_order_job=job)
    return job


def license_new_order_job_submit(
    *, job: LicenseNewOrderJob, buyer_userid: str
) -> LicenseNewOrderJob:
    """Submit a multi-corp job; its result (the order) is read now and then by the poller."""
    api = license_api()
    api.submit_new_order_job(jobid=job.jobid, buyer_userid=buyer_userid)
    now = timezone.now()
    LicenseNewOrderJob.objects.filter(pk=job.pk).update(
        status=LicenseNewOrderJob.Status.SUBMITTED,
        buyer_userid=buyer_userid,
        submitted_at=now,
        next_sync_at=now,
        updated_at=now,
    )
    job.refresh_from_db()
    try:
        return license_new_order_job_sync(job=job)
    except WeComError as exc:
        logger.warning("multi-corp job %s: first result read failed: %s", job.jobid, exc)
        return job


def license_new_order_job_sync(*, job: LicenseNewOrderJob) -> LicenseNewOrderJob:
    """Read new_order_job_result: 2 → later; 3 → failed (fail_list stored); 1 → order."""
    api = license_api()
    answer = api.new_order_job_result(jobid=job.jobid)
    status = as_int(answer.get("status"))
    now = timezone.now()
    fail_list = answer.get("fail_list") or []
    if fail_list and not job.batches.filter(errors__errmsg__startswith="fail_list").exists():
        batch = LicenseBatch.objects.create(
            operation=LicenseBatch.Operation.NEW_ORDER_JOB,
            new_order_job=job,
            total=len(fail_list),
            failed=len(fail_list),
        )
        LicenseBatchItemError.objects.bulk_create(
            LicenseBatchItemError(
                batch=batch,
                item={"corpid": f.get("corpid")},
                errcode=as_int(f.get("errcode"), TRANSPORT_ERRCODE),
                errmsg=f"fail_list: {f.get('errmsg') or ''}"[:300],
            )
            for f in fail_list
        )
    fields: dict[str, Any] = {"raw": answer, "updated_at": now}
    if status == JOB_RUNNING:
        fields["next_sync_at"] = now + poll_backoff(job.sync_attempts, *NEW_ORDER_JOB_BACKOFF)
        fields["sync_attempts"] = F("sync_attempts") + 1
    elif status == JOB_FAILED:
        fields.update(status=LicenseNewOrderJob.Status.FAILED, next_sync_at=None)
    elif status == JOB_DONE and answer.get("order_id"):
        order = license_order_sync_by_id(order_id=answer["order_id"], source="new_order_job")
        fields.update(status=LicenseNewOrderJob.Status.DONE, order=order, next_sync_at=None)
    LicenseNewOrderJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def license_new_order_jobs_claim_due(*, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Return ids of submitted multi-corp jobs whose result is due, each claimed once."""
    now = now or timezone.now()
    claimed = []
    rows = selectors.license_new_order_jobs_due(now=now).values_list("pk", "next_sync_at")[:limit]
    for pk, due in rows:
        if LicenseNewOrderJob.objects.filter(pk=pk, next_sync_at=due).update(
            next_sync_at=now + POLL_LEASE
        ):
            claimed.append(pk)
    return claimed
