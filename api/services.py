"""Writes for the API app: clients and keys, the audit log, JS-SDK tickets.

Views, admin actions and the ``create_api_client`` command only call these.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from django.db import connection
from django.db import transaction
from django.utils import timezone

from api.keys import key_generate
from api.models import MAX_ACTIVE_KEYS
from api.models import ApiClient
from api.models import ApiKey
from api.models import AuditLog
from api.models import JsapiTicket
from tenants.fetching import MIN_SERVE_LIFE
from tenants.fetching import AuthorizationInactive
from tenants.fetching import Failure
from tenants.fetching import Fetcher
from tenants.fetching import TokenValue
from tenants.fetching import invalidate_rows
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Suite
from tenants.wecom import corp_api
from wecom.errors import WeComCorpGone
from wecom.errors import WeComPermanentError
from wecom_provider import hotsql
from wecom_provider.observability.context import get_request_id

logger = logging.getLogger(__name__)


class ApiClientError(Exception):
    """A client or key operation is refused (message names the client, never a key)."""


# --- clients and keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key. ``key`` exists only here: it is never stored or shown again."""

    row: ApiKey
    key: str = field(repr=False)


def _expiry(expires_in_days: int | None) -> datetime | None:
    if expires_in_days is None:
        return None
    if expires_in_days < 1:
        raise ApiClientError("expires-in-days must be at least 1")
    return timezone.now() + timedelta(days=expires_in_days)


def api_client_create(
    *,
    name: str,
    suite_ids: Iterable[str] = (),
    corpids: Iterable[str] = (),
    expires_in_days: int | None = None,
    rate_limit_per_minute: int | None = None,
    description: str = "",
    wecom_paths: Iterable[str] = (),
    actor: str = "system",
) -> tuple[ApiClient, IssuedKey]:
    """Create a client with its scope and first key; return both (the key only here).

    ``wecom_paths``: the WeCom API path patterns it may call through the gateway.
    """
    from api.gateway.policy import patterns_problems

    wecom_paths = list(dict.fromkeys(wecom_paths))
    if problems := patterns_problems(wecom_paths):
        raise ApiClientError("; ".join(problems))
    suite_ids, corpids = list(dict.fromkeys(suite_ids)), list(dict.fromkeys(corpids))
    suites = list(Suite.objects.filter(suite_id__in=suite_ids))
    missing = set(suite_ids) - {s.suite_id for s in suites}
    if missing:
        raise ApiClientError(f"unknown suite(s): {', '.join(sorted(missing))}")
    corps = list(Corp.objects.filter(corpid__in=corpids))
    missing = set(corpids) - {c.corpid for c in corps}
    if missing:
        raise ApiClientError(f"unknown corp(s): {', '.join(sorted(missing))}")
    expires_at = _expiry(expires_in_days)
    with transaction.atomic():
        if ApiClient.objects.filter(name=name).exists():
            raise ApiClientError(f"an API client named {name!r} exists; use --rotate")
        client = ApiClient.objects.create(
            name=name,
            description=description,
            rate_limit_per_minute=rate_limit_per_minute,
            wecom_paths=wecom_paths,
        )
        client.suites.set(suites)
        client.corps.set(corps)
        issued = _key_issue(client, expires_at=expires_at, actor=actor)
    return client, issued


def api_key_issue(
    *, client: ApiClient, expires_in_days: int | None = None, actor: str = "system"
) -> IssuedKey:
    """Add a key to ``client`` (rotation); refuse when it already has two usable keys."""
    expires_at = _expiry(expires_in_days)
    with transaction.atomic():
        # Lock the client: two concurrent rotations must not both pass the count.
        client = ApiClient.objects.select_for_update().get(pk=client.pk)
        if client.is_revoked:
            raise ApiClientError(f"API client {client.name!r} is revoked")
        usable = client.keys.filter(ApiKey.usable_q()).count()
        if usable >= MAX_ACTIVE_KEYS:
            raise ApiClientError(
                f"API client {client.name!r} already has {usable} usable keys; "
                "revoke the old one first"
            )
        return _key_issue(client, expires_at=expires_at, actor=actor)


