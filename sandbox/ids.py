"""Random identifiers and secrets shaped like WeCom's.

Nothing is hard-coded: every secret of a scenario is minted here at start-up, so
two simulators never share credentials and no secret can leak into the repository.
"""

from __future__ import annotations

import base64
import secrets
import string

_ALNUM = string.ascii_letters + string.digits


def alnum(length: int) -> str:
    """Return `length` random characters from [A-Za-z0-9]."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def hex_id(prefix: str, length: int = 16) -> str:
    """Return prefix + `length` lowercase hex characters (suite ids, provider corpid)."""
    return prefix + secrets.token_hex((length + 1) // 2)[:length]


def corp_id() -> str:
    """Return a provider-scoped encrypted corpid (`wp…`, §2)."""
    return "wp" + alnum(30)


def plain_corp_id() -> str:
    """Return a plaintext corpid (`ww…`), what corpid_to_opencorpid takes as input."""
    return hex_id("ww", 16)


def user_id() -> str:
    """Return a provider-scoped encrypted userid / open_userid (`wo…`, §2)."""
    return "wo" + alnum(30)


def template_id() -> str:
    """Return a 代开发 template id (`dk…`)."""
    return hex_id("dk", 16)


def suite_id() -> str:
    """Return a third-party suite id (`ww…`)."""
    return hex_id("ww", 16)


def secret(length: int = 43) -> str:
    """Return a provider/suite secret."""
    return alnum(length)


def callback_token() -> str:
    """Return a callback Token: [A-Za-z0-9], ≤32 characters (path/91116)."""
    return alnum(32)


def encoding_aes_key() -> str:
    """Return a 43-character [A-Za-z0-9] EncodingAESKey for a random 32-byte key.

    Encoding real random bytes (rather than picking 43 random characters) keeps the
    last character's spare bits zero, like keys WeCom's console generates. Base64
    output sometimes contains '+' or '/', which the console never shows; redraw then.
    """
    while True:
        key = base64.b64encode(secrets.token_bytes(32)).decode()[:43]
        if key.isalnum():
            return key


def opaque(length: int = 64) -> str:
    """Return an opaque token-like value (access tokens, codes, tickets)."""
    return secrets.token_urlsafe(length * 3 // 4)[:length]


def order_id() -> str:
    """Return a license order id (WeCom's are upper-case alnum strings starting `OI`)."""
    return "OI" + secrets.token_hex(15).upper()


def active_code() -> str:
    """Return a license active code."""
    return "LC" + secrets.token_hex(15).upper()


def job_id() -> str:
    return secrets.token_hex(16)
