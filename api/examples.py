"""OpenAPI examples for every operation (ids and values are made up, never real)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

SUITE_ID = "ww1a2b3c4d5e6f7a8b"
CORPID = "wpAbCdEfGhIjKlMnOpQrStUvWxYz0123"
ORDER_ID = "OI00000A1B2C3D4E5F6A7B8C9D0E1F2A"
WHEN = "2026-01-01T10:00:00Z"

TOKEN = {"access_token": "kR3…opaque…Qw", "expires_at": WHEN, "expires_in": 6900}
CORP = {
    "suite_id": SUITE_ID,
    "corpid": CORPID,
    "name": "示例科技",
    "status": "active",
    "agentid": 1000001,
    "is_test_install": False,
    "authorized_at": WHEN,
    "cancelled_at": None,
}
CORP_DETAIL = {
    **CORP,
    "full_name": "示例科技有限公司",
    "corp_type": "verified",
    "subject_type": 1,
    "scale": "1-50人",
    "industry": "IT服务",
    "sub_industry": "计算机软件/硬件/信息服务",
    "user_max": 200,
    "verified_end_time": 0,
    "square_logo_url": "https://p.qlogo.cn/bizmail/logo/0",
    "status_reason": "",
    "suspended_at": None,
    "agent": {
        "agentid": 1000001,
        "auth_mode": 0,
        "is_customized_app": False,
        "privilege": {"level": 1, "allow_party": [1], "allow_user": [], "allow_tag": []},
    },
    "edition": {
        "agentid": 1000001,
        "edition_id": "ESP1a2b3c4d",
        "edition_name": "专业版",
        "app_status": 3,
        "user_limit": 200,
        "expired_time": 1798732800,
        "is_virtual_version": False,
        "is_shared_from_other_corp": False,
    },
    "permissions": ["contact:base:read", "external_contact:read"],
    "last_change": {
        "at": WHEN,
        "source": "change_auth",
        "diff": {
            "privileges": {"1000001": {"allow_user": {"added": ["woUser0002"], "removed": []}}},
            "permissions": {"added": ["external_contact:read"], "removed": []},
        },
    },
    "activity": "normal",
    "activity_effect_at": None,
    "agent_state": "open",
    "agent_state_effect_at": None,
    "admins": [{"userid": "woAdmin0001", "auth_type": 1}],
    "installer_userid": "woAdmin0001",
    "installer_open_userid": "woOpen0001",
    "state": "crm42",
    "license": {"bought": 10, "active": 7, "free": 3, "expiring": 1, "trial_end": None},
}
ORDER = {
    "order_id": ORDER_ID,
    "corpid": CORPID,
    "order_type": 1,
    "status": 0,
    "base_count": 10,
    "external_contact_count": 0,
    "duration_months": 12,
    "duration_days": 0,
    "new_expire_time": None,
    "price": 37200,
    "buyer_userid": "buyer01",
    "created_time": WHEN,
    "paid_at": None,
    "last_synced_at": WHEN,
}
ACCOUNT = {
    "active_code": "LAC0000A1B2C3D4E5F6",
    "type": 1,
    "status": 2,
    "userid": "woUser0001",
    "order_id": ORDER_ID,
    "created_time": WHEN,
    "active_time": WHEN,
    "expire_time": "2027-01-01T00:00:00Z",
}
BATCH = {
    "id": 42,
    "operation": "activate",
    "total": 2,
    "succeeded": 1,
    "failed": 1,
    "errors": [
        {
            "item": {"active_code": "LAC0000BADCODE", "userid": "woUser0002"},
            "errcode": 701021,
            "errmsg": "invalid active_code",
            "local": False,
        }
    ],
}


APP_ORDER = {
    "order_id": "AO7Q2M9X4K1B8N3V6C5Z0L1J2H",
    "suite_id": SUITE_ID,
    "corpid": CORPID,
    "status": 1,
    "order_type": 0,
    "order_from": 0,
    "edition_id": "ESP1a2b3c4d",
    "edition_name": "专业版",
    "price": 365000,
    "user_count": 100,
    "order_period": 365,
    "order_time": WHEN,
    "paid_time": WHEN,
    "begin_time": WHEN,
    "end_time": "2027-01-01T10:00:00Z",
    "operator_id": "woAdmin0001",
    "operator_corpid": CORPID,
    "service_share_amount": 255500,
    "platform_share_amount": 109500,
    "dealer_share_amount": 0,
    "dealer_corpid": "",
    "dealer_corp_name": "",
    "test_mode": False,
    "replaces": "",
    "replaced_by": "",
    "last_synced_at": WHEN,
}
EDITION = {
    "suite_id": SUITE_ID,
    "corpid": CORPID,
    "edition_id": "ESP1a2b3c4d",
    "edition_name": "专业版",
    "app_status": 1,
    "app_status_name": "trial",
    "user_limit": 200,
    "expired_time": "2026-01-16T10:00:00Z",
    "days_left": 15,
    "is_virtual_version": False,
    "is_shared_from_other_corp": False,
    "over_limit": False,
    "read_at": WHEN,
    "changed_at": WHEN,
    "history": [
        {
            "at": WHEN,
            "source": "install",
            "order_id": "",
            "before": {"edition_id": "", "app_status": None},
            "after": {"edition_id": "ESP1a2b3c4d", "app_status": 1},
        }
    ],
    "trial_extensions": [],
}


SUBSCRIPTION = {
    "id": "sub_3fK9pQ2mX7",
    "url": "https://crm.example.com/hooks/wecom",
    "event_types": ["external_contact.*", "tenant.changed"],
    "description": "CRM: new customers",
    "enabled": True,
    "disabled_reason": "",
    "disabled_at": None,
    "failing_since": None,
    "created_at": WHEN,
}
DELIVERY = {
    "id": "dlv_8Hq2Lw0Zc1",
    "webhook_id": "evt_1024",
    "type": "external_contact.added",
    "cursor": "1024",
    "event_at": WHEN,
    "status": "delivered",
    "attempts": 2,
    "next_attempt_at": None,
    "last_status_code": 200,
    "last_error": "",
    "replay": False,
    "log": [
        {
            "number": 1,
            "started_at": WHEN,
            "duration_ms": 10004,
            "status_code": None,
            "outcome": "failed",
            "error": "timeout",
            "response_excerpt": "",
        },
        {
            "number": 2,
            "started_at": WHEN,
            "duration_ms": 41,
            "status_code": 200,
            "outcome": "delivered",
            "error": "",
            "response_excerpt": "ok",
        },
    ],
}
# Made up: a real whsec_ secret is shown only in the answer that created or rotated it.
EXAMPLE_WEBHOOK_SECRET = "whsec_ZXhhbXBsZSBvbmx5LCBub3QgYSByZWFsIHNlY3JldA=="  # noqa: S105 (made up)


def _response(name: str, value, *, status: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status])


def _request(name: str, value) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


EXAMPLES: dict[str, list[OpenApiExample]] = {
    "webhook_subscriptions_list": [_response("one subscription", [SUBSCRIPTION])],
    "webhook_subscriptions_create": [
        _request(
            "customer adds and tenant changes",
            {
                "url": SUBSCRIPTION["url"],
                "event_types": SUBSCRIPTION["event_types"],
                "description": SUBSCRIPTION["description"],
            },
        ),
        _response(
            "created (secret shown once)",
            {**SUBSCRIPTION, "secret": EXAMPLE_WEBHOOK_SECRET},
            status="201",
        ),
    ],
    "webhook_subscription_get": [_response("a subscription", SUBSCRIPTION)],
    "webhook_subscription_update": [
        _request("pause it", {"enabled": False}),
        _response("paused", {**SUBSCRIPTION, "enabled": False, "disabled_reason": "by client"}),
    ],
    "webhook_subscription_rotate_secret": [
        _response("the new secret (shown once)", {"secret": EXAMPLE_WEBHOOK_SECRET})
    ],
    "webhook_deliveries_list": [_response("newest deliveries", [DELIVERY])],
    "suites_list": [
        _response(
            "a suite",
            {"suite_id": SUITE_ID, "name": "CRM", "kind": "third_party", "whole_suite": True},
        )
    ],
    "install_links_create": [
        _request("with a state", {"state": "crm42"}),
        _response(
            "link",
            {
                "url": "https://open.work.weixin.qq.com/3rdapp/install?suite_id="
                f"{SUITE_ID}&pre_auth_code=PRE&redirect_uri=https%3A%2F%2Fexample.com"
                "&state=crm421a2B3c5f1c2e3d4b5a69788796a5b4c3d2e1f0",
                "expires_at": WHEN,
            },
            status="201",
        ),
    ],
    "oauth_user_create": [
        _request("code", {"code": "CODE-FROM-REDIRECT", "detail": False}),
        _response(
            "member",
            {
                "corpid": CORPID,
                "userid": "woUser0001",
                "open_userid": "woOpen0001",
                "openid": "",
                "detail": None,
            },
        ),
    ],
    "corps_list": [_response("a tenant", CORP)],
    "corps_retrieve": [_response("a tenant", CORP_DETAIL)],
    "access_token_retrieve": [_response("token", TOKEN)],
    "access_token_refresh": [
        _request("rejected token", {"stale_token": "kR3…the token WeCom refused…Qw"}),
        _response("fresh token", TOKEN),
    ],
    "jsapi_signature_create": [
        _request("agent config", {"url": "https://app.example.com/page?x=1", "kind": "agent"}),
        _response(
            "signature",
            {
                "appId": CORPID,
                "agentid": 1000001,
                "timestamp": 1767261600,
                "nonceStr": "3bf513f14dd7ab30",
                "signature": "3be96d7e7480bd96ccf9373830a777c6d855040a",
                "kind": "agent",
            },
        ),
    ],
    "qr_login_create": [
        _request("auth code", {"auth_code": "AUTH-CODE-FROM-REDIRECT"}),
        _response(
            "admin",
            {
                "usertype": 1,
                "corpid": CORPID,
                "user_info": {"userid": "woAdmin0001", "open_userid": "woOpen0001", "name": ""},
                "agent": [{"agentid": 1000001, "auth_type": 1}],
                "auth_info": {"department": [{"id": 1, "writable": True}]},
            },
        ),
    ],
    "events_list": [
        _response(
            "page",
            {
                "results": [
                    {
                        "id": 41,
                        "type": "tenant.authorized",
                        "suite_id": SUITE_ID,
                        "corpid": CORPID,
                        "data": {"status": "active", "previous_status": ""},
                        "created_at": WHEN,
                    }
                ],
                "next_cursor": "41",
                "has_more": False,
            },
        )
    ],
    "license_orders_list": [_response("an order", ORDER)],
    "app_orders_list": [_response("a paid order", [APP_ORDER])],
    "app_orders_retrieve": [_response("a paid order", APP_ORDER)],
    "edition_retrieve": [_response("on a trial", EDITION)],
    "edition_prolong_trial": [
        _request("ten more days", {"days": 10}),
        _response(
            "extended",
            {
                "days": 10,
                "try_end_time": "2026-01-26T10:00:00Z",
                "edition": {
                    **EDITION,
                    "expired_time": "2026-01-26T10:00:00Z",
                    "days_left": 25,
                    "trial_extensions": [
                        {
                            "days": 10,
                            "try_end_time": "2026-01-26T10:00:00Z",
                            "actor": "api:crm",
                            "created_at": WHEN,
                        }
                    ],
                },
            },
        ),
    ],
    "license_orders_create": [
        _request(
            "ten basic accounts for a year",
            {"buyer_userid": "buyer01", "base_count": 10, "months": 12},
        ),
        _response("created (unpaid)", ORDER, status="201"),
    ],
    "license_orders_retrieve": [_response("an order", {**ORDER, "status": 1, "paid_at": WHEN})],
    "license_orders_cancel": [_response("cancelled", {**ORDER, "status": 2})],
    "license_renew_create": [
        _request(
            "renew two members by a year",
            {
                "buyer_userid": "buyer01",
                "accounts": [{"userid": "woUser0001", "type": 1}, {"userid": "woUser0002"}],
                "months": 12,
            },
        ),
        _response(
            "renew order",
            {
                "jobid": "JOB0001",
                "accounts": [
                    {"userid": "woUser0001", "type": 1},
                    {"userid": "woUser0002", "type": 1},
                ],
                "order": {**ORDER, "order_type": 2, "base_count": 0},
            },
            status="201",
        ),
    ],
    "license_accounts_list": [_response("an account", ACCOUNT)],
    "license_accounts_activate": [
        _request("any free basic code", {"userid": "woUser0001", "type": 1}),
        _response("activated", ACCOUNT),
    ],
    "license_accounts_batch_activate": [
        _request(
            "two members",
            {
                "items": [
                    {"active_code": "LAC0000A1B2C3D4E5F6", "userid": "woUser0001"},
                    {"active_code": "LAC0000BADCODE", "userid": "woUser0002"},
                ]
            },
        ),
        _response("one refused", BATCH),
    ],
    "license_accounts_transfer": [
        _request(
            "hand over",
            {"transfers": [{"handover_userid": "woUser0001", "takeover_userid": "woUser0003"}]},
        ),
        _response(
            "transferred",
            {
                "id": 43,
                "operation": "transfer",
                "total": 1,
                "succeeded": 1,
                "failed": 0,
                "errors": [],
            },
        ),
    ],
    "license_auto_active_retrieve": [_response("on", {"enabled": True, "synced_at": WHEN})],
    "license_auto_active_update": [
        _request("switch on", {"enabled": True}),
        _response("on", {"enabled": True, "synced_at": WHEN}),
    ],
    "license_app_info_retrieve": [
        _response(
            "trial",
            {
                "suite_id": SUITE_ID,
                "license_status": 1,
                "trial_start": WHEN,
                "trial_end": "2026-04-01T10:00:00Z",
                "license_check_time": WHEN,
                "synced_at": WHEN,
            },
        )
    ],
}

ERROR_EXAMPLES: dict[int, tuple[str, str, dict]] = {
    400: ("invalid", "The request is invalid.", {"stale_token": ["This field is required."]}),
    401: ("not_authenticated", "Authentication credentials were not provided.", {}),
    403: ("permission_denied", "This client is scoped to corps, not to the whole suite.", {}),
    404: ("not_found", "Not found.", {}),
    409: ("authorization_inactive", "The tenant's authorization is not active.", {}),
    422: (
        "wecom_error",
        "WeCom refused the request (errcode 49009).",
        {"errcode": 49009, "kind": "permanent", "errmsg": "invalid buyer_userid"},
    ),
    429: ("rate_limited", "Rate limit exceeded.", {}),
    500: ("internal_error", "Internal server error.", {}),
    502: (
        "wecom_error",
        "WeCom refused the request (errcode 40001).",
        {"errcode": 40001, "kind": "permanent", "errmsg": "invalid secret"},
    ),
    503: (
        "wecom_unavailable",
        "WeCom is unavailable or busy; retry later.",
        {"errcode": None, "kind": "transport"},
    ),
}


def error_example(status: int) -> list[OpenApiExample]:
    code, message, details = ERROR_EXAMPLES[status]
    value = {"error": {"code": code, "message": message, "details": details}}
    return [OpenApiExample(code, value=value, response_only=True, status_codes=[str(status)])]


def examples_for(operation_id: str) -> list[OpenApiExample]:
    return EXAMPLES[operation_id]
