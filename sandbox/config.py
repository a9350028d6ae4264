"""Scenario configuration: who exists in the simulated WeCom, and how strict it is.

A scenario is a dict (read from YAML or JSON, or built by the control API):

    provider: {corpid, provider_secret, token, encoding_aes_key, name?, system_url?}
    suites:   [{suite_id?, secret?, token?, encoding_aes_key?, kind: third_party |
               customized_template, name?, published?, redirect_domains?, app_permissions?,
               license_status?, editions?, command_url?, data_url?}]
    corps:    [{corpid?, plain_corpid?, name, test?, upstream?, users: [{userid?, name,
               admin?, visible?, ...}]}]
    buyers:   [plaintext userids of the provider corp allowed as buyer_userid/payer_userid]
    settings: {see Settings}

Anything left out is generated at start-up (ids and secrets included), so the
DEFAULT scenario carries no fixed secret: GET /sandbox/config is how a developer
or `make run` learns them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from sandbox import ids
from sandbox.models import CUSTOMIZED
from sandbox.models import SUITE_KINDS
from sandbox.models import THIRD_PARTY
from sandbox.models import Corp
from sandbox.models import Provider
from sandbox.models import Suite
from sandbox.models import User


class ConfigError(ValueError):
    """The scenario file or control request is not a valid scenario."""


@dataclass
class Settings:
    """Knobs that change how the simulator behaves; all settable at runtime."""

    token_ttl: int = 7200
    # §11 item 2 strict mode: re-fetch answers 7200 but keeps the original expiry, which
    # catches clients that extend a token's lifetime on every re-fetch.
    strict_token_expiry: bool = False
    # [sim] A fetch within the last `token_renew_window` seconds of a token's life issues a
    # new token (the old one stays valid until its own expiry), so a client refreshing
    # ahead of expiry never has to serve a nearly dead token. 0 = only after expiry.
    token_renew_window: int = 900
    # How a token fetch answers while the current token is valid: "same_while_valid"
    # (WeCom's documented behaviour, with the renew window above) or "new_each_call"
    # (a fresh token every call; the old one lives on to its own expiry).
    token_mode: str = "same_while_valid"
    # Wrong secrets on gettoken (代开发) from one IP: after this many within an hour the
    # IP is banned for `wrong_secret_ban_seconds` (protocol §5.4, §10); 0 = never (the
    # default: every test shares 127.0.0.1, so a scenario opts in).
    wrong_secret_ban_after: int = 0
    wrong_secret_ban_seconds: int = 3600
    # §11 item 4: randomly drop errcode from legacy success bodies.
    randomize_legacy_errcode: bool = False
    ticket_ttl: int = 1800
    pre_auth_code_ttl: int = 1200
    auth_code_ttl: int = 600
    oauth_code_ttl: int = 300
    login_code_ttl: int = 300
    user_ticket_ttl: int = 7200
    # Seconds (simulator clock) after payment during which list_order_account says 701022.
    code_generation_seconds: float = 0.0
    # Price per account per day, in 分 (§11 item 14: counts × days × unit price).
    unit_price_base: int = 10
    unit_price_external: int = 5
    # Recharge balance for submit_pay_job, in 分 (None = recharge account not opened).
    balance: int | None = 100_000_000
    trial_days: int = 90
    license_check_time: int | None = None
    # Callback delivery (§11 item 12).
    push_timeout: float = 5.0
    push_retries: int = 3
    slow_ack_ms: int = 1000
    # get_corp_token/gettoken errcode for a dissolved corp (301007 or 2000002).
    dissolve_errcode: int = 301007
    # Client IPs allowed to call the API; empty = everyone (else 60020, §11 item 17).
    ip_allowlist: list[str] = field(default_factory=list)
    callback_ip_list: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    # WeCom's own quota on corp-token APIs, per corp and API (§10: 10000/min, 150000/h);
    # 0 = not enforced. Exceeding one answers 45009 until its window ends (60 s, 1 h).
    corp_api_quota_per_minute: int = 0
    corp_api_quota_per_hour: int = 0
    # Seconds (simulator clock) a batch/* contacts job runs before getresult says done.
    batch_job_seconds: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        """Set the given settings, refusing unknown names and wrong types."""
        known = {f.name: f for f in fields(self)}
        for name, value in values.items():
            spec = known.get(name)
            if spec is None:
                raise ConfigError(f"unknown setting {name!r}")
            setattr(self, name, _coerce(name, value, getattr(self, name), "None" in str(spec.type)))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coerce(name: str, value: Any, current: Any, nullable: bool) -> Any:
    """Return value if it fits the setting's type (ints are fine for floats), else raise."""
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"setting {name!r} cannot be null")
    # The type of the default decides; a nullable setting holding None takes an int.
    kind = type(current) if current is not None else int
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"setting {name!r} must be a {kind.__name__}")
    return value


