"""In-memory records of the simulated WeCom.

Plain dataclasses of JSON-friendly fields: `asdict()` is the snapshot format and
`Cls(**d)` reads it back, so there is no separate serialisation layer to keep in
step. Timestamps are simulator Unix seconds (float where sub-second order
matters, int where WeCom puts them on the wire).
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any

THIRD_PARTY = "third_party"
CUSTOMIZED = "customized_template"
SUITE_KINDS = (THIRD_PARTY, CUSTOMIZED)

# Account types (§6.2).
BASE, EXTERNAL = 1, 2

# Order statuses (§6.2).
ORDER_UNPAID, ORDER_PAID, ORDER_CANCELLED, ORDER_EXPIRED = 0, 1, 2, 3
ORDER_REFUNDING, ORDER_REFUNDED, ORDER_REFUND_REJECTED, ORDER_INVALID = 4, 5, 6, 7
# Order types (§6.2).
ORDER_NEW, ORDER_RENEW, ORDER_MULTI = 1, 2, 8

# Active code statuses (§6.2).
CODE_UNBOUND, CODE_BOUND, CODE_EXPIRED, CODE_PENDING_TRANSFER, CODE_MERGED, CODE_SHARED = (
    1,
    2,
    3,
    4,
    5,
    6,
)


def from_dict(cls, data: dict[str, Any]):
    """Return cls(**data), ignoring keys the dataclass does not know (older snapshots)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Provider:
    corpid: str
    provider_secret: str
    token: str
    encoding_aes_key: str
    name: str = "Sandbox Provider"
    system_url: str | None = None  # overrides {callback_base}/callbacks/provider/{corpid}/


@dataclass
class Suite:
    suite_id: str
    secret: str
    token: str
    encoding_aes_key: str
    kind: str = THIRD_PARTY
    name: str = ""
    # get_app_qrcode only serves published third-party apps (§5.5).
    published: bool = True
    # Install redirect_uri must be on one of these hosts (host[:port]); empty = any.
    redirect_domains: list[str] = field(default_factory=list)
    # What agent/get_permissions answers for a new authorization.
    app_permissions: list[str] = field(default_factory=list)
    # license_status of get_app_license_info (0 = check not enabled).
    license_status: int = 1
    # 应用版本付费: the editions a corp can have, [{edition_id, edition_name, user_limit?}].
    # Empty: no paid editions, and WeCom sends no edition_info at all (§5.2, §5.3).
    editions: list[dict[str, Any]] = field(default_factory=list)
    command_url: str | None = None  # overrides {callback_base}/callbacks/suite/{id}/command/
    data_url: str | None = None  # overrides {callback_base}/callbacks/suite/{id}/data/

    @property
    def customized(self) -> bool:
        return self.kind == CUSTOMIZED


@dataclass
class User:
    userid: str
    open_userid: str
    name: str
    department: list[int] = field(default_factory=lambda: [1])
    # Corp admin: shows up in the app admin list and may log in as usertype 2.
    admin: bool = False
    # In the app's visible range: license activation and user_ticket need it.
    visible: bool = True
    status: int = 1  # 1 active, 2 disabled, 4 not activated, 5 left
    gender: str = "1"
    mobile: str = ""
    position: str = ""
    email: str = ""
    avatar: str = ""


@dataclass
class Corp:
    corpid: str  # provider-scoped encrypted corpid (wp…), what APIs return
    plain_corpid: str  # the corp's own corpid, input of corpid_to_opencorpid
    name: str
    full_name: str = ""
    corp_type: str = "verified"
    subject_type: int = 1
    user_max: int = 200
    scale: str = "1-50人"
    industry: str = "IT服务"
    sub_industry: str = "计算机软件/硬件/信息服务"
    # 服务商测试企业: license orders free and paid at once (§6.1).
    test: bool = False
    # Upstream corp (上下游): codes may be shared from it to this corp.
    upstream: str | None = None
    # errcode get_corp_token/gettoken answer once the corp is dissolved (301007 / 2000002).
    dissolved: int | None = None
    auto_active: int = 0
    users: dict[str, User] = field(default_factory=dict)

    @classmethod
    def load(cls, data: dict[str, Any]) -> Corp:
        corp = from_dict(cls, data)
        corp.users = {k: from_dict(User, v) for k, v in data.get("users", {}).items()}
        return corp


@dataclass
class Authorization:
    """One corp's installation of one suite or 代开发 template."""

    suite_id: str
    corpid: str
    permanent_code: str
    agentid: int
    status: str = "active"  # active | cancelled
    auth_mode: int = 0  # 0 admin authorization, 1 member authorization
    level: int = 1  # privilege.level; 0 for 代开发
    allow_party: list[int] = field(default_factory=lambda: [1])
    allow_user: list[str] = field(default_factory=list)
    allow_tag: list[int] = field(default_factory=list)
    app_permissions: list[str] = field(default_factory=list)
    state: str = ""
    installer: str = ""
    test: bool = False
    customized: bool = False
    created_at: float = 0.0
    cancelled_at: float | None = None
    # Previous 代开发 secrets: gettoken answers 40001 for them (§11 item 10).
    retired_codes: list[str] = field(default_factory=list)
    # Counts the installs of this (suite, corp): an auth code is good only for the
    # install that issued it, so a reinstall makes every older code 40078 [sim].
    generation: int = 1
    # 应用版本付费 (only for suites with editions): this corp's edition_info.agent entry.
    edition: dict[str, Any] = field(default_factory=dict)
    # Low activity and disuse (data-URL events, path/90240): normal | low_active_alert |
    # low_active, and open | inactive_alert | closed.
    activity: str = "normal"
    agent_state: str = "open"

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass
class Token:
    value: str
    kind: str  # provider | suite | corp
    subject: str  # provider corpid, suite id, or "suite_id|corpid"
    issued_at: float
    expires_at: float
    suite_id: str = ""
    corpid: str = ""
    revoked: bool = False


