"""Signed values of the install flow: the ``state`` WeCom echoes back, and test-install links.

**State.** WeCom carries ``state`` from our install link to the redirect and to
``get_permanent_code`` unchanged, but anyone can also type a URL with any state, so a
product could not trust what comes back. We send ``<product state><expiry><mac>``: the
expiry as 6 base-62 digits and an HMAC (Django's ``salted_hmac``, keyed by SECRET_KEY)
over suite, product state and expiry, 32 hex digits. All of it is letters and digits,
as WeCom requires, and ≤128 characters, so the product's own part is at most
``PRODUCT_STATE_MAX`` (90) characters. On the way back only a state whose MAC checks and
whose expiry has not passed is kept; anything else is stored as "".

**Test installs.** 测试授权 lets a test corp install an unpublished app and then blocks
that corp from ever authorizing formally, so it is never open to anonymous visitors: a
security admin creates a link in the admin carrying a ``TimestampSigner`` token bound to
the suite, valid for ``TEST_INSTALL_LINK_MAX_AGE`` seconds.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare
from django.utils.crypto import salted_hmac

STATE_MAX = 128  # WeCom: state is [a-zA-Z0-9], at most 128 bytes
_EXPIRY_DIGITS = 6  # base 62: enough for any Unix time before the year 3700
_MAC_DIGITS = 32  # 128 bits of HMAC-SHA256
PRODUCT_STATE_MAX = STATE_MAX - _EXPIRY_DIGITS - _MAC_DIGITS  # 90
_STATE_SALT = "tenants.install_links.state"
_TEST_SALT = "tenants.install_links.test"


def _mac(suite_id: str, product_state: str, expiry: str) -> str:
    value = f"{suite_id}|{product_state}|{expiry}"
    return salted_hmac(_STATE_SALT, value, algorithm="sha256").hexdigest()[:_MAC_DIGITS]


def state_sign(*, suite_id: str, product_state: str, now: float | None = None) -> str:
    """Return the signed, expiring state to send to WeCom for ``product_state``."""
    if len(product_state) > PRODUCT_STATE_MAX or not product_state.isascii():
        raise ValueError(f"state must be at most {PRODUCT_STATE_MAX} letters or digits")
    if product_state and not product_state.isalnum():
        raise ValueError(f"state must be at most {PRODUCT_STATE_MAX} letters or digits")
    expires = int(now if now is not None else time.time()) + settings.INSTALL_STATE_MAX_AGE
    expiry = signing.b62_encode(expires).rjust(_EXPIRY_DIGITS, "0")
    return f"{product_state}{expiry}{_mac(suite_id, product_state, expiry)}"


def state_verify(*, suite_id: str, state: str, now: float | None = None) -> str | None:
    """Return the product's state if ``state`` is ours, for this suite and unexpired; else None."""
    suffix = _EXPIRY_DIGITS + _MAC_DIGITS
    if not (suffix <= len(state) <= STATE_MAX) or not (state.isascii() and state.isalnum()):
        return None
    product_state, expiry, mac = state[:-suffix], state[-suffix:-_MAC_DIGITS], state[-_MAC_DIGITS:]
    if not constant_time_compare(mac, _mac(suite_id, product_state, expiry)):
        return None
    try:
        expires = signing.b62_decode(expiry.lstrip("0") or "0")
    except ValueError:
        return None
    if expires < int(now if now is not None else time.time()):
        return None
    return product_state


def test_link_create(*, suite_id: str) -> str:
    """Return a signed URL that starts a test install of ``suite_id`` (expires; see module)."""
    token = signing.TimestampSigner(salt=_TEST_SALT).sign(suite_id)
    query = urlencode({"test_token": token})  # *_token: redacted from logged URLs
    return f"{settings.PUBLIC_BASE_URL}/install/{suite_id}/?{query}"


def test_link_valid(*, suite_id: str, token: str) -> bool:
    """Return whether ``token`` is an unexpired test-install token for ``suite_id``."""
    try:
        signed_suite = signing.TimestampSigner(salt=_TEST_SALT).unsign(
            token, max_age=settings.TEST_INSTALL_LINK_MAX_AGE
        )
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return False
    return constant_time_compare(signed_suite, suite_id)
