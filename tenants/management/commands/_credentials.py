"""Shared option handling for register_provider / register_suite."""

from __future__ import annotations

import os
import re
import sys

from django.core.management.base import CommandError

from wecom.crypto import CallbackCrypto
from wecom.crypto import CallbackCryptoError

TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")


def option_or_env(value: str | None, env_name: str, label: str) -> str:
    """Return a flag's value, else the environment variable's; fail naming both."""
    value = value if value else os.environ.get(env_name, "")
    if not value:
        raise CommandError(f"{label} is required: pass it as a flag or set {env_name}")
    return value.strip()


def secret_option(value: str | None, env_name: str, label: str, stderr) -> str:
    """Return a secret from (in order) the flag, ``env_name``, the file named by
    ``{env_name}_FILE``, or standard input when the flag is ``-``.

    A secret given as a flag works (architecture.md fixes the flags) but is visible in
    ``ps`` and shell history, so it draws a warning; the value is never echoed.
    """
    if value == "-":
        value = sys.stdin.readline().strip()
        if not value:
            raise CommandError(f"{label} -: nothing was read from standard input")
        return value
    if value:
        stderr.write(
            f"warning: {label} given on the command line is visible in ps and shell history; "
            f"prefer {env_name}, {env_name}_FILE or {label} - (read from standard input)"
        )
        return value.strip()
    if os.environ.get(env_name):
        return os.environ[env_name].strip()
    path = os.environ.get(f"{env_name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                content = handle.read().strip()
        except OSError as exc:
            raise CommandError(f"{env_name}_FILE cannot be read ({exc.strerror})") from None
        if content:
            return content
    raise CommandError(
        f"{label} is required: set {env_name} or {env_name}_FILE, or pass {label} - and "
        "write it to standard input"
    )


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
