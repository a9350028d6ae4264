"""Sealed values held in Redis (the token and JS-SDK ticket caches), by key id.

The token cache (``tenants.credentials``, ``token:<owner>``) and the ticket cache
(``api.services``, ``ticket:<owner>``) keep the database row's *sealed* value. After a
rotation re-seals the rows, cached copies may still be under the old key: retiring that
key would make every read of them fail until they expire. ``rotate_keys`` uses this
module to count them and to drop them; a dropped entry only costs one database read
(the row is already re-sealed), so dropping is safe while the service runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from django.core.cache import cache

from wecom_provider.fieldcrypt import FieldCryptError
from wecom_provider.fieldcrypt import key_id_of

# Cache key patterns whose values are dicts with the sealed value under "sealed".
SEALED_CACHE_PATTERNS = ("token:*", "ticket:*")


def _entries() -> Iterator[tuple[str, str]]:
    for pattern in SEALED_CACHE_PATTERNS:
        for key in cache.iter_keys(pattern):
            entry = cache.get(key)
            if isinstance(entry, dict) and entry.get("sealed"):
                yield key, entry["sealed"]


def _key_id(sealed: str) -> str:
    try:
        return key_id_of(sealed)
    except FieldCryptError:
        return "<unreadable>"


def cached_usage() -> Counter:
    """Return ``{key id: number of cached values sealed with it}``."""
    return Counter(_key_id(sealed) for _, sealed in _entries())


def drop_not_under(primary: str) -> int:
    """Delete cached values not sealed with ``primary``; return how many were dropped."""
    stale = [key for key, sealed in _entries() if _key_id(sealed) != primary]
    for key in stale:
        # A reader that refilled the entry meanwhile wrote the row's value, which is
        # under the primary key already; deleting it too only costs one database read.
        cache.delete(key)
    return len(stale)
