"""Accounts (active codes): reading them from WeCom, activation, per-corp settings."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from licensing import selectors
from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import AppLicenseInfo
from licensing.models import CorpLicenseSettings
from licensing.models import LicenseAccount
from licensing.models import LicenseBatch
from licensing.models import LicenseBatchItemError
from licensing.models import LicenseOrder
from licensing.models import OrderType
from licensing.models import UnlicensedMember
from licensing.services.common import TRY_NEXT_CODE_ERRCODES
from licensing.services.common import LicenseError
from licensing.services.common import as_int
from licensing.services.common import corp_for_id
from licensing.services.common import from_unix
from licensing.services.common import license_api
from tenants.models import Corp
from tenants.models import Suite
from wecom.client import ProviderApi
from wecom.client import chunked
from wecom.endpoints import BATCH_MAX_ITEMS
from wecom.errors import WeComApiError

logger = logging.getLogger(__name__)


# --- accounts (active codes) -------------------------------------------------------------


# Fields one active_info object determines (written on every re-read).
ACCOUNT_INFO_FIELDS = [
    "type",
    "status",
    "userid",
    "created_time",
    "active_time",
    "expire_time",
    "merged_to_code",
    "merged_from_code",
    "shared_to_corp",
    "shared_from_corp",
    "raw",
    "invalid_at",
    "info_synced_at",
    "updated_at",
]


def _account_fields(
    info: Mapping[str, Any], corps: dict[str, Corp], now: datetime
) -> dict[str, Any]:
    def corp_of(corpid: Any) -> Corp | None:
        if not isinstance(corpid, str) or not corpid:
            return None
        if corpid not in corps:
            corps[corpid] = corp_for_id(corpid)
        return corps[corpid]

    merge = info.get("merge_info") or {}
    share = info.get("share_info") or {}
    return {
        "type": as_int(info.get("type"), AccountType.BASE),
        "status": as_int(info.get("status"), AccountStatus.UNBOUND),
        "userid": info.get("userid") or "",
        "created_time": from_unix(info.get("create_time")),
        "active_time": from_unix(info.get("active_time")),
        "expire_time": from_unix(info.get("expire_time")),
        "merged_to_code": merge.get("to_active_code") or "",
        "merged_from_code": merge.get("from_active_code") or "",
        "shared_to_corp": corp_of(share.get("to_corpid")),
        "shared_from_corp": corp_of(share.get("from_corpid")),
        "raw": dict(info),
        "invalid_at": None,
        "info_synced_at": now,
        "updated_at": now,
    }


def _accounts_apply(
    corp: Corp, infos: Iterable[Mapping[str, Any]], *, order: LicenseOrder | None = None
) -> list[LicenseAccount]:
    """Upsert active_info objects as LicenseAccount rows of ``corp``; return them.

    One INSERT … ON CONFLICT per 500 codes: a concurrent writer of the same code
    cannot make it fail, the last read wins.
    """
    now = timezone.now()
    corps: dict[str, Corp] = {corp.corpid: corp}
    # ON CONFLICT cannot touch one row twice in a statement: one info per code.
    unique = {i["active_code"]: i for i in infos if i.get("active_code")}
    rows = [
        LicenseAccount(
            corp=corp, active_code=code, order=order, **_account_fields(info, corps, now)
        )
        for code, info in unique.items()
    ]
    if not rows:
        return []
    LicenseAccount.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["corp", "active_code"],
        update_fields=[*ACCOUNT_INFO_FIELDS, *(["order"] if order is not None else [])],
    )
    return rows


def license_accounts_refresh(
    *, corp: Corp, active_codes: Sequence[str], api: ProviderApi | None = None
) -> int:
    """Re-read ``active_codes`` of ``corp`` (≤1000 per call); return how many WeCom knows.

    Codes WeCom lists as invalid (e.g. unbound codes of a refunded order) are marked
    ``invalid_at`` and recorded as item errors of an ``account_info`` batch.
    """
    codes = list(dict.fromkeys(c for c in active_codes if c))
    if not codes:
        return 0
    api = api or license_api(corp=corp)
    known = 0
    invalid: list[str] = []
    for chunk in chunked(codes, BATCH_MAX_ITEMS):
        answer = api.batch_get_active_info_by_code(corpid=corp.corpid, active_code_list=chunk)
        infos = answer.get("active_info_list") or []
        _accounts_apply(corp, infos)
        known += len(infos)
        invalid.extend(answer.get("invalid_active_code_list") or [])
    if invalid:
        now = timezone.now()
        LicenseAccount.objects.filter(
            corp=corp, active_code__in=invalid, invalid_at__isnull=True
        ).update(invalid_at=now, updated_at=now)
        batch = LicenseBatch.objects.create(
            operation=LicenseBatch.Operation.ACCOUNT_INFO,
            corp=corp,
            total=len(codes),
            succeeded=len(codes) - len(invalid),
            failed=len(invalid),
            calls=-(-len(codes) // BATCH_MAX_ITEMS),
        )
        LicenseBatchItemError.objects.bulk_create(
            LicenseBatchItemError(
                batch=batch,
                item={"active_code": code},
                errcode=701021,
                errmsg="listed in invalid_active_code_list",
            )
            for code in invalid
        )
    return known


def license_order_accounts_sync(*, order: LicenseOrder, api: ProviderApi | None = None) -> int:
    """Mirror the accounts of a paid order and their details; return how many.

    list_order_account pages through the codes (701022 while they are generated:
    raised as WeComBusy, the caller retries later); batch_get_active_info_by_code
    then reads each code's status, binding and times.
    """
    order.refresh_from_db()
    corp = order.corp
    if corp is None:
        raise LicenseError(f"order {order.order_id} has no corp yet")
    api = api or license_api(order.provider, corp=corp)
    items = list(api.list_order_account_all(order_id=order.order_id))
    if order.order_type == OrderType.RENEW:
        count = _renewed_accounts_sync(corp, items, api)
    else:
        codes = [i["active_code"] for i in items if i.get("active_code")]
        LicenseAccount.objects.bulk_create(
            [
                LicenseAccount(
                    corp=corp,
                    active_code=i["active_code"],
                    order=order,
                    type=as_int(i.get("type"), AccountType.BASE),
                    userid=i.get("userid") or "",
                    status=AccountStatus.ACTIVE if i.get("userid") else AccountStatus.UNBOUND,
                )
                for i in items
                if i.get("active_code")
            ],
            ignore_conflicts=True,
        )
        LicenseAccount.objects.filter(corp=corp, active_code__in=codes, order__isnull=True).update(
            order=order
        )
        license_accounts_refresh(corp=corp, active_codes=codes, api=api)
        count = len(codes)
    now = timezone.now()
    LicenseOrder.objects.filter(pk=order.pk).update(accounts_synced_at=now, updated_at=now)
    return count


def _renewed_accounts_sync(corp: Corp, items: Sequence[Mapping[str, Any]], api: ProviderApi) -> int:
    """A renewal lists userids: re-read their codes (known ones in ≤1000 batches)."""
    userids = {i["userid"] for i in items if i.get("userid")}
    known = selectors.license_accounts_of_users(corp=corp, userids=userids)
    codes = list(known.values_list("active_code", flat=True))
    license_accounts_refresh(corp=corp, active_codes=codes, api=api)
    for userid in sorted(userids - set(known.values_list("userid", flat=True))):
        license_user_info_sync(corp=corp, userid=userid, api=api)
    return len(userids)


@dataclass(frozen=True)
class UserLicenseInfo:
    corpid: str
    userid: str
    active_status: int  # 0 not activated, 1 activated
    accounts: list[LicenseAccount]


def license_user_info_sync(
    *, corp: Corp, userid: str, api: ProviderApi | None = None
) -> UserLicenseInfo:
    """Read one member's activation info from WeCom, mirror it and return it."""
    api = api or license_api(corp=corp)
    answer = api.get_active_info_by_user(corpid=corp.corpid, userid=userid)
    wecom_codes = [
        i["active_code"] for i in answer.get("active_info_list") or [] if i.get("active_code")
    ]
    # Codes we believe bound to the member but WeCom no longer lists (expired, merged,
    # transferred) are re-read too, so the mirror drops the stale binding.
    ours = list(
        selectors.license_accounts_of_users(corp=corp, userids={userid}).values_list(
            "active_code", flat=True
        )
    )
    license_accounts_refresh(corp=corp, active_codes=[*wecom_codes, *ours], api=api)
    accounts = list(LicenseAccount.objects.filter(corp=corp, active_code__in=wecom_codes))
    return UserLicenseInfo(
        corpid=corp.corpid,
        userid=userid,
        active_status=as_int(answer.get("active_status")),
        accounts=accounts,
    )


