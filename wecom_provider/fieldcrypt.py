"""Secrets at rest: AES-256-GCM with a key ring separate from SECRET_KEY.

Stored form: ``v1:<key id>:<nonce b64>:<ciphertext+tag b64>``. The key id lets the
ring rotate online (new values use the primary key, old ones still open). The
associated data names the model, the column and the row's natural identity, so a
ciphertext copied into another row or column fails authentication instead of
leaking another tenant's secret. Every failure raises: a value that cannot be
opened is never handed back as if it were plaintext.

Models declare secrets with :class:`SealedSecret`; the registry of declarations
drives ``manage.py rotate_keys`` and the "no plaintext in a dump" tests.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)

VERSION = "v1"
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
NONCE_BYTES = 12


class FieldCryptError(Exception):
    """A sealed value could not be opened. Messages name the column, never the value."""


class MissingKeyError(FieldCryptError):
    """The value was sealed with a key id that is not in FIELD_ENCRYPTION_KEYS."""


class CorruptValueError(FieldCryptError):
    """Malformed, tampered, or bound to another row/column (authentication failed)."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class KeyRing:
    """Ordered keys; the first one seals new values, all of them open old ones."""

    keys: dict[str, bytes]
    primary_id: str
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    def __repr__(self) -> str:  # never print key material
        return f"KeyRing(primary={self.primary_id!r}, ids={list(self.keys)!r})"

    @classmethod
    def parse(cls, value: str) -> KeyRing:
        """Return the ring described by ``id:base64key,id2:base64key`` (newest first)."""
        keys: dict[str, bytes] = {}
        for position, item in enumerate(part.strip() for part in value.split(",")):
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep or not KEY_ID_RE.match(key_id):
                raise ImproperlyConfigured(
                    f"FIELD_ENCRYPTION_KEYS entry {position + 1} must look like id:base64key"
                )
            if key_id in keys:
                raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS repeats key id {key_id!r}")
            try:
                material = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                material = b""
            if len(material) != 32:
                raise ImproperlyConfigured(
                    f"FIELD_ENCRYPTION_KEYS key {key_id!r} must be 32 bytes of standard base64"
                )
            keys[key_id] = material
        if not keys:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds no key")
        return cls(keys=keys, primary_id=next(iter(keys)))

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            try:
                cipher = AESGCM(self.keys[key_id])
            except KeyError:
                raise MissingKeyError(
                    f"key id {key_id!r} is not in FIELD_ENCRYPTION_KEYS"
                ) from None
            self._ciphers[key_id] = cipher
        return cipher

    def seal(self, plaintext: str, *, aad: str) -> str:
        """Return ``plaintext`` encrypted under the primary key and bound to ``aad``."""
        # A fresh random 96-bit nonce per value: never reuse a nonce under one key.
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(self.primary_id).encrypt(nonce, plaintext.encode(), aad.encode())
        return f"{VERSION}:{self.primary_id}:{_b64e(nonce)}:{_b64e(sealed)}"

    def unseal(self, stored: str, *, aad: str) -> str:
        """Return the plaintext of ``stored``; raise unless it opens under ``aad``."""
        key_id = key_id_of(stored)
        _, _, nonce_text, ct_text = stored.split(":")
        try:
            nonce, ciphertext = _b64d(nonce_text), _b64d(ct_text)
        except (binascii.Error, ValueError):
            raise CorruptValueError("sealed value is not valid base64") from None
        if len(nonce) != NONCE_BYTES:
            raise CorruptValueError("sealed value has a bad nonce")
        try:
            plaintext = self._cipher(key_id).decrypt(nonce, ciphertext, aad.encode())
        except InvalidTag:
            raise CorruptValueError(
                "sealed value failed authentication (tampered, or copied from another row)"
            ) from None
        return plaintext.decode()


def key_id_of(stored: str) -> str:
    """Return the key id a stored value was sealed with; raise if it is not sealed."""
    parts = stored.split(":") if isinstance(stored, str) else []
    if len(parts) != 4 or parts[0] != VERSION or not KEY_ID_RE.match(parts[1]):
        raise CorruptValueError("value is not in the sealed format")
    return parts[1]


_ring: KeyRing | None = None
_ring_lock = threading.Lock()


def keyring() -> KeyRing:
    """Return the process's key ring, parsed once from settings."""
    global _ring
    if _ring is None:
        with _ring_lock:
            if _ring is None:
                _ring = _load_ring()
    return _ring


def _load_ring() -> KeyRing:
    from django.conf import settings

    value = settings.FIELD_ENCRYPTION_KEYS
    if not value:
        if not settings.DEBUG:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is not set")
        # Development without `make run`'s var/dev.env: values sealed now will not open
        # after a restart. Say so loudly rather than invent a fixed key.
        logger.warning("FIELD_ENCRYPTION_KEYS is empty: using an ephemeral development key")
        value = "ephemeral:" + base64.b64encode(os.urandom(32)).decode()
    return KeyRing.parse(value)


def _reset_ring(*, setting: str, **kwargs: Any) -> None:
    global _ring
    if setting == "FIELD_ENCRYPTION_KEYS":
        _ring = None


setting_changed.connect(_reset_ring)


# --- model integration -------------------------------------------------------------

_unseal_hooks: list[Callable[[str], None]] = []


def on_unseal(hook: Callable[[str], None]) -> None:
    """Register ``hook(plaintext)``, called whenever a secret is opened (log redaction)."""
    _unseal_hooks.append(hook)


class SealedSecret:
    """A plaintext view over a text column holding a sealed value.

    ``code = SealedSecret("code_sealed", row=lambda a: f"{a.suite_id}|{a.corp_id}")``
    reads and writes ``code_sealed``. ``row`` returns the row's immutable identity
    and must be set before the secret is assigned. An empty column reads as ``""``.
    """

    def __init__(self, column: str, *, row: Callable[[Any], str], remember: bool = True) -> None:
        self.column = column
        self.row = row
        # False for composite values (a whole callback payload): their owners register
        # the secret parts themselves, instead of one huge "secret" string.
        self.remember = remember
        self.name = ""
        self.model: type | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.model = owner
        SEALED_FIELDS.append(self)

    def aad(self, instance: Any) -> str:
        return self.aad_for(self.row(instance))

    def aad_for(self, row: str) -> str:
        """The associated data for the row whose identity is ``row``."""
        return f"{self.model._meta.label}.{self.name}|{row}"

    def seal_for(self, row: str, value: str) -> str:
        """Return what the column holds for ``value`` on the row ``row`` (raw inserts)."""
        return keyring().seal(value, aad=self.aad_for(row)) if value else ""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        stored = getattr(instance, self.column)
        if not stored:
            return ""
        try:
            plaintext = keyring().unseal(stored, aad=self.aad(instance))
        except FieldCryptError as exc:
            raise type(exc)(
                f"{instance._meta.label}.{self.name} (pk={instance.pk}): {exc}"
            ) from None
        if self.remember:
            for hook in _unseal_hooks:
                hook(plaintext)
        return plaintext

    def __set__(self, instance: Any, value: str | None) -> None:
        setattr(instance, self.column, self.seal_for(self.row(instance), value))


SEALED_FIELDS: list[SealedSecret] = []
