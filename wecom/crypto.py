"""Callback encryption for WeCom (WXBizMsgCrypt-compatible), protocol doc §7.

Every callback WeCom pushes, and every URL-verification GET, is signed with the
callback Token and AES-256-CBC encrypted with the EncodingAESKey. This module is
the only place that knows the wire format:

    signature  = sha1(sort(token, timestamp, nonce, encrypt)), lowercase hex
    plaintext  = random(16) ‖ uint32_be(len(msg)) ‖ msg ‖ receive_id
    encrypt    = base64(AES-256-CBC(pkcs7_32(plaintext), key, iv=key[:16]))

No Django imports: the simulator and the platform both use it.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Callable
from collections.abc import Iterable
from typing import ClassVar

from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers import modes

__all__ = [
    "CallbackCrypto",
    "CallbackCryptoError",
    "IllegalBuffer",
    "InvalidAesKey",
    "InvalidBase64",
    "InvalidPadding",
    "InvalidSignature",
    "MalformedCiphertext",
    "ReceiveIdMismatch",
    "sign",
]

# WeCom pads to 32-byte blocks, not the AES block size (§7.4 step 2).
BLOCK_SIZE = 32
_AES_BLOCK = 16
_RANDOM_LEN = 16
_LENGTH_LEN = 4
_HEADER_LEN = _RANDOM_LEN + _LENGTH_LEN
# Smallest ciphertext that can hold the header: 20 bytes padded up to one 32-byte
# block. Anything shorter cannot be a WeCom message (nor a 16-padded interop one).
_MIN_CIPHERTEXT = 32
_KEY_RE = re.compile(r"[A-Za-z0-9+/]{43}")
# pad value -> the expected padding suffix, so the check is one endswith() with no
# per-call allocation.
_PADS = tuple(bytes((n,)) * n for n in range(BLOCK_SIZE + 1))


class CallbackCryptoError(Exception):
    """Base for every callback crypto failure.

    Messages are fixed strings: they never carry the token, the key, the
    ciphertext or any plaintext, so they are safe to log. ``code`` is the
    matching WXBizMsgCrypt error code (§7.5).
    """

    code: ClassVar[int] = -40007
    default_message: ClassVar[str] = "callback crypto failed"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class InvalidSignature(CallbackCryptoError):
    """msg_signature does not match sha1(sort(token, timestamp, nonce, encrypt))."""

    code = -40001
    default_message = "msg_signature does not match"


class InvalidAesKey(CallbackCryptoError):
    """EncodingAESKey is not 43 base64 characters."""

    code = -40004
    default_message = "EncodingAESKey must be 43 base64 characters"


class ReceiveIdMismatch(CallbackCryptoError):
    """The receive id inside the plaintext is not one this URL accepts."""

    code = -40005
    default_message = "receive id does not match"


class MalformedCiphertext(CallbackCryptoError):
    """The ciphertext cannot be a WXBizMsgCrypt message (length, block, padding)."""

    code = -40007
    default_message = "ciphertext is malformed"


class InvalidBase64(MalformedCiphertext):
    """The ciphertext (or echostr) is not standard padded base64."""

    code = -40010
    default_message = "ciphertext is not valid base64"


class InvalidPadding(MalformedCiphertext):
    """The decrypted PKCS#7 padding is not 1..32 bytes of the same value."""

    code = -40007
    default_message = "ciphertext padding is invalid"


class IllegalBuffer(MalformedCiphertext):
    """The length prefix runs past the plaintext, or the message is not UTF-8."""

    code = -40008
    default_message = "decrypted buffer is illegal"


