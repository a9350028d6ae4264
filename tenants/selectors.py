"""Reads for the tenants app: querysets and lookups, never a write."""

from __future__ import annotations

import math
from datetime import datetime

from django.db.models import Q
from django.db.models import QuerySet
from django.utils import timezone

from tenants.models import SUITE_TICKET_STALE_AFTER
from tenants.models import Authorization
from tenants.models import Suite


def authorization_for(*, suite_id: str, corpid: str) -> Authorization | None:
    """Return the authorization of ``corpid`` for ``suite_id`` (any status), or None."""
    return (
        Authorization.objects.select_related("suite", "corp")
        .filter(suite__suite_id=suite_id, corp__corpid=corpid)
        .first()
    )


def suite_ticket_stale_q(*, now: datetime | None = None) -> Q:
    """Return the filter of suites whose newest ticket is stale (``Suite.ticket_is_stale``).

    Stale: no ticket, or none younger than SUITE_TICKET_STALE_AFTER by WeCom's
    TimeStamp (WeCom pushes one every 10 minutes). The column holds whole seconds, so
    "older than the cutoff" is "before the cutoff rounded up": the same answer as the
    model's own check, to the second.
    """
    cutoff = math.ceil(((now or timezone.now()) - SUITE_TICKET_STALE_AFTER).timestamp())
    return Q(suite_ticket_timestamp__isnull=True) | Q(suite_ticket_timestamp__lt=cutoff)


def suites_with_stale_ticket(*, now: datetime | None = None) -> QuerySet[Suite]:
    """Return the suites without a fresh ticket (their suite token cannot be renewed)."""
    return Suite.objects.filter(suite_ticket_stale_q(now=now))