@dataclass
class SuiteTicket:
    ticket: str
    suite_id: str
    issued_at: float


@dataclass
class PreAuthCode:
    code: str
    suite_id: str
    expires_at: float
    auth_type: int = 0
    appid: list[int] = field(default_factory=list)


@dataclass
class AuthCode:
    code: str
    suite_id: str
    corpid: str
    expires_at: float
    purpose: str = "install"  # install | reset
    state: str = ""
    # What the exchange grants; for a reset this is the new 代开发 secret.
    permanent_code: str = ""
    used: bool = False
    # The install (Authorization.generation) that issued it; a newer reset voids it.
    generation: int = 1
    void: bool = False


@dataclass
class OAuthCode:
    code: str
    suite_id: str
    corpid: str
    userid: str
    expires_at: float
    scope: str = "snsapi_base"
    openid: str = ""  # set for a non-member
    used: bool = False


@dataclass
class UserTicket:
    ticket: str
    suite_id: str
    corpid: str
    userid: str
    expires_at: float


@dataclass
class LoginCode:
    code: str
    corpid: str
    userid: str
    usertype: int
    expires_at: float
    used: bool = False


@dataclass
class JsTicket:
    ticket: str
    kind: str  # jsapi | agent_config
    subject: str  # suite_id|corpid
    expires_at: float


@dataclass
class Order:
    order_id: str
    order_type: int
    order_status: int
    corpid: str  # "" for a multi-corp parent
    buyer_userid: str
    price: int
    base_count: int
    external_count: int
    months: int = 0
    days: int = 0
    new_expire_time: int | None = None
    create_time: int = 0
    pay_time: int = 0
    test: bool = False
    parent_id: str | None = None
    sub_order_ids: list[str] = field(default_factory=list)
    # Renewal orders: [{userid, type}] with the days each account gains.
    renew_accounts: list[dict[str, Any]] = field(default_factory=list)
    # list_order_account answers 701022 until this simulator time (§11 item 14).
    codes_ready_at: float = 0.0
    # license_pay_success pushed (once codes are ready).
    pay_notified: bool = False
    auto_active_status: int | None = None

    @property
    def duration_days(self) -> int:
        return self.months * 31 + self.days


@dataclass
class ActiveCode:
    active_code: str
    corpid: str  # owner: the buying corp, or the downstream corp for a shared copy
    type: int
    order_id: str
    duration_days: int
    create_time: int
    status: int = CODE_UNBOUND
    userid: str = ""
    active_time: int = 0
    expire_time: int = 0
    merge_to: str = ""
    merge_from: str = ""
    share_to: str = ""
    share_from: str = ""
    # Set when the order was refunded: the code is void (701021) unless bound.
    void: bool = False


@dataclass
class RenewJob:
    jobid: str
    corpid: str
    accounts: list[dict[str, Any]] = field(default_factory=list)
    order_id: str | None = None
    created_at: float = 0.0


@dataclass
class NewOrderJob:
    jobid: str
    buy_list: list[dict[str, Any]] = field(default_factory=list)
    order_id: str | None = None
    submitted_at: float | None = None
    created_at: float = 0.0


@dataclass
class PayJob:
    jobid: str
    order_id: str
    payer_userid: str
    created_at: float
    errcode: int = 0
    errmsg: str = "ok"
    fail_corp_list: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AppOrder:
    """A paid-app order (应用版本付费, protocol doc §13); fields as get_order names them."""

    orderid: str
    suiteid: str
    paid_corpid: str
    order_status: int
    order_type: int
    edition_id: str
    edition_name: str
    price: int
    user_count: int
    order_period: int  # days
    order_time: int
    order_from: int = 0  # 0 corp, 1 provider on the corp's behalf, 2 dealer
    operator_id: str = ""
    operator_corpid: str = ""
    paid_time: int = 0
    begin_time: int = 0
    end_time: int = 0
    service_share_amount: int = 0
    platform_share_amount: int = 0
    dealer_share_amount: int = 0
    dealer_corpid: str = ""
    dealer_corp_name: str = ""
    test: bool = False  # listed by get_order_list only with test_mode=1
    # The corp's edition before this order was paid: a refund puts it back [sim].
    previous_edition: dict[str, Any] = field(default_factory=dict)
    # Payment order across all app orders (paid_time has one-second ties).
    paid_seq: int = 0


def to_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def akey(suite_id: str, corpid: str) -> str:
    """Return the key of a (suite, corp) pair in auths, trials and token subjects."""
    return f"{suite_id}|{corpid}"


def ckey(corpid: str, active_code: str) -> str:
    """Return the key of an active code: a shared code exists once per corp (§6.5)."""
    return f"{corpid}|{active_code}"
