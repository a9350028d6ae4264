"""`wecom_provider.wecom.crypto`: the contract name of the callback codec.

The codec lives in `wecom.crypto` (the protocol library, which imports no Django). This module
re-exports it unchanged, so `wecom_provider.wecom.crypto.CallbackCrypto is
wecom.crypto.CallbackCrypto` and an `except CallbackCryptoError` catches errors from either.
"""

from wecom.crypto import CallbackCrypto
from wecom.crypto import CallbackCryptoError
from wecom.crypto import IllegalBuffer
from wecom.crypto import InvalidAesKey
from wecom.crypto import InvalidBase64
from wecom.crypto import InvalidPadding
from wecom.crypto import InvalidSignature
from wecom.crypto import MalformedCiphertext
from wecom.crypto import ReceiveIdMismatch
from wecom.crypto import sign

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