def sign(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """Return the lowercase hex SHA-1 msg_signature of the four strings.

    Sorting str compares code points, which orders the same as UTF-8 bytes, so
    this matches WeCom's byte-order sort. surrogatepass keeps a stray lone
    surrogate from raising here: such input just never matches.
    """
    joined = "".join(sorted((token, timestamp, nonce, encrypt)))
    return hashlib.sha1(joined.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324


def _aes_key(encoding_aes_key: str) -> bytes:
    """Return the 32-byte AES key encoded by a 43-character EncodingAESKey."""
    if not isinstance(encoding_aes_key, str) or not _KEY_RE.fullmatch(encoding_aes_key):
        raise InvalidAesKey
    # 43 chars + "=" always decode to 32 bytes; a2b_base64 ignores non-zero bits in
    # the last character, which is the leniency §7.3 asks for.
    return binascii.a2b_base64(encoding_aes_key + "=")


def _as_ids(ids: Iterable[str]) -> Iterable[str]:
    """Return ids as an iterable of ids; a bare str is one id, not its characters."""
    return (ids,) if isinstance(ids, str) else ids


def _id_set(ids: Iterable[str]) -> frozenset[bytes]:
    """Return the UTF-8 forms of ids, the shape the plaintext is compared in."""
    return frozenset(r.encode() for r in ids)


class CallbackCrypto:
    """Signs, encrypts and decrypts callbacks for one Token/EncodingAESKey pair.

    ``receive_id`` is what this URL expects inside the ciphertext (§7.1): the
    suite id on the command URL, the corp id on the data URL, the provider corp
    id on the system URL, or "" for personal-subject apps. ``extra_receive_ids``
    are also accepted on decrypt (e.g. the provider corp id on command-URL GET
    verification); encrypt always writes ``receive_id``.

    Instances are not mutated after construction, so they are thread-safe: the
    Cipher (key schedule) is built once and each call takes its own short-lived
    encryptor/decryptor context.
    """

    __slots__ = ("_accepted", "_cipher", "_random", "_receive_id_bytes", "_token", "receive_id")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        extra_receive_ids: Iterable[str] = (),
        _random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        key = _aes_key(encoding_aes_key)
        self._token = token
        self.receive_id = receive_id
        self._receive_id_bytes = receive_id.encode()
        self._accepted = _id_set((receive_id, *_as_ids(extra_receive_ids)))
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:_AES_BLOCK]))
        # Injectable so tests can pin the 16-byte prefix and compare ciphertexts.
        self._random = _random

    def __repr__(self) -> str:
        # Never show the token or key: reprs end up in logs and tracebacks.
        return f"CallbackCrypto(receive_id={self.receive_id!r})"

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """Return the msg_signature for these values under this Token."""
        return sign(self._token, timestamp, nonce, encrypt)

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Return None if msg_signature is right; raise InvalidSignature otherwise."""
        expected = sign(self._token, timestamp, nonce, encrypt)
        # compare_digest only takes ASCII str; anything else cannot be a hex digest.
        if not (
            isinstance(msg_signature, str)
            and msg_signature.isascii()
            and hmac.compare_digest(msg_signature, expected)
        ):
            raise InvalidSignature

    def decrypt(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        encrypt: str,
        *,
        receive_ids: Iterable[str] | None = None,
    ) -> str:
        """Return the decrypted message after checking signature and receive id.

        ``receive_ids`` replaces the accepted set for this call only.
        """
        return self.decrypt_with_receive_id(
            msg_signature, timestamp, nonce, encrypt, receive_ids=receive_ids
        )[0]

    def decrypt_with_receive_id(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        encrypt: str,
        *,
        receive_ids: Iterable[str] | None = None,
    ) -> tuple[str, str]:
        """Return (message, receive_id found in the plaintext) for a signed ciphertext."""
        # Authenticate before touching the ciphertext: an attacker without the Token
        # gets no padding or length oracle.
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        accepted = self._accepted if receive_ids is None else _id_set(_as_ids(receive_ids))
        return self._open(encrypt, accepted)

    def verify_url(
        self,
        msg_signature: str,
        timestamp: str,
        nonce: str,
        echostr: str,
        *,
        receive_ids: Iterable[str] | None = None,
    ) -> str:
        """Return the plaintext to answer a GET URL verification with.

        A space in echostr can only be a "+" that a form decoder turned into a
        space (§7.2 step 1); base64 has no spaces, so restoring it is safe.
        """
        echostr = echostr.replace(" ", "+")
        return self.decrypt(msg_signature, timestamp, nonce, echostr, receive_ids=receive_ids)

    def encrypt(self, message: str | bytes, timestamp: str | int, nonce: str) -> tuple[str, str]:
        """Return (encrypt, msg_signature) exactly as WeCom would send them."""
        msg = message.encode() if isinstance(message, str) else bytes(message)
        prefix = self._random(_RANDOM_LEN)
        if len(prefix) != _RANDOM_LEN:
            raise ValueError("random prefix must be 16 bytes")
        body_len = _HEADER_LEN + len(msg) + len(self._receive_id_bytes)
        pad = BLOCK_SIZE - body_len % BLOCK_SIZE
        encryptor = self._cipher.encryptor()
        # join() builds the padded plaintext in one allocation.
        plain = b"".join(
            (prefix, len(msg).to_bytes(4, "big"), msg, self._receive_id_bytes, _PADS[pad])
        )
        ciphertext = encryptor.update(plain) + encryptor.finalize()
        encrypted = binascii.b2a_base64(ciphertext, newline=False).decode("ascii")
        return encrypted, sign(self._token, str(timestamp), nonce, encrypted)

    def _open(self, encrypt: str, accepted: frozenset[bytes]) -> tuple[str, str]:
        """Return (message, receive_id) from an already authenticated ciphertext."""
        # Errors are raised outside the except blocks so no __context__ is attached:
        # a UnicodeDecodeError would carry the decrypted bytes into logs.
        try:
            # strict_mode rejects whitespace, junk and misplaced "=" instead of
            # silently skipping them as b64decode does.
            ciphertext = binascii.a2b_base64(encrypt, strict_mode=True)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            ciphertext = None
        if ciphertext is None:
            raise InvalidBase64
        size = len(ciphertext)
        if size < _MIN_CIPHERTEXT or size % _AES_BLOCK:
            raise MalformedCiphertext
        # CBC without cipher-level padding: update() returns every block and
        # finalize() returns b"", so there is nothing to concatenate.
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(ciphertext)
        decryptor.finalize()
        pad = plain[-1]
        # Pad 1..32 only, and every pad byte must equal it. Go SDKs pad to 16; that
        # is still valid PKCS#7 within this range.
        if not 1 <= pad <= BLOCK_SIZE or not plain.endswith(_PADS[pad]):
            raise InvalidPadding
        end = size - pad
        length = int.from_bytes(plain[_RANDOM_LEN:_HEADER_LEN], "big")
        msg_end = _HEADER_LEN + length
        if end < _HEADER_LEN or msg_end > end:
            raise IllegalBuffer
        found = plain[msg_end:end]
        if found not in accepted:
            raise ReceiveIdMismatch
        try:
            message = plain[_HEADER_LEN:msg_end].decode("utf-8")
        except UnicodeDecodeError:
            message = None
        if message is None:
            raise IllegalBuffer
        # found is one of the accepted ids, all of which came from str: it decodes.
        return message, found.decode("utf-8")
