"""Scrub secrets out of text before it reaches a log line.

Two layers, applied by ``scrub()``:

1. Patterns: the values of keys that always hold secrets (``access_token=…`` in a URL,
   ``"permanent_code": "…"`` in JSON or a dict repr, ``<SuiteTicket>…</SuiteTicket>`` in a
   callback, ``Authorization: Bearer …``) become ``[REDACTED]`` whatever the value is.
2. Values: domain code calls ``remember_secret(value)`` whenever it decrypts or receives a
   secret, and that exact value is removed wherever it appears (an exception message, a
   repr, a URL the patterns did not recognise).

The value registry is per process, bounded (oldest forgotten first) and thread-safe. No
Django imports: the logging configuration loads this module before apps are ready.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from urllib.parse import quote

REDACTED = "[REDACTED]"

# Keys whose value is a secret wherever they appear. Matched case-insensitively and as
# whole words, so ``errcode`` or ``status_code`` are not touched by ``code``.
SECRET_KEYS: tuple[str, ...] = (
    "access_token",
    "suite_access_token",
    "provider_access_token",
    "corpsecret",
    "secret",
    "provider_secret",
    "suite_secret",
    "suite_ticket",
    "permanent_code",
    "auth_code",
    "pre_auth_code",
    "code",
    "ticket",
    "jsapi_ticket",
    "user_ticket",
    "AuthCode",
    "PermanentCode",
    "SuiteTicket",
    "Encrypt",
    "EncodingAESKey",
    "encoding_aes_key",
    "aes_key",
    "token",
    "password",
    "passwd",
    "api_key",
    "sessionid",
    "csrftoken",
)
# Any other key ending in one of these is treated the same way (refresh_token, corp_secret,
# ProviderSecret, db_password …).
_SECRET_KEY_SUFFIXES = ("token", "secret", "ticket", "password", "aeskey", "aes_key")

_KEY = (
    r"(?:"
    + "|".join(re.escape(key) for key in sorted(SECRET_KEYS, key=len, reverse=True))
    + r"|\w*(?:"
    + "|".join(_SECRET_KEY_SUFFIXES)
    + r"))"
)
_NOT_DONE = r"(?!\[REDACTED\])"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # <SuiteTicket><![CDATA[…]]></SuiteTicket> and <AuthCode>…</AuthCode> (callback XML).
    (
        re.compile(rf"(<({_KEY})>)(?:<!\[CDATA\[.*?\]\]>|[^<]*)(</\2>)", re.IGNORECASE | re.DOTALL),
        rf"\1{REDACTED}\3",
    ),
    # "key": "value" / 'key': 'value' (JSON, dict reprs), also JSON escaped inside a string.
    (
        re.compile(
            rf"""(?P<head>(?P<q>\\?["'])(?:{_KEY})(?P=q)\s*:\s*(?P<v>\\?["'])){_NOT_DONE}"""
            r"""(?:(?!(?P=v))(?:\\.|.))*(?P=v)""",
            re.IGNORECASE | re.DOTALL,
        ),
        rf"\g<head>{REDACTED}\g<v>",
    ),
    # "key": 1234 (a number under a secret key).
    (
        re.compile(rf"""((\\?["'])(?:{_KEY})\2\s*:\s*)-?\d[\w.+-]*""", re.IGNORECASE),
        rf"\1{REDACTED}",
    ),
    # Authorization: Bearer xxx / Basic xxx, in headers, reprs and curl lines.
    (
        re.compile(
            rf"""(authorization["']?\s*[:=]\s*["']?(?:bearer|basic|token)\s+){_NOT_DONE}"""
            r"""[^\s"',;]+""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    (
        re.compile(rf"\b(bearer\s+){_NOT_DONE}[A-Za-z0-9._~+/=-]{{8,}}", re.IGNORECASE),
        rf"\1{REDACTED}",
    ),
    # key='quoted value' (kwargs reprs, shell lines).
    (
        re.compile(
            rf"""(?<![\w-])(?P<head>(?:{_KEY})\s*[:=]\s*(?P<v>["'])){_NOT_DONE}"""
            r"""(?:(?!(?P=v))(?:\\.|.))*(?P=v)""",
            re.IGNORECASE,
        ),
        rf"\g<head>{REDACTED}\g<v>",
    ),
    # key=value (query strings, form bodies, "k=v" log text) and key: value (plain text).
    (
        re.compile(
            rf"""(?<![\w-])((?:{_KEY})\s*[:=]\s*){_NOT_DONE}[^\s&"',;<>{{}}\[\]()\\]+""",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
)


def scrub_patterns(text: str) -> str:
    """Return ``text`` with the values of known secret keys replaced by ``[REDACTED]``."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretRegistry:
    """A bounded set of secret values to remove from text, most recent kept.

    Matching is exact and case-sensitive. Values are indexed by their first
    ``min_length`` characters: one compiled regex finds every position where a known
    prefix starts (a zero-width lookahead, so overlapping candidates are all seen) and
    the full values are then checked there. Compiling costs tens of milliseconds for
    thousands of values, so ``remember()`` never compiles: new values wait in a
    "pending" tuple, searched with plain substring tests, and ``scrub()`` rebuilds the
    index once enough of them have accumulated (lazily, so remembering many values in a
    row costs one rebuild, not one per value).
    """

    def __init__(self, *, max_size: int = 4096, min_length: int = 8, max_pending: int = 32):
        self.max_size = max_size
        self.min_length = min_length
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._values: OrderedDict[str, None] = OrderedDict()
        # Process-lifetime secrets (SECRET_KEY, key material): never evicted, however
        # many per-tenant values pass through the bounded part.
        self._pinned: set[str] = set()
        # Immutable snapshot, replaced whole and read without the lock:
        # (regex over known prefixes, prefix -> values longest first, pending values).
        self._snapshot: _Snapshot = (None, {}, ())

    def __len__(self) -> int:
        return len(self._values)

    def remember(self, value: str, *, pin: bool = False) -> None:
        """Add ``value`` (and its URL-encoded form) to the set; short values are ignored.

        ``pin``: keep it for the life of the process instead of among the most recent.
        """
        if not isinstance(value, str) or len(value) < self.min_length:
            return
        variants = dict.fromkeys((value, quote(value, safe="")))
        with self._lock:
            new = tuple(v for v in variants if v not in self._values and v not in self._pinned)
            if pin:
                self._pinned.update(variants)
                if new:
                    regex, index, pending = self._snapshot
                    self._snapshot = (regex, index, pending + new)
                return
            for variant in variants:
                self._values[variant] = None
                self._values.move_to_end(variant)
            while len(self._values) > self.max_size:
                # An evicted value stays in the compiled index until the next rebuild:
                # over-redacting for a while is harmless.
                self._values.popitem(last=False)
            if new:
                regex, index, pending = self._snapshot
                self._snapshot = (regex, index, pending + new)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pinned.clear()
            self._snapshot = (None, {}, ())

    def _rebuild_threshold(self) -> int:
        # Substring tests are cheap; allow more pending values when the index is large
        # (and so slower to rebuild).
        return max(self.max_pending, len(self._values) // 16)

    def _snapshot_for_scrub(self) -> _Snapshot:
        snapshot = self._snapshot
        if len(snapshot[2]) <= self._rebuild_threshold():
            return snapshot
        # One thread rebuilds; the others keep using the current snapshot meanwhile.
        if not self._lock.acquire(blocking=False):
            return snapshot
        try:
            self._snapshot = self._build()
            return self._snapshot
        finally:
            self._lock.release()

    def _build(self) -> _Snapshot:
        if not self._values and not self._pinned:
            return (None, {}, ())
        grouped: dict[str, list[str]] = {}
        for value in [*self._values, *self._pinned]:
            grouped.setdefault(value[: self.min_length], []).append(value)
        index = {
            prefix: tuple(sorted(values, key=len, reverse=True))
            for prefix, values in grouped.items()
        }
        regex = re.compile(f"(?=(?:{_trie_pattern(index)}))")
        # re.compile keeps every pattern it compiled in the re module's cache (512 of
        # them in 3.11): each rebuild's index, about 300 KB compiled at 4 096 values,
        # would stay alive there long after this snapshot is replaced, 100+ MB per
        # process once enough tenants passed through. Nothing here asks the cache for it
        # again, so empty it (the others' patterns are recompiled when next used).
        re.purge()
        return (regex, index, ())

    def scrub(self, text: str) -> str:
        """Return ``text`` with every remembered value replaced by ``[REDACTED]``."""
        if not text:
            return text
        regex, index, pending = self._snapshot_for_scrub()
        spans: list[tuple[int, int]] = []
        if regex is not None:
            size = self.min_length
            for match in regex.finditer(text):
                start = match.start()
                for value in index.get(text[start : start + size], ()):
                    if text.startswith(value, start):
                        spans.append((start, start + len(value)))
                        break
        for value in pending:
            start = text.find(value)
            while start != -1:
                spans.append((start, start + len(value)))
                start = text.find(value, start + 1)
        if not spans:
            return text
        return _replace_spans(text, spans)


_Snapshot = tuple[re.Pattern[str] | None, dict[str, tuple[str, ...]], tuple[str, ...]]


def _replace_spans(text: str, spans: list[tuple[int, int]]) -> str:
    spans.sort()
    out: list[str] = []
    cursor = 0
    current_start, current_end = spans[0]
    for start, end in spans[1:]:
        if start <= current_end:  # overlapping or touching: one redaction
            current_end = max(current_end, end)
            continue
        out.append(text[cursor:current_start])
        out.append(REDACTED)
        cursor = current_end
        current_start, current_end = start, end
    out.append(text[cursor:current_start])
    out.append(REDACTED)
    out.append(text[current_end:])
    return "".join(out)


def _trie_pattern(index: dict[str, tuple[str, ...]]) -> str:
    """Return a regex matching any key of ``index`` (all the same length), as a trie."""
    trie: dict = {}
    for prefix in index:
        node = trie
        for char in prefix:
            node = node.setdefault(char, {})

    def build(node: dict) -> str:
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items())]
        if not branches:
            return ""
        if len(branches) == 1:
            return branches[0]
        return "(?:" + "|".join(branches) + ")"

    return build(trie)


_registry = SecretRegistry()


def remember_secret(value: str, *, pin: bool = False) -> None:
    """Make sure ``value`` never appears in a log line written by this process.

    Call it wherever a secret is decrypted or received (permanent codes, tokens, tickets,
    suite and provider secrets). Values shorter than 8 characters are ignored; the 4096
    most recently remembered values are kept, plus every ``pin=True`` value (secrets that
    live as long as the process, such as SECRET_KEY).
    """
    _registry.remember(value, pin=pin)


def forget_all_secrets() -> None:
    """Empty the registry (tests)."""
    _registry.clear()


def scrub(text: str) -> str:
    """Return ``text`` without secrets: known-key patterns and remembered values."""
    if not text:
        return text
    # Remembered values first: a pattern could split a value it only partly recognises.
    return scrub_patterns(_registry.scrub(text))
