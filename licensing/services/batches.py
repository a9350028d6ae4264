"""Platform batches split into ≤1000-item WeCom calls; no item result is dropped."""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from licensing import selectors
from licensing.models import LicenseAccount
from licensing.models import LicenseBatch
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseTransfer
from licensing.services.accounts import license_accounts_refresh
from licensing.services.accounts import license_user_info_sync
from licensing.services.accounts import unlicensed_resolve
from licensing.services.common import TRANSPORT_ERRCODE
from licensing.services.common import as_int
from licensing.services.common import error_text
from licensing.services.common import license_api
from tenants.models import Corp
from wecom.client import chunked
from wecom.endpoints import BATCH_MAX_ITEMS
from wecom.errors import WeComError

logger = logging.getLogger(__name__)


# --- batches ------------------------------------------------------------------------------


ItemKey = Callable[[Mapping[str, Any]], tuple]


def _item_outcomes(
    chunk: list[dict[str, Any]],
    results: list[Mapping[str, Any]],
    *,
    key: ItemKey,
    complete: bool,
) -> list[tuple[int, str]]:
    """Return (errcode, errmsg) per chunk item from WeCom's result list.

    ``complete``: WeCom answers one result per item, in order (activate, transfer);
    otherwise it lists failures only (share, renew, multi-corp), matched by key.
    """
    if complete and len(results) == len(chunk):
        return [(as_int(r.get("errcode")), str(r.get("errmsg") or "")) for r in results]
    failures: dict[tuple, Mapping[str, Any]] = {}
    for result in results:
        failures.setdefault(key(result), result)
    outcomes = []
    for item in chunk:
        found = failures.get(key(item))
        if found is None:
            # A "complete" answer that lost an item is a failure we cannot explain.
            outcomes.append((TRANSPORT_ERRCODE, "no result for this item") if complete else (0, ""))
        else:
            outcomes.append(
                (as_int(found.get("errcode"), TRANSPORT_ERRCODE), str(found.get("errmsg") or ""))
            )
    return outcomes


def batch_run(
    batch: LicenseBatch,
    items: list[dict[str, Any]],
    *,
    send: Callable[[list[dict[str, Any]]], list[Mapping[str, Any]]],
    key: ItemKey,
    complete: bool,
    size: int = BATCH_MAX_ITEMS,
    on_chunk: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[dict[str, Any]]:
    """Send ``items`` in chunks of ``size``; record every refused item; return the accepted.

    A whole-call failure (701024 every item failed, a transport error…) marks every
    item of that chunk with that errcode: the next chunks still go out.
    """
    accepted: list[dict[str, Any]] = []
    errors: list[LicenseBatchItemError] = []
    for chunk in chunked(items, size):
        batch.calls += 1
        try:
            outcomes = _item_outcomes(chunk, send(chunk), key=key, complete=complete)
        except WeComError as exc:
            errcode = exc.errcode if exc.errcode is not None else TRANSPORT_ERRCODE
            logger.warning("license %s batch chunk failed: %s", batch.operation, error_text(exc))
            outcomes = [(errcode, exc.errmsg)] * len(chunk)
        ok = []
        for item, (errcode, errmsg) in zip(chunk, outcomes, strict=True):
            if errcode:
                errors.append(
                    LicenseBatchItemError(
                        batch=batch, item=item, errcode=errcode, errmsg=errmsg[:300]
                    )
                )
            else:
                ok.append(item)
        accepted.extend(ok)
        if on_chunk is not None and ok:
            on_chunk(ok)
    LicenseBatchItemError.objects.bulk_create(errors)
    batch.succeeded += len(accepted)
    batch.failed += len(errors)
    batch.save(update_fields=["calls", "succeeded", "failed"])
    return accepted


def license_accounts_activate_batch(
    *, corp: Corp, items: Sequence[Mapping[str, str]], actor: str = "system"
) -> LicenseBatch:
    """Bind codes to members, ≤1000 per call; return the batch with per-item errors.

    ``items``: [{"active_code", "userid"}]. Activated codes are re-read afterwards.
    """
    api = license_api(corp=corp)
    payload = [{"active_code": i["active_code"], "userid": i["userid"]} for i in items]
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.ACTIVATE, corp=corp, total=len(payload), actor=actor
    )

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.batch_active_account(corpid=corp.corpid, active_list=chunk)
        return answer.get("active_result") or []

    accepted = batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("active_code"), i.get("userid")),
        complete=True,
    )
    license_accounts_refresh(corp=corp, active_codes=[i["active_code"] for i in accepted], api=api)
    unlicensed_resolve(corp, {i["userid"] for i in accepted})
    return batch