def unlicensed_resolve(corp: Corp, userids: Iterable[str]) -> None:
    now = timezone.now()
    UnlicensedMember.objects.filter(
        corp=corp, userid__in=list(userids), resolved_at__isnull=True
    ).update(resolved_at=now)


def license_account_activate(
    *,
    corp: Corp,
    userid: str,
    account_type: int = AccountType.BASE,
    active_code: str | None = None,
) -> LicenseAccount:
    """Activate a license for one member; return the account now bound to them.

    Without ``active_code`` the free code with the earliest activation deadline is
    used (what WeCom itself would pick). If WeCom says that code is taken or dead,
    the next one is tried; with no known free code, WeCom picks (active_account_by_type).
    WeCom's refusals (701082 re-activation too early, 701088 outside the visible
    range, …) are raised as WeComApiError.
    """
    api = license_api(corp=corp)
    if active_code:
        api.active_account(corpid=corp.corpid, active_code=active_code, userid=userid)
        license_accounts_refresh(corp=corp, active_codes=[active_code], api=api)
        unlicensed_resolve(corp, [userid])
        return LicenseAccount.objects.get(corp=corp, active_code=active_code)
    tried: set[str] = set()
    for _ in range(5):
        candidate = selectors.license_account_pick_unused(
            corp=corp, account_type=account_type, exclude=tried
        )
        if candidate is None:
            break
        tried.add(candidate.active_code)
        try:
            api.active_account(corpid=corp.corpid, active_code=candidate.active_code, userid=userid)
        except WeComApiError as exc:
            if exc.errcode not in TRY_NEXT_CODE_ERRCODES:
                raise
            logger.info("code of %s unusable (errcode %s); trying another", corp, exc.errcode)
            license_accounts_refresh(corp=corp, active_codes=[candidate.active_code], api=api)
            continue
        license_accounts_refresh(corp=corp, active_codes=[candidate.active_code], api=api)
        unlicensed_resolve(corp, [userid])
        return LicenseAccount.objects.get(pk=candidate.pk)
    api.active_account_by_type(corpid=corp.corpid, userid=userid, account_type=account_type)
    info = license_user_info_sync(corp=corp, userid=userid, api=api)
    unlicensed_resolve(corp, [userid])
    for account in info.accounts:
        if account.type == account_type:
            return account
    raise LicenseError(f"WeCom activated {userid} but lists no account of type {account_type}")


