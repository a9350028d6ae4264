"""Serializers: request shapes (``…Input``) and answers (``…Output``). Shape only; rules
live in services. Names are unique because they become OpenAPI component names."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.models import JsapiTicket
from licensing.models import AccountStatus
from licensing.models import AccountType
from licensing.models import OrderStatus
from tenants import install_links
from tenants.models import Authorization
from tenants.models import Suite

ID_REGEX = r"^[A-Za-z0-9_-]{1,64}$"
USERID_MAX = 128
BIGINT_MAX = 2**63 - 1


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="stable machine-readable code, e.g. not_found")
    message = serializers.CharField(help_text="human-readable text")
    details = serializers.DictField(
        help_text="field errors for validation; errcode for WeCom errors; else empty"
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# --- suites and tenants ---------------------------------------------------------------------


class SuiteOutput(serializers.Serializer):
    suite_id = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Suite.Kind.choices)
    whole_suite = serializers.BooleanField(
        help_text="true: the client sees every corp of the suite; false: only its own corps"
    )


class InstallLinkInput(serializers.Serializer):
    # WeCom allows 128 letters or digits; 38 of them carry our expiry and HMAC
    # (tenants/install_links.py), so the product's own state is at most 90.
    state = serializers.RegexField(
        rf"^[A-Za-z0-9]{{0,{install_links.PRODUCT_STATE_MAX}}}$",
        required=False,
        default="",
        allow_blank=True,
        help_text=(
            f"≤{install_links.PRODUCT_STATE_MAX} letters or digits; sent to WeCom signed "
            "with an expiry, and shown on the tenant only if it comes back intact"
        ),
    )
    test = serializers.BooleanField(
        required=False,
        default=False,
        help_text="refused when true: test installs (测试授权) are created only by a "
        "security admin in the ops console",
    )

    def validate_test(self, value: bool) -> bool:
        # A test install bars the corp from ever authorizing formally; products never
        # create one, a security admin does (signed link, see docs/operations.md).
        if value:
            raise serializers.ValidationError(
                "test installs are created only by a security admin in the ops console"
            )
        return value


class InstallLinkOutput(serializers.Serializer):
    url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class AgentOutput(serializers.Serializer):
    agentid = serializers.IntegerField(allow_null=True)
    auth_mode = serializers.IntegerField(allow_null=True, help_text="0 admin, 1 member")
    is_customized_app = serializers.BooleanField()
    privilege = serializers.DictField(allow_null=True)


class LicenseSummaryOutput(serializers.Serializer):
    bought = serializers.IntegerField()
    active = serializers.IntegerField()
    free = serializers.IntegerField()
    expiring = serializers.IntegerField()
    trial_end = serializers.DateTimeField(allow_null=True)


class CorpListOutput(serializers.Serializer):
    suite_id = serializers.CharField(source="suite.suite_id")
    corpid = serializers.CharField(source="corp.corpid")
    name = serializers.CharField(source="corp.name")
    status = serializers.ChoiceField(choices=Authorization.Status.choices)
    agentid = serializers.IntegerField(source="agent_id", allow_null=True)
    is_test_install = serializers.BooleanField()
    authorized_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)


class CorpDetailOutput(CorpListOutput):
    full_name = serializers.CharField(source="corp.full_name")
    corp_type = serializers.CharField(source="corp.corp_type")
    subject_type = serializers.IntegerField(source="corp.subject_type", allow_null=True)
    scale = serializers.CharField(source="corp.scale")
    industry = serializers.CharField(source="corp.industry")
    sub_industry = serializers.CharField(source="corp.sub_industry")
    user_max = serializers.IntegerField(source="corp.user_max", allow_null=True)
    verified_end_time = serializers.IntegerField(source="corp.verified_end_time", allow_null=True)
    square_logo_url = serializers.CharField(source="corp.square_logo_url")
    status_reason = serializers.CharField()
    suspended_at = serializers.DateTimeField(allow_null=True)
    agent = serializers.SerializerMethodField()
    edition = serializers.DictField(
        help_text="this app's edition_info.agent entry as WeCom sent it (edition_id, "
        "edition_name, app_status, user_limit, expired_time…); {} without 应用版本付费"
    )
    permissions = serializers.ListField(
        child=serializers.CharField(),
        help_text="app_permissions from agent/get_permissions (read on install and change_auth)",
    )
    last_change = serializers.DictField(
        help_text="the newest change_auth: {at, source, diff: {agents, privileges, "
        "permissions, edition}}; {} before the first change"
    )
    activity = serializers.ChoiceField(
        choices=Authorization.Activity.choices,
        help_text="low activity (低活跃): what customer data the app still gets",
    )
    activity_effect_at = serializers.DateTimeField(
        allow_null=True, help_text="when the restriction announced by low_active_alert starts"
    )
    agent_state = serializers.ChoiceField(
        choices=Authorization.AgentState.choices,
        help_text="closed: WeCom closed the unused app until an admin reopens it",
    )
    agent_state_effect_at = serializers.DateTimeField(
        allow_null=True, help_text="when the closing announced by inactive_alert happens"
    )
    admins = serializers.ListField(
        source="admin_list", child=serializers.DictField(), help_text="[{userid, auth_type}]"
    )
    installer_userid = serializers.CharField()
    installer_open_userid = serializers.CharField()
    state = serializers.CharField()
    license = serializers.SerializerMethodField()

    @extend_schema_field(AgentOutput)
    def get_agent(self, obj: Authorization) -> dict:
        agents = (obj.auth_info or {}).get("agent") or [{}]
        return {
            "agentid": obj.agent_id,
            "auth_mode": obj.auth_mode,
            "is_customized_app": obj.is_customized_app,
            "privilege": agents[0].get("privilege"),
        }

    @extend_schema_field(LicenseSummaryOutput(allow_null=True))
    def get_license(self, obj: Authorization) -> dict | None:
        figures = self.context.get("license")
        if figures is None:
            return None
        return {
            "bought": figures.bought,
            "active": figures.active,
            "free": figures.free,
            "expiring": figures.expiring,
            "trial_end": serializers.DateTimeField().to_representation(figures.trial_end)
            if figures.trial_end
            else None,
        }


class CorpListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Authorization.Status.choices, required=False)
    search = serializers.CharField(required=False, max_length=100)


# --- tokens, tickets, identity ------------------------------------------------------------


class AccessTokenOutput(serializers.Serializer):
    access_token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField(
        help_text=(
            "The token's true remaining life in seconds (WeCom's expiry, counted "
            "conservatively). Products may rely on at least 300 s, except when WeCom "
            "re-issued the same token (it hands back the current token while it is "
            "valid): then the token is served until it expires (≥ 1 s left) and a new "
            "one is fetched only after that. Cache it for at most expires_in seconds; "
            "if WeCom rejects it, report it to the refresh endpoint."
        )
    )


class AccessTokenRefreshInput(serializers.Serializer):
    stale_token = serializers.CharField(
        max_length=1024, trim_whitespace=False, help_text="the token WeCom just rejected"
    )


class JsapiSignatureInput(serializers.Serializer):
    url = serializers.URLField(max_length=2048, help_text="the page URL (any #fragment is dropped)")
    kind = serializers.ChoiceField(
        choices=JsapiTicket.Kind.choices,
        default="corp",
        help_text="corp: wx.config (corp jsapi_ticket); agent: wx.agentConfig",
    )


class JsapiSignatureOutput(serializers.Serializer):
    # camelCase: the names wx.config / wx.agentConfig take, so products pass them through.
    appId = serializers.CharField(help_text="the auth corpid")
    agentid = serializers.IntegerField(allow_null=True)
    timestamp = serializers.IntegerField()
    nonceStr = serializers.CharField()
    signature = serializers.CharField()
    kind = serializers.ChoiceField(choices=JsapiTicket.Kind.choices)


class OAuthUserInput(serializers.Serializer):
    code = serializers.RegexField(
        r"^[\x21-\x7e]{1,512}$", help_text="the OAuth code from the redirect"
    )
    detail = serializers.BooleanField(
        default=False, help_text="also read the member's details (snsapi_privateinfo only)"
    )


class OAuthUserOutput(serializers.Serializer):
    corpid = serializers.CharField(allow_blank=True)
    userid = serializers.CharField(allow_blank=True)
    open_userid = serializers.CharField(allow_blank=True)
    openid = serializers.CharField(allow_blank=True, help_text="set for non-members only")
    detail = serializers.DictField(
        allow_null=True, help_text="getuserdetail3rd (name, gender, avatar, qr_code)"
    )


class QrLoginInput(serializers.Serializer):
    auth_code = serializers.RegexField(
        r"^[\x21-\x7e]{1,512}$", help_text="the auth_code of the provider QR login redirect"
    )


class QrLoginOutput(serializers.Serializer):
    usertype = serializers.IntegerField(
        help_text="1 creator, 2 internal admin, 3 external admin, 4 sub-admin, 5 member"
    )
    corpid = serializers.CharField()
    user_info = serializers.DictField(help_text="{userid, open_userid, name, avatar}")
    agent = serializers.ListField(child=serializers.DictField())
    auth_info = serializers.DictField()


# --- events ------------------------------------------------------------------------------------


class EventQuery(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=BIGINT_MAX, help_text="cursor"
    )
    type = serializers.ListField(
        child=serializers.RegexField(r"^[a-z0-9_.]{1,64}$"), required=False, max_length=20
    )
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=500)


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    suite_id = serializers.CharField(source="suite.suite_id", allow_null=True, default=None)
    corpid = serializers.CharField(source="corp.corpid", allow_null=True, default=None)
    data = serializers.DictField()
    created_at = serializers.DateTimeField()


class EventPageOutput(serializers.Serializer):
    results = EventOutput(many=True)
    next_cursor = serializers.CharField(
        help_text="pass as ?after= for the next page (the last id; unchanged when empty)"
    )
    has_more = serializers.BooleanField()


# --- licenses --------------------------------------------------------------------------------


class LicenseOrderOutput(serializers.Serializer):
    order_id = serializers.CharField()
    corpid = serializers.CharField(source="corp.corpid", allow_null=True, default=None)
    order_type = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    base_count = serializers.IntegerField()
    external_contact_count = serializers.IntegerField()
    duration_months = serializers.IntegerField()
    duration_days = serializers.IntegerField()
    new_expire_time = serializers.DateTimeField(allow_null=True)
    price = serializers.IntegerField(help_text="分 (1/100 CNY)")
    buyer_userid = serializers.CharField()
    created_time = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    last_synced_at = serializers.DateTimeField(allow_null=True)


class LicenseOrderQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)


class LicenseOrderCreateInput(serializers.Serializer):
    buyer_userid = serializers.CharField(
        max_length=USERID_MAX, help_text="plaintext userid in the provider's own corp"
    )
    base_count = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)
    external_contact_count = serializers.IntegerField(min_value=0, max_value=1_000_000, default=0)
    months = serializers.IntegerField(min_value=0, max_value=60, default=1)
    days = serializers.IntegerField(min_value=0, max_value=1860, default=0)

    def validate(self, attrs):
        if not attrs["base_count"] and not attrs["external_contact_count"]:
            raise serializers.ValidationError("base_count and external_contact_count are both 0")
        total = attrs["months"] * 31 + attrs["days"]
        if not 31 <= total <= 1860:
            raise serializers.ValidationError("the duration must be 31–1860 days (1 month = 31)")
        return attrs


class RenewAccountInput(serializers.Serializer):
    userid = serializers.CharField(max_length=USERID_MAX)
    type = serializers.ChoiceField(choices=AccountType.choices, default=AccountType.BASE)


class LicenseRenewInput(serializers.Serializer):
    buyer_userid = serializers.CharField(max_length=USERID_MAX)
    accounts = RenewAccountInput(many=True, max_length=10_000, min_length=1)
    months = serializers.IntegerField(min_value=1, max_value=60, required=False)
    new_expire_time = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if ("months" in attrs) == ("new_expire_time" in attrs):
            raise serializers.ValidationError("give exactly one of months or new_expire_time")
        return attrs


class BatchItemErrorOutput(serializers.Serializer):
    item = serializers.DictField()
    errcode = serializers.IntegerField()
    errmsg = serializers.CharField()
    local = serializers.BooleanField(help_text="refused by the platform before calling WeCom")


class LicenseBatchOutput(serializers.Serializer):
    id = serializers.IntegerField()
    operation = serializers.CharField()
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    errors = BatchItemErrorOutput(many=True, source="errors.all")


class LicenseRenewOutput(serializers.Serializer):
    jobid = serializers.CharField()
    accounts = serializers.ListField(child=serializers.DictField(), help_text="accepted")
    order = LicenseOrderOutput()


class LicenseAccountOutput(serializers.Serializer):
    active_code = serializers.CharField()
    type = serializers.ChoiceField(choices=AccountType.choices)
    status = serializers.ChoiceField(choices=AccountStatus.choices)
    userid = serializers.CharField()
    order_id = serializers.CharField(source="order.order_id", allow_null=True, default=None)
    created_time = serializers.DateTimeField(allow_null=True)
    active_time = serializers.DateTimeField(allow_null=True)
    expire_time = serializers.DateTimeField(allow_null=True)


class LicenseAccountQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=AccountStatus.choices, required=False)
    type = serializers.ChoiceField(choices=AccountType.choices, required=False)
    userid = serializers.CharField(max_length=USERID_MAX, required=False)
    order_id = serializers.RegexField(ID_REGEX, required=False)


class LicenseActivateInput(serializers.Serializer):
    userid = serializers.CharField(max_length=USERID_MAX)
    type = serializers.ChoiceField(choices=AccountType.choices, default=AccountType.BASE)
    active_code = serializers.CharField(
        max_length=128, required=False, help_text="omit: the platform picks a free code"
    )


class ActivateItemInput(serializers.Serializer):
    active_code = serializers.CharField(max_length=128)
    userid = serializers.CharField(max_length=USERID_MAX)


class LicenseBatchActivateInput(serializers.Serializer):
    items = ActivateItemInput(many=True, min_length=1, max_length=10_000)


class TransferItemInput(serializers.Serializer):
    handover_userid = serializers.CharField(max_length=USERID_MAX)
    takeover_userid = serializers.CharField(max_length=USERID_MAX)


class LicenseTransferInput(serializers.Serializer):
    transfers = TransferItemInput(many=True, min_length=1, max_length=10_000)
    force = serializers.BooleanField(
        default=False, help_text="skip the local 30-day check (the member left the corp)"
    )


class AutoActiveInput(serializers.Serializer):
    enabled = serializers.BooleanField()


class AutoActiveOutput(serializers.Serializer):
    enabled = serializers.BooleanField(allow_null=True)
    synced_at = serializers.DateTimeField(allow_null=True)


class AppLicenseInfoOutput(serializers.Serializer):
    suite_id = serializers.CharField(source="suite.suite_id")
    license_status = serializers.IntegerField(allow_null=True, help_text="0 off, 1 enforced")
    trial_start = serializers.DateTimeField(allow_null=True)
    trial_end = serializers.DateTimeField(allow_null=True)
    license_check_time = serializers.DateTimeField(allow_null=True)
    synced_at = serializers.DateTimeField(allow_null=True)
