"""Typed access to the environment for settings.py.

Every helper fails fast with ``ImproperlyConfigured`` naming the variable when a
value is missing or malformed, so a bad deploy stops at import instead of
misbehaving later. Values are never echoed back in errors: some are secrets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl
from urllib.parse import unquote
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNSET = object()


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: object = _UNSET) -> str:
    """Return the variable's value, or ``default``; raise when neither exists."""
    value = _raw(name)
    if value is None or value == "":
        if default is _UNSET or default is None:
            raise ImproperlyConfigured(f"{name} is not set")
        return default  # type: ignore[return-value]
    return value


def env_bool(name: str, *, default: bool) -> bool:
    """Return the variable parsed as a boolean (1/0, true/false, yes/no, on/off)."""
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no, on/off)")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    """Return the variable parsed as an integer no smaller than ``minimum``."""
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}")
    return number


def env_list(name: str, *, default: list[str]) -> list[str]:
    """Return the variable split on commas, blanks dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_secret(name: str) -> str | None:
    """Return a secret from ``NAME`` or from the file named by ``NAME_FILE`` (Docker/K8s)."""
    path = _raw(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            raise ImproperlyConfigured(f"{name}_FILE points to an unreadable file") from None
    value = _raw(name)
    return value or None


def env_url(name: str, *, default: str | None, schemes: tuple[str, ...]) -> str:
    """Return the variable as a URL whose scheme is one of ``schemes``."""
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(f"{name} must be a URL with scheme {' or '.join(schemes)}")
    return value.rstrip("/")


@dataclass(frozen=True)
class DatabaseConfig:
    engine: str
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""
    options: dict | None = None

    def as_django(self) -> dict:
        config = {
            "ENGINE": self.engine,
            "NAME": self.name,
            "USER": self.user,
            "PASSWORD": self.password,
            "HOST": self.host,
            "PORT": self.port,
            "OPTIONS": dict(self.options or {}),
        }
        if self.engine.endswith("postgresql"):
            # Reuse connections across requests; health checks drop dead ones.
            config["CONN_MAX_AGE"] = 60
            config["CONN_HEALTH_CHECKS"] = True
        return config


def parse_database_url(name: str, value: str, *, base_dir: Path) -> DatabaseConfig:
    """Return the Django database config for ``postgres://…`` or ``sqlite:///…`` URLs."""
    parts = urlsplit(value)
    if parts.scheme in {"postgres", "postgresql"}:
        db_name = unquote(parts.path.lstrip("/"))
        if not db_name:
            raise ImproperlyConfigured(f"{name} must name a database: postgres://user@host/NAME")
        try:
            port = str(parts.port or "")
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port") from None
        return DatabaseConfig(
            engine="django.db.backends.postgresql",
            name=db_name,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            host=parts.hostname or "",
            port=port,
            options=dict(parse_qsl(parts.query)),
        )
    if parts.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        raw_path = unquote(parts.path)
        if raw_path in {"", "/"}:
            raise ImproperlyConfigured(f"{name} must name a file: sqlite:///var/db.sqlite3")
        path = Path(raw_path[1:])  # one slash ends the empty host; a second makes it absolute
        if not path.is_absolute():
            path = base_dir / path
        return DatabaseConfig(
            engine="django.db.backends.sqlite3",
            name=str(path),
            options={"timeout": 20, "transaction_mode": "IMMEDIATE"},
        )
    raise ImproperlyConfigured(f"{name} must start with postgres://, postgresql:// or sqlite:///")
