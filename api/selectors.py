"""Reads for the API, every one scoped by the calling client. Never writes.

Scope rules (fail-closed: an empty scope sees nothing):

- a client scoped to a **suite** sees every authorization of that suite;
- a client scoped to a **corp** sees that corp's authorizations (in any suite);
- a suite is visible if it is in the client's suites, or one of the client's corps
  authorized it; suite-level actions (install links, OAuth) need the suite itself;
- an event is visible if its suite is the client's, or its corp is the client's, or
  it has no suite and its corp is authorized in one of the client's suites.

Scope is expressed as subqueries on the client's M2M tables, so a scoped lookup is one
SQL query and nothing about the scope is cached between requests.
"""

from __future__ import annotations

import functools
import operator
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db import connections
from django.db.models import Exists
from django.db.models import OuterRef
from django.db.models import Q
from django.db.models import QuerySet
from django.utils import timezone

from api.models import ApiClient
from api.models import ApiKey
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import FeedEvent
from tenants.models import Suite
from wecom_provider import hotsql

_SuiteLink = ApiClient.suites.through
_CorpLink = ApiClient.corps.through


def _scope_suite_ids(client: ApiClient) -> QuerySet:
    return _SuiteLink.objects.filter(apiclient_id=client.pk).values("suite_id")


def _scope_corp_ids(client: ApiClient) -> QuerySet:
    return _CorpLink.objects.filter(apiclient_id=client.pk).values("corp_id")


# The tenant scope, the API's security boundary, defined once: an authorization is visible
# to a client iff the client is linked to its suite or to its corp. Both renderings are
# built from this table: the ORM filter (_authorization_scope) and the hot path's SQL
# (_scope_sql); tests/api/test_scope_agreement.py checks they agree on random clients ×
# tenants. (link table, the column it shares with the authorization)
SCOPE_LINKS = ((_SuiteLink, "suite_id"), (_CorpLink, "corp_id"))


def _authorization_scope(client: ApiClient) -> Q:
    """Return the filter of the authorizations ``client`` may see (ORM rendering)."""
    return functools.reduce(
        operator.or_,
        (
            Q(**{f"{column}__in": link.objects.filter(apiclient_id=client.pk).values(column)})
            for link, column in SCOPE_LINKS
        ),
    )


def _scope_sql(client_ref: str, authorization: str) -> str:
    """Return the condition "``client_ref`` may see the authorization aliased
    ``authorization``" (SQL rendering; ``client_ref`` is a parameter or a column)."""
    # Only names from _meta and the caller's fixed references go into the text.
    exists = [
        f'EXISTS (SELECT 1 FROM "{link._meta.db_table}" l{n} '  # noqa: S608
        f'WHERE l{n}."apiclient_id" = {client_ref} '
        f'AND l{n}."{column}" = {authorization}."{column}")'
        for n, (link, column) in enumerate(SCOPE_LINKS)
    ]
    return "(" + " OR ".join(exists) + ")"


# --- suites --------------------------------------------------------------------------


def suites_visible(*, client: ApiClient) -> QuerySet[Suite]:
    via_corps = Authorization.objects.filter(corp_id__in=_scope_corp_ids(client)).values("suite_id")
    return Suite.objects.filter(Q(pk__in=_scope_suite_ids(client)) | Q(pk__in=via_corps))


def suites_visible_annotated(*, client: ApiClient) -> QuerySet[Suite]:
    """Return visible suites with ``whole_suite``: scoped to the suite itself (not via corps)."""
    granted = _SuiteLink.objects.filter(apiclient_id=client.pk, suite_id=OuterRef("pk"))
    return suites_visible(client=client).annotate(whole_suite=Exists(granted))


def suite_visible(*, client: ApiClient, suite_id: str) -> Suite | None:
    return suites_visible(client=client).filter(suite_id=suite_id).first()


def suite_granted(*, client: ApiClient, suite: Suite) -> bool:
    """Return whether the client holds the whole suite (not just some of its corps)."""
    return _SuiteLink.objects.filter(apiclient_id=client.pk, suite_id=suite.pk).exists()


# --- authorizations (tenants) -------------------------------------------------------------


def authorizations_visible(*, client: ApiClient, suite: Suite | None = None) -> QuerySet:
    qs = Authorization.objects.filter(_authorization_scope(client))
    if suite is not None:
        qs = qs.filter(suite=suite)
    return qs.select_related("suite", "corp")


