"""Licence callbacks that are not about an order: auto-activation, unlicensed members."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import LicenseAccount
from licensing.models import LicenseEventReceipt
from licensing.models import UnlicensedMember
from licensing.services.accounts import unlicensed_resolve
from licensing.services.common import as_int
from licensing.services.common import from_unix
from licensing.services.common import idempotency_key
from licensing.services.common import to_unix
from tenants.feed import feed_publish
from tenants.models import Corp
from tenants.models import Suite

# --- callbacks: auto-activation and unlicensed members ------------------------------------


def _receipt(key: str, info_type: str) -> bool:
    """Return True the first time ``key`` is seen (inside the caller's transaction)."""
    try:
        with transaction.atomic():
            LicenseEventReceipt.objects.create(key=key[:200], info_type=info_type)
    except IntegrityError:
        return False
    return True


def license_auto_activated(
    *, corp: Corp, accounts: Sequence[Mapping[str, Any]], scene: int | None, at: int | None
) -> list[LicenseAccount]:
    """Mirror an auto_activate callback (WeCom bound codes by itself); return the accounts.

    ``accounts``: [{"active_code", "type", "expire_time", "userid", "previous_status",
    "previous_active_code"}]. Running it twice changes nothing the second time.
    """
    codes = sorted(a.get("active_code") or "" for a in accounts)
    key = idempotency_key("auto_activate", corp.corpid, at, *codes)
    active_time = from_unix(at) or timezone.now()
    rows = []
    with transaction.atomic():
        if not _receipt(key, "auto_activate"):
            return list(LicenseAccount.objects.filter(corp=corp, active_code__in=codes))
        for account in accounts:
            code = account.get("active_code")
            if not code:
                continue
            row, _ = LicenseAccount.objects.get_or_create(
                corp=corp,
                active_code=code,
                defaults={"type": as_int(account.get("type"), AccountType.BASE)},
            )
            row.status = AccountStatus.ACTIVE
            row.userid = account.get("userid") or ""
            row.expire_time = from_unix(account.get("expire_time"))
            row.active_time = row.active_time or active_time
            previous = account.get("previous_active_code")
            if previous:
                row.merged_from_code = previous
                LicenseAccount.objects.filter(corp=corp, active_code=previous).update(
                    status=AccountStatus.MERGED, merged_to_code=code, updated_at=timezone.now()
                )
            row.save()
            rows.append(row)
        unlicensed_resolve(corp, {r.userid for r in rows})
        feed_publish(
            type="license.auto_activated",
            source_key=idempotency_key("license.auto_activated", key),
            corp=corp,
            data={
                "corpid": corp.corpid,
                "scene": scene,
                "accounts": [
                    {
                        "userid": r.userid,
                        "type": r.type,
                        "expire_time": to_unix(r.expire_time) if r.expire_time else None,
                    }
                    for r in rows
                ],
            },
        )
    return rows


def license_unlicensed_record(
    *, corp: Corp, userid: str, suite: Suite | None, at: int | None
) -> UnlicensedMember | None:
    """Record an unlicensed_notify (member opened the app without a license).

    Returns the member row, or None if this very event was recorded before.
    """
    key = idempotency_key("unlicensed_notify", corp.corpid, userid, at)
    seen = from_unix(at) or timezone.now()
    with transaction.atomic():
        if not _receipt(key, "unlicensed_notify"):
            return None
        member, created = UnlicensedMember.objects.get_or_create(
            corp=corp,
            userid=userid,
            defaults={"suite": suite, "first_seen_at": seen, "last_seen_at": seen},
        )
        if not created:
            UnlicensedMember.objects.filter(pk=member.pk).update(
                times_seen=F("times_seen") + 1,
                last_seen_at=seen,
                resolved_at=None,
                suite=suite or member.suite,
            )
            member.refresh_from_db()
        feed_publish(
            type="license.unlicensed",
            source_key=idempotency_key("license.unlicensed", key),
            suite=suite,
            corp=corp,
            data={
                "corpid": corp.corpid,
                "userid": userid,
                "suite_id": suite.suite_id if suite else None,
            },
        )
    return member
