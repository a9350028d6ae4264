"""What every per-token-kind facade shares: one token source, the one retry WeCom asks for.

A facade (``SuiteApi``, ``CorpApi``, ``ProviderApi``) only accepts a token source of
its own kind and only exposes its kind's endpoints, so sending a suite token to a
licence API cannot be written. A rejected token is refreshed once and the call repeated
once (protocol §9 "refresh"); every other retry decision belongs to the caller (a
Celery task), which sees typed errors only.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import ClassVar
from typing import TypeVar

from wecom.endpoints import ENDPOINTS
from wecom.endpoints import PAGE_LIMIT_MAX
from wecom.endpoints import Endpoint
from wecom.endpoints import TokenKind
from wecom.endpoints import endpoint
from wecom.errors import WeComTokenInvalid
from wecom.errors import WeComTransportError
from wecom.paging import iter_pages
from wecom.tokens import TokenSource
from wecom.transport import Transport
from wecom.transport import logger

JSON = dict[str, Any]
T = TypeVar("T")


def compact(**fields: Any) -> JSON:
    """Return the request body with None fields left out (WeCom treats absent as default)."""
    return {key: value for key, value in fields.items() if value is not None}


def check_page_limit(limit: int | None) -> None:
    if limit is not None and not 1 <= limit <= PAGE_LIMIT_MAX:
        raise ValueError(f"limit must be 1..{PAGE_LIMIT_MAX}, got {limit}")


def check_batch(ep: Endpoint, body: Mapping[str, Any] | None) -> None:
    # Refuse before any I/O: WeCom would fail the whole call (701026), and some APIs
    # (userid_to_openuserid) block for a day after abuse. Splitting is the caller's
    # job (see chunked()), because each chunk's per-item results must be handled.
    if ep.batch_field is None or body is None or ep.batch_field not in body:
        return
    items = body[ep.batch_field]
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise TypeError(f"{ep.name}: {ep.batch_field} must be a list")
    if len(items) > ep.batch_max:
        raise ValueError(
            f"{ep.name}: {len(items)} items in {ep.batch_field}, at most {ep.batch_max} "
            "per call; split with chunked()"
        )


def int_field(ep: Endpoint, body: Mapping[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WeComTransportError(endpoint=ep.name, errmsg=f"response {key} is not an int")
    return value


def str_field(ep: Endpoint, body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise WeComTransportError(endpoint=ep.name, errmsg=f"response lacks {key}")
    return value


def uses(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Mark a method as the typed entry point of registry endpoint `name`.

    Pure metadata: the registry test walks these marks to prove every endpoint
    is reachable through a typed method.
    """
    if name not in ENDPOINTS:
        raise KeyError(name)

    def mark(fn: Callable[..., T]) -> Callable[..., T]:
        fn.wecom_endpoint = name  # type: ignore[attr-defined]
        return fn

    return mark


class Facade:
    """Shared plumbing of the per-token-kind facades."""

    kind: ClassVar[TokenKind]

    def __init__(
        self, client: Transport, tokens: TokenSource, *, corp_id: str | None = None
    ) -> None:
        if getattr(tokens, "kind", None) != self.kind:
            raise TypeError(
                f"{type(self).__name__} needs a {self.kind} token source, "
                f"got {getattr(tokens, 'kind', None)!r}"
            )
        self._client = client
        self._tokens = tokens
        self._corp_id = corp_id

    def call(
        self,
        endpoint_name: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        """Return the decoded body of any registry endpoint of this facade's kind.

        For endpoints without a typed method's conveniences. Raises KeyError for an
        unknown name and TypeError (before any I/O) for another kind's endpoint.
        """
        ep = endpoint(endpoint_name)
        if ep.token is not self.kind:
            raise TypeError(
                f"{ep.name} needs a {ep.token} token; this facade holds a {self.kind} token"
            )
        return self._send(ep, json=json, params=params)

    def _call(
        self,
        name: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        return self._send(ENDPOINTS[name], json=json, params=params)

    def _send(
        self,
        ep: Endpoint,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        binary: bool = False,
    ) -> Any:
        # Belt and braces for the typed methods; call() checked already.
        if ep.token is not self.kind:
            raise TypeError(f"{ep.name} is not a {self.kind} endpoint")
        check_batch(ep, json)
        token = self._tokens.get()
        kwargs: dict[str, Any] = {
            "params": params,
            "json": json,
            "corp_id": self._corp_id,
            "binary": binary,
        }
        try:
            return self._client._request(ep, token=token, **kwargs)
        except WeComTokenInvalid as exc:
            rejected = exc
        # §9 "refresh": evict this token, get a new one, retry once. WeCom refused
        # the call at the token check, so repeating a write is safe here.
        fresh = self._tokens.refresh(rejected=token)
        if not fresh or fresh == token:
            raise rejected  # nothing newer (StaticToken, or refresh declined)
        logger.info(
            "wecom %s token rejected (errcode=%s); retrying once", ep.name, rejected.errcode
        )
        return self._client._request(ep, token=fresh, **kwargs)

    def _pages(
        self, name: str, body: Mapping[str, Any], *, limit: int | None
    ) -> Iterator[dict[str, Any]]:
        # Validation happens now, not on the first next(): this is not a generator.
        ep = ENDPOINTS[name]
        check_page_limit(limit)
        if ep.page_items is None:
            raise TypeError(f"{name} is not paginated")

        def fetch(cursor: str | None) -> JSON:
            return self._send(ep, json=compact(**body, limit=limit, cursor=cursor))

        return iter_pages(fetch, ep.page_items, endpoint=name)