def model_columns(model, *names: str) -> tuple[str, ...]:
    """Return ``names`` (attnames) in the model's field order, as ``Model.from_db`` reads them."""
    wanted = set(names)
    ordered = tuple(f.attname for f in model._meta.concrete_fields if f.attname in wanted)
    if len(ordered) != len(wanted):
        raise ValueError(f"{model.__name__}: unknown column in {sorted(wanted)}")
    return ordered


@functools.cache
def _converters(model, names: tuple[str, ...], alias: str) -> list[list]:
    conn = connections[alias]
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    result = []
    for name in names:
        column = by_attname[name].get_col(model._meta.db_table)
        result.append(
            [(fn, column) for fn in conn.ops.get_db_converters(column)]
            + [(fn, column) for fn in column.get_db_converters(conn)]
        )
    return result


def instance_from_row(model, names: tuple[str, ...], values, *, alias: str = "default"):
    """Return a model instance from raw column values, as the ORM would build it.

    The backend's converters run first (SQLite hands back naive text datetimes and 0/1
    booleans, PostgreSQL typed values); columns not in ``names`` load on access.
    """
    conn = connections[alias]
    converted = []
    for value, converters in zip(values, _converters(model, names, alias), strict=True):
        for fn, column in converters:
            value = fn(value, column, conn)
        converted.append(value)
    return model.from_db(alias, names, converted)


_AUTH_FIELDS = model_columns(
    Authorization, "id", "suite_id", "corp_id", "status", "agent_id", "is_customized_app"
)
_SUITE_FIELDS = model_columns(Suite, "id", "provider_id", "suite_id", "name", "kind")
_CORP_FIELDS = model_columns(Corp, "id", "corpid", "name")
_KEY_FIELDS = model_columns(
    ApiKey, "id", "client_id", "prefix", "key_hash", "expires_at", "revoked_at", "last_used_at"
)
_CLIENT_FIELDS = model_columns(
    ApiClient, "id", "name", "rate_limit_per_minute", "revoked_at", "wecom_paths"
)


def _columns(alias: str, names: tuple[str, ...]) -> str:
    return ", ".join(f'{alias}."{name}"' for name in names)


# The hot path (every tenant-scoped request, the token endpoint above all) runs these as
# hand-written SQL: the ORM takes longer to compile the joins than PostgreSQL to run them.
# Table names come from _meta; every value is a bound parameter.
@functools.cache
def _tenant_sql(client_ref: str) -> tuple[str, str]:
    """Return (select list, joins + scope condition) for the tenant named by two parameters
    (suite_id, corpid), visible to the client ``client_ref`` (a parameter or a column)."""
    a, s, c = Authorization._meta, Suite._meta, Corp._meta
    select = (
        f"{_columns('a', _AUTH_FIELDS)}, {_columns('s', _SUITE_FIELDS)}, "
        f"{_columns('co', _CORP_FIELDS)}"
    )
    scope = _scope_sql(client_ref, "a")
    joins = (
        f'"{s.db_table}" s ON s."suite_id" = %s '
        f'LEFT JOIN "{c.db_table}" co ON co."corpid" = %s '
        f'LEFT JOIN "{a.db_table}" a ON a."suite_id" = s."id" AND a."corp_id" = co."id" '
        f"AND {scope}"
    )
    return select, joins


def _tenant_from(row) -> Authorization | None:
    first, second = len(_AUTH_FIELDS), len(_AUTH_FIELDS) + len(_SUITE_FIELDS)
    if row[0] is None:  # no such authorization, or not in the client's scope
        return None
    authorization = instance_from_row(Authorization, _AUTH_FIELDS, row[:first])
    authorization.suite = instance_from_row(Suite, _SUITE_FIELDS, row[first:second])
    authorization.corp = instance_from_row(Corp, _CORP_FIELDS, row[second:])
    return authorization


def authorization_visible(*, client: ApiClient, suite_id: str, corpid: str) -> Authorization | None:
    """Return the tenant if it exists and is in scope, else None (one query).

    The instances carry a few columns (suite and corp attached); others load on access.
    """
    select, joins = _tenant_sql("%s")
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {select} FROM (SELECT 1) one LEFT JOIN {joins} WHERE a."id" IS NOT NULL',  # noqa: S608
            [suite_id, corpid, client.pk, client.pk],
        )
        row = cursor.fetchone()
    return None if row is None else _tenant_from(row)