# --- per-corp settings and app license info -------------------------------------------------


def license_auto_active_get(*, corp: Corp) -> CorpLicenseSettings:
    """Read the corp's auto-activation switch from WeCom and mirror it."""
    answer = license_api(corp=corp).get_auto_active_status(corpid=corp.corpid)
    row, _ = CorpLicenseSettings.objects.update_or_create(
        corp=corp,
        defaults={
            "auto_active_status": as_int(answer.get("auto_active_status")),
            "raw": answer,
            "synced_at": timezone.now(),
        },
    )
    return row


def license_auto_active_set(*, corp: Corp, enabled: bool) -> CorpLicenseSettings:
    """Switch auto-activation (701071 if the corp never bought); return the mirror."""
    status = 1 if enabled else 0
    license_api(corp=corp).set_auto_active_status(corpid=corp.corpid, auto_active_status=status)
    row, _ = CorpLicenseSettings.objects.update_or_create(
        corp=corp, defaults={"auto_active_status": status, "synced_at": timezone.now()}
    )
    return row


def license_app_info_sync(*, corp: Corp, suite: Suite) -> AppLicenseInfo:
    """Read get_app_license_info (enforcement, trial window) for one app of a corp."""
    answer = license_api(suite.provider).get_app_license_info(
        corpid=corp.corpid, suite_id=suite.suite_id
    )
    trial = answer.get("trail_info") or {}  # (sic) WeCom's spelling
    row, _ = AppLicenseInfo.objects.update_or_create(
        corp=corp,
        suite=suite,
        defaults={
            "license_status": as_int(answer.get("license_status")),
            "trial_start": from_unix(trial.get("start_time")),
            "trial_end": from_unix(trial.get("end_time")),
            "license_check_time": from_unix(answer.get("license_check_time")),
            "raw": answer,
            "synced_at": timezone.now(),
        },
    )
    return row