@dataclass
class Scenario:
    provider: Provider
    suites: list[Suite]
    corps: list[Corp]
    buyers: list[str]
    settings: Settings


def load_file(path: str | Path) -> dict[str, Any]:
    """Return the raw scenario dict in a YAML or JSON file."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the scenario must be a mapping")
    return data


DEFAULT_SCENARIO: dict[str, Any] = {
    # Names only: ids and secrets are minted by build_scenario() on every start.
    "provider": {"name": "沙箱服务商"},
    "suites": [
        {
            "kind": THIRD_PARTY,
            "name": "沙箱CRM",
            "app_permissions": ["contact:base:read", "external_contact:read"],
            # 应用版本付费: installs start on the first edition's trial.
            "editions": [
                {"edition_id": "ESBASIC", "edition_name": "基础版", "user_limit": 50},
                {"edition_id": "ESPRO", "edition_name": "专业版", "user_limit": 500},
            ],
        },
        {
            "kind": CUSTOMIZED,
            "name": "沙箱代开发模板",
            "app_permissions": ["contact:base:read", "message:send", "external_contact:read"],
        },
    ],
    "corps": [
        {
            "name": "示例科技有限公司",
            "users": [
                {"name": "张三", "admin": True},
                {"name": "李四"},
                {"name": "王五"},
            ],
        },
        {
            "name": "样本贸易有限公司",
            "users": [{"name": "赵六", "admin": True}, {"name": "钱七"}],
        },
        {
            "name": "测试餐饮有限公司",
            "users": [{"name": "孙八", "admin": True}, {"name": "周九"}, {"name": "吴十"}],
        },
    ],
    "buyers": ["sandbox_buyer"],
}


def build_provider(raw: dict[str, Any] | None) -> Provider:
    raw = dict(raw or {})
    return Provider(
        corpid=raw.pop("corpid", None) or ids.hex_id("ww", 16),
        provider_secret=raw.pop("provider_secret", None) or ids.secret(),
        token=raw.pop("token", None) or ids.callback_token(),
        encoding_aes_key=raw.pop("encoding_aes_key", None) or ids.encoding_aes_key(),
        **_known(Provider, raw),
    )


def build_suite(raw: dict[str, Any]) -> Suite:
    raw = dict(raw)
    kind = raw.pop("kind", THIRD_PARTY)
    if kind not in SUITE_KINDS:
        raise ConfigError(f"suite kind must be one of {SUITE_KINDS}, not {kind!r}")
    default_id = ids.template_id() if kind == CUSTOMIZED else ids.suite_id()
    suite = Suite(
        suite_id=raw.pop("suite_id", None) or default_id,
        secret=raw.pop("secret", None) or ids.secret(),
        token=raw.pop("token", None) or ids.callback_token(),
        encoding_aes_key=raw.pop("encoding_aes_key", None) or ids.encoding_aes_key(),
        kind=kind,
        **_known(Suite, raw),
    )
    if len(suite.encoding_aes_key) != 43:
        raise ConfigError(f"suite {suite.suite_id}: encoding_aes_key must be 43 characters")
    if not suite.name:
        suite.name = suite.suite_id
    return suite


def build_user(raw: dict[str, Any] | str) -> User:
    if isinstance(raw, str):
        raw = {"name": raw}
    raw = dict(raw)
    userid = raw.pop("userid", None) or ids.user_id()
    return User(
        userid=userid,
        open_userid=raw.pop("open_userid", None) or ids.user_id(),
        name=raw.pop("name", None) or userid,
        **_known(User, raw),
    )


def build_corp(raw: dict[str, Any]) -> Corp:
    raw = dict(raw)
    users = [build_user(u) for u in raw.pop("users", [])]
    corp = Corp(
        corpid=raw.pop("corpid", None) or ids.corp_id(),
        plain_corpid=raw.pop("plain_corpid", None) or ids.plain_corp_id(),
        name=raw.pop("name", None) or "沙箱企业",
        **_known(Corp, raw),
    )
    corp.full_name = corp.full_name or corp.name
    corp.users = {u.userid: u for u in users}
    return corp


def build_scenario(raw: dict[str, Any] | None = None) -> Scenario:
    """Return the scenario described by `raw` (the DEFAULT one when None), secrets filled in."""
    raw = DEFAULT_SCENARIO if raw is None else raw
    settings = Settings()
    settings.update(raw.get("settings") or {})
    return Scenario(
        provider=build_provider(raw.get("provider")),
        suites=[build_suite(s) for s in raw.get("suites", [])],
        corps=[build_corp(c) for c in raw.get("corps", [])],
        buyers=list(raw.get("buyers") or ["sandbox_buyer"]),
        settings=settings,
    )


def _known(cls, raw: dict[str, Any]) -> dict[str, Any]:
    """Return the keys of raw that cls accepts; unknown keys are a configuration error."""
    names = {f.name for f in fields(cls)} - {"users"}
    unknown = set(raw) - names
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    return raw