def api_key_lookup(
    *, prefix: str, tenant: tuple[str, str] | None = None
) -> tuple[ApiKey | None, Authorization | None]:
    """Return the key row for ``prefix`` (client attached) and, when ``tenant`` names
    (suite_id, corpid), that tenant if the key's client may see it: one query.

    Authentication runs this on every request; folding the tenant lookup of
    tenant-scoped URLs into it saves a round trip on the token endpoint. The tenant is
    only ever used once the key is verified, and only within this request.
    """
    k, c = ApiKey._meta, ApiClient._meta
    select = f"{_columns('k', _KEY_FIELDS)}, {_columns('c', _CLIENT_FIELDS)}"
    source = f'"{k.db_table}" k JOIN "{c.db_table}" c ON c."id" = k."client_id"'
    params: list = []
    if tenant is not None:
        tenant_select, tenant_joins = _tenant_sql('c."id"')
        select = f"{select}, {tenant_select}"
        source = f"{source} LEFT JOIN {tenant_joins}"
        params.extend(tenant)
    # Usually the request's first statement: a read, so it may be the health check too.
    row, _ = hotsql.fetch_one_rerunnable(
        f'SELECT {select} FROM {source} WHERE k."prefix" = %s',  # noqa: S608 (names from _meta)
        [*params, prefix],
    )
    if row is None:
        return None, None
    first, second = len(_KEY_FIELDS), len(_KEY_FIELDS) + len(_CLIENT_FIELDS)
    key = instance_from_row(ApiKey, _KEY_FIELDS, row[:first])
    key.client = instance_from_row(ApiClient, _CLIENT_FIELDS, row[first:second])
    return key, (_tenant_from(row[second:]) if tenant is not None else None)


def authorizations_search(
    *, queryset: QuerySet, status: str | None = None, search: str | None = None
) -> QuerySet:
    if status:
        queryset = queryset.filter(status=status)
    if search:
        queryset = queryset.filter(
            Q(corp__corpid__icontains=search)
            | Q(corp__name__icontains=search)
            | Q(corp__full_name__icontains=search)
        )
    return queryset


def corp_visible(*, client: ApiClient, corpid: str) -> Corp | None:
    """Return the corp if the client sees at least one of its authorizations."""
    return Corp.objects.filter(
        corpid=corpid,
        pk__in=Authorization.objects.filter(_authorization_scope(client)).values("corp_id"),
    ).first()


# --- events ----------------------------------------------------------------------------------


def events_visible(
    *, client: ApiClient, after: int = 0, types: list[str] | None = None
) -> QuerySet[FeedEvent]:
    """Return the client's feed after ``after`` (by id), oldest first.

    Events younger than API_EVENTS_SETTLE_SECONDS are held back: ids are assigned at
    insert, so a transaction still open could commit a smaller id after a reader moved
    past it. Waiting a little makes the id order a stable cursor.
    """
    corps_of_suites = Authorization.objects.filter(suite_id__in=_scope_suite_ids(client)).values(
        "corp_id"
    )
    scope = (
        Q(suite_id__in=_scope_suite_ids(client))
        | Q(corp_id__in=_scope_corp_ids(client))
        | Q(suite__isnull=True, corp_id__in=corps_of_suites)
    )
    qs = FeedEvent.objects.filter(scope).filter(id__gt=after)
    settle = settings.API_EVENTS_SETTLE_SECONDS
    if settle:
        qs = qs.filter(created_at__lte=timezone.now() - timedelta(seconds=settle))
    if types:
        qs = qs.filter(type__in=types)
    return qs.select_related("suite", "corp").order_by("id")


# --- licenses (of one visible corp) -------------------------------------------------------


def license_orders_of(*, corp: Corp, status: int | None = None) -> QuerySet[LicenseOrder]:
    qs = LicenseOrder.objects.filter(corp=corp)
    if status is not None:
        qs = qs.filter(status=status)
    return qs


def license_order_of(*, corp: Corp, order_id: str) -> LicenseOrder | None:
    return LicenseOrder.objects.filter(corp=corp, order_id=order_id).select_related("corp").first()


def license_accounts_of(
    *,
    corp: Corp,
    status: int | None = None,
    account_type: int | None = None,
    userid: str | None = None,
    order_id: str | None = None,
) -> QuerySet[LicenseAccount]:
    qs = LicenseAccount.objects.filter(corp=corp).select_related("order")
    if status is not None:
        qs = qs.filter(status=status)
    if account_type is not None:
        qs = qs.filter(type=account_type)
    if userid:
        qs = qs.filter(userid=userid)
    if order_id:
        qs = qs.filter(order__order_id=order_id)
    return qs
