"""API key format: ``wcp_<prefix>_<secret>``.

``prefix`` (12 hex characters) is public: it finds the row and names the key in admin
and the audit log. ``secret`` is 32 random bytes (base64url). Only the SHA-256 digest
of the whole key is stored: with 256 bits of entropy a plain hash is as good as a slow
one, and it keeps the per-request check cheap. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from dataclasses import field

KEY_PREFIX = "wcp_"
_KEY_RE = re.compile(r"^wcp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    prefix: str
    key: str = field(repr=False)
    key_hash: str = field(repr=False)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_generate() -> NewKey:
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(prefix=prefix, key=key, key_hash=key_digest(key))


def key_prefix_of(key: str) -> str | None:
    """Return the public prefix of a well-formed key, else None."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def key_matches(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(key_digest(key), key_hash)