def license_transfer(
    *,
    corp: Corp,
    transfers: Sequence[Mapping[str, str]],
    force: bool = False,
    actor: str = "system",
) -> LicenseBatch:
    """Move members' licenses to other members (≤1000 per call); return the batch.

    ``transfers``: [{"handover_userid", "takeover_userid"}]. A handover member that
    transferred through us within 30 days is refused locally with 701017 (WeCom's
    errcode for it) unless ``force`` (a member who left may transfer any time: WeCom
    decides). Everything WeCom refuses is stored with WeCom's errcode per item.
    """
    api = license_api(corp=corp)
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.TRANSFER, corp=corp, total=len(transfers), actor=actor
    )
    payload, blocked = [], []
    now = timezone.now()
    for t in transfers:
        item = {"handover_userid": t["handover_userid"], "takeover_userid": t["takeover_userid"]}
        until = None
        if not force:
            until = selectors.license_transfer_blocked_until(
                corp=corp, handover_userid=item["handover_userid"], now=now
            )
        if until is not None:
            blocked.append(
                LicenseBatchItemError(
                    batch=batch,
                    item=item,
                    errcode=701017,
                    errmsg=f"transferred within 30 days; allowed again after {until.isoformat()}",
                    local=True,
                )
            )
        else:
            payload.append(item)
    if blocked:
        LicenseBatchItemError.objects.bulk_create(blocked)
        batch.failed = len(blocked)

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.batch_transfer_license(corpid=corp.corpid, transfer_list=chunk)
        return answer.get("transfer_result") or []

    accepted = batch_run(
        batch,
        payload,
        send=send,
        key=lambda i: (i.get("handover_userid"), i.get("takeover_userid")),
        complete=True,
    )
    LicenseTransfer.objects.bulk_create(
        LicenseTransfer(
            corp=corp,
            handover_userid=i["handover_userid"],
            takeover_userid=i["takeover_userid"],
            batch=batch,
            transferred_at=now,
        )
        for i in accepted
    )
    users = {i["handover_userid"] for i in accepted} | {i["takeover_userid"] for i in accepted}
    if users:
        codes = list(
            selectors.license_accounts_of_users(corp=corp, userids=users).values_list(
                "active_code", flat=True
            )
        )
        license_accounts_refresh(corp=corp, active_codes=codes, api=api)
        known_takeovers = set(
            LicenseAccount.objects.filter(
                corp=corp, userid__in={i["takeover_userid"] for i in accepted}
            ).values_list("userid", flat=True)
        )
        for userid in sorted({i["takeover_userid"] for i in accepted} - known_takeovers):
            license_user_info_sync(corp=corp, userid=userid, api=api)
    return batch


def license_codes_share(
    *,
    from_corp: Corp,
    to_corp: Corp,
    active_codes: Sequence[str],
    corp_link_type: int = 0,
    actor: str = "system",
) -> LicenseBatch:
    """Share unbound codes to a downstream corp (≤1000 per call); return the batch."""
    api = license_api(corp=from_corp)
    payload = [{"active_code": code} for code in dict.fromkeys(active_codes)]
    batch = LicenseBatch.objects.create(
        operation=LicenseBatch.Operation.SHARE,
        corp=from_corp,
        target_corp=to_corp,
        total=len(payload),
        actor=actor,
    )

    def send(chunk: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
        answer = api.batch_share_active_code(
            from_corpid=from_corp.corpid,
            to_corpid=to_corp.corpid,
            share_list=chunk,
            corp_link_type=corp_link_type,
        )
        return answer.get("share_result") or []  # failures only (§6.4)

    accepted = batch_run(
        batch, payload, send=send, key=lambda i: (i.get("active_code"),), complete=False
    )
    codes = [i["active_code"] for i in accepted]
    license_accounts_refresh(corp=from_corp, active_codes=codes, api=api)
    license_accounts_refresh(corp=to_corp, active_codes=codes, api=api)
    return batch