def _key_issue(client: ApiClient, *, expires_at: datetime | None, actor: str) -> IssuedKey:
    new = key_generate()
    row = ApiKey.objects.create(
        client=client,
        prefix=new.prefix,
        key_hash=new.key_hash,
        expires_at=expires_at,
        created_by=actor[:150],
    )
    return IssuedKey(row=row, key=new.key)


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke one key now (the next request with it gets 401); False if it already was."""
    return bool(
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    )


def api_client_revoke(*, client: ApiClient) -> bool:
    """Revoke the client and every key of it at once."""
    now = timezone.now()
    with transaction.atomic():
        changed = ApiClient.objects.filter(pk=client.pk, revoked_at__isnull=True).update(
            revoked_at=now
        )
        ApiKey.objects.filter(client_id=client.pk, revoked_at__isnull=True).update(revoked_at=now)
    return bool(changed)


# --- audit ------------------------------------------------------------------------------------


def _outcome(status_code: int) -> str:
    if status_code < 400:
        return AuditLog.Outcome.OK
    return {
        401: AuditLog.Outcome.DENIED,
        403: AuditLog.Outcome.DENIED,
        404: AuditLog.Outcome.NOT_FOUND,
        409: AuditLog.Outcome.CONFLICT,
        429: AuditLog.Outcome.THROTTLED,
        502: AuditLog.Outcome.WECOM_ERROR,
        503: AuditLog.Outcome.UNAVAILABLE,
    }.get(
        status_code,
        AuditLog.Outcome.INVALID if status_code < 500 else AuditLog.Outcome.ERROR,
    )


def audit_record(
    *,
    client: ApiClient,
    key: ApiKey,
    action: str,
    method: str,
    status_code: int,
    suite_id: str = "",
    corpid: str = "",
    detail: dict | None = None,
) -> None:
    """Append one audit row. ``detail`` holds ids only, never a token or key.

    A plain prepared INSERT (every audited request runs it, the token endpoint above
    all): the ORM's save machinery costs more than the statement itself.
    """
    values = {
        "created_at": connection.ops.adapt_datetimefield_value(timezone.now()),
        "client_id": client.pk,
        "key_prefix": key.prefix,
        "suite_id": suite_id[:64],
        "corpid": corpid[:64],
        "action": action[:64],
        "method": method[:8],
        "outcome": _outcome(status_code),
        "status_code": status_code,
        "request_id": (get_request_id() or "")[:64],
        # JSON text: PostgreSQL casts the untyped literal to jsonb; SQLite stores the text.
        "detail": json.dumps(detail or {}, separators=(",", ":")),
    }
    hotsql.fetch_one(_audit_insert_sql(tuple(values)), list(values.values()))


@functools.cache
def _audit_insert_sql(attnames: tuple[str, ...]) -> str:
    meta = AuditLog._meta
    column_of = {f.attname: f.column for f in meta.concrete_fields}
    columns = ", ".join(f'"{column_of[name]}"' for name in attnames)
    placeholders = ", ".join(["%s"] * len(attnames))
    return f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({placeholders})'  # noqa: S608


# --- JS-SDK tickets --------------------------------------------------------------------------

# Hand out a ticket only with this much life left: the page signs wx.config with it and
# the browser may take a while to call WeCom (tenants.fetching.MIN_SERVE_LIFE).
TICKET_MIN_LIFE = MIN_SERVE_LIFE

TicketValue = TokenValue


def _ticket_key(authorization: Authorization, kind: str) -> str:
    return f"jsapi:{kind}:{authorization.suite.suite_id}:{authorization.corp.corpid}"


class TicketFetcher(Fetcher):
    """A corp's (``corp``) or app's (``agent``) JS-SDK ticket (one JsapiTicket row).

    Fetched with the corp token: a refused corp token (after the client's one refresh
    and retry) or an unavailable one is an upstream failure (short backoff). A ticket
    call WeCom refuses for good (no permission 48002, wrong kind 42012, corp gone) is
    backed off long and flagged: retrying cannot help and WeCom counts every call.
    """

    model = JsapiTicket
    cache_prefix = "ticket"
    count_field = "fetch_count"
    metric_kind = "jsapi"

    def __init__(self, authorization: Authorization, kind: str) -> None:
        super().__init__(_ticket_key(authorization, kind))
        self.authorization = authorization
        self.kind = kind

    @property
    def lock_key(self) -> str:
        return self.key  # "jsapi:…", the lock name tickets always used

    def load_row(self) -> JsapiTicket:
        row, _ = JsapiTicket.objects.get_or_create(
            owner_key=self.key, defaults={"authorization": self.authorization, "kind": self.kind}
        )
        return row

    def fetch(self):
        current = Authorization.objects.only("status").get(pk=self.authorization.pk)
        if not current.is_active:
            raise AuthorizationInactive(f"authorization {self.authorization} is {current.status}")
        api = corp_api(self.authorization)
        return api.get_jsapi_ticket() if self.kind == "corp" else api.get_agent_jsapi_ticket()

    def classify(self, exc: Exception) -> Failure:
        failure = super().classify(exc)
        if failure in (Failure.SYSTEM, Failure.CORP_GONE) and isinstance(
            exc, WeComPermanentError | WeComCorpGone
        ):
            return Failure.CREDENTIAL  # the tenant itself is handled by its corp token
        return failure


def jsapi_ticket_get(
    *, authorization: Authorization, kind: str, rejected: str | None = None
) -> TicketValue:
    """Return the corp's (``corp``) or app's (``agent``) JS-SDK ticket, ≥5 min of life left.

    Redis → database → WeCom, through the same machinery as access tokens
    (tenants.fetching): single flight under a per-ticket lock with a re-check, CAS on
    the generation (``jsapi_tickets_invalidate`` bumps it: a ticket fetched while the
    tenant was suspended, cancelled or reset is dropped, never served), a failure
    remembered with a backoff (CredentialBackoff: 503 + Retry-After, no WeCom call) and
    at most one forced refetch of a ``rejected`` ticket per cool-down.
    """
    if kind not in JsapiTicket.Kind.values:
        raise ValueError(f"unknown ticket kind {kind!r}")
    if not authorization.is_active:
        # Revocation on every path, the cache included (the API passes this request's row).
        raise AuthorizationInactive(f"authorization {authorization} is {authorization.status}")
    return TicketFetcher(authorization, kind).get(rejected=rejected)


def jsapi_tickets_invalidate(*, authorization: Authorization) -> None:
    """Forget the corp's tickets (the next signature fetches new ones).

    Bumps each ticket's generation (a fetch in flight cannot store its ticket), fences
    the Redis copies and clears a remembered failure (a new code deserves a try).
    """
    invalidate_rows(
        JsapiTicket.objects.filter(authorization=authorization),
        cache_prefix=TicketFetcher.cache_prefix,
    )


def jsapi_signature(
    *, ticket: str, url: str, nonce: str | None = None, timestamp: int | None = None
) -> tuple[str, str, int]:
    """Return (signature, nonce, timestamp) for wx.config / wx.agentConfig (protocol §5.8).

    sha1 over ``jsapi_ticket=T&noncestr=N&timestamp=TS&url=U`` in that order, the URL
    unencoded and without its ``#fragment``.
    """
    nonce = nonce or secrets.token_hex(8)
    timestamp = int(time.time()) if timestamp is None else timestamp
    url = url.split("#", 1)[0]
    plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest(), nonce, timestamp  # noqa: S324 (WeCom's)
