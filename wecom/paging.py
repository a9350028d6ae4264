"""Walking WeCom's cursor pages, and cutting lists to its batch size."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from wecom.endpoints import BATCH_MAX_ITEMS
from wecom.errors import WeComTransportError

T = TypeVar("T")


def chunked(items: Iterable[T], size: int = BATCH_MAX_ITEMS) -> Iterator[list[T]]:
    """Return an iterator of lists of at most `size` items (for the ≤1000 batch APIs)."""
    if size < 1:
        raise ValueError("size must be ≥ 1")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_pages(
    fetch: Callable[[str | None], Mapping[str, Any]], items_key: str, *, endpoint: str = "page"
) -> Iterator[Any]:
    """Return an iterator over `items_key` across all pages of a cursor-paginated API.

    `fetch(cursor)` returns one page; cursor is None for the first call (§1: omit it).
    A page ends the walk when `has_more` is falsy. A repeated or missing cursor while
    `has_more` is set would loop forever, so it raises WeComTransportError instead.
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = fetch(cursor)
        items = page.get(items_key) or []
        if not isinstance(items, list):
            raise WeComTransportError(endpoint=endpoint, errmsg=f"{items_key} is not a list")
        yield from items
        if not page.get("has_more"):
            return
        cursor = page.get("next_cursor") or None
        if not isinstance(cursor, str) or cursor in seen:
            raise WeComTransportError(
                endpoint=endpoint, errmsg="has_more set but next_cursor missing or repeated"
            )
        seen.add(cursor)
