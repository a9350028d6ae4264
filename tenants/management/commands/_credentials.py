"""Shared option handling for register_provider / register_suite."""

from __future__ import annotations

import os
import re

from django.core.management.base import CommandError

from wecom_provider.wecom.crypto import CallbackCrypto
from wecom_provider.wecom.crypto import CallbackCryptoError

TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")


def option_or_env(value: str | None, env_name: str, label: str) -> str:
    """Return a flag's value, else the environment variable's; fail naming both."""
    value = value if value else os.environ.get(env_name, "")
    if not value:
        raise CommandError(f"{label} is required: pass it as a flag or set {env_name}")
    return value.strip()


def validate_callback_settings(token: str, aes_key: str, receive_id: str) -> None:
    """Refuse values WeCom's console would refuse (no value is echoed back)."""
    if not TOKEN_RE.match(token):
        raise CommandError("--token must be 1-32 letters or digits (WeCom's rule)")
    try:
        CallbackCrypto(token, aes_key, receive_id)
    except CallbackCryptoError:
        raise CommandError("--aes-key must be WeCom's 43-character EncodingAESKey") from None


def print_urls(stdout, urls: dict[str, str]) -> None:
    stdout.write("Paste into WeCom's console:")
    for label, url in urls.items():
        stdout.write(f"  {label}: {url}")
