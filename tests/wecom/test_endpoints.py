"""The endpoint registry against the protocol doc (§2, §5.0, §5.9, §6, §10).

The expected table below is typed out from the doc on purpose, independently of
the registry, so a wrong path or token parameter has to be wrong twice to pass.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from wecom.endpoints import ENDPOINTS
from wecom.endpoints import Endpoint
from wecom.endpoints import HttpMethod
from wecom.endpoints import TokenKind
from wecom.endpoints import endpoint

P, S, C, N = "provider_access_token", "suite_access_token", "access_token", None

# name: (method, path, token query parameter)
EXPECTED = {
    # §5.0 / §5.x
    "get_provider_token": ("POST", "/cgi-bin/service/get_provider_token", N),
    "get_suite_token": ("POST", "/cgi-bin/service/get_suite_token", N),
    "get_pre_auth_code": ("GET", "/cgi-bin/service/get_pre_auth_code", S),
    "set_session_info": ("POST", "/cgi-bin/service/set_session_info", S),
    "get_permanent_code": ("POST", "/cgi-bin/service/v2/get_permanent_code", S),
    "get_permanent_code_v1": ("POST", "/cgi-bin/service/get_permanent_code", S),
    "get_auth_info": ("POST", "/cgi-bin/service/v2/get_auth_info", S),
    "get_auth_info_v1": ("POST", "/cgi-bin/service/get_auth_info", S),
    "get_corp_token": ("POST", "/cgi-bin/service/get_corp_token", S),
    "gettoken": ("GET", "/cgi-bin/gettoken", N),
    "get_admin_list": ("POST", "/cgi-bin/agent/get_admin_list", C),
    "get_admin_list_legacy": ("POST", "/cgi-bin/service/get_admin_list", S),
    "get_permissions": ("POST", "/cgi-bin/agent/get_permissions", C),
    "get_app_qrcode": ("POST", "/cgi-bin/service/get_app_qrcode", S),
    "get_customized_auth_url": ("POST", "/cgi-bin/service/get_customized_auth_url", P),
    "get_register_code": ("POST", "/cgi-bin/service/get_register_code", P),
    "corpid_to_opencorpid": ("POST", "/cgi-bin/service/corpid_to_opencorpid", P),
    "userid_to_openuserid": ("POST", "/cgi-bin/batch/userid_to_openuserid", C),
    "getuserinfo3rd": ("GET", "/cgi-bin/service/auth/getuserinfo3rd", S),
    "getuserinfo3rd_legacy": ("GET", "/cgi-bin/service/getuserinfo3rd", S),
    "getuserdetail3rd": ("POST", "/cgi-bin/service/auth/getuserdetail3rd", S),
    "getuserdetail3rd_legacy": ("POST", "/cgi-bin/service/getuserdetail3rd", S),
    "get_login_info": ("POST", "/cgi-bin/service/get_login_info", "access_token"),  # §2 exception
    "get_jsapi_ticket": ("GET", "/cgi-bin/get_jsapi_ticket", C),
    "get_agent_jsapi_ticket": ("GET", "/cgi-bin/ticket/get", C),
    "getcallbackip": ("GET", "/cgi-bin/getcallbackip", C),
    "get_account_balance": ("GET", "/cgi-bin/service/get_account_balance", P),
    # §6.3 / §6.4: POST /cgi-bin/license/<name>?provider_access_token=
    **{
        name: ("POST", f"/cgi-bin/license/{name}", P)
        for name in (
            "create_new_order",
            "create_renew_order_job",
            "submit_order_job",
            "list_order",
            "get_order",
            "list_order_account",
            "cancel_order",
            "create_new_order_job",
            "submit_new_order_job",
            "new_order_job_result",
            "get_union_order",
            "submit_pay_job",
            "pay_job_result",
            "active_account",
            "batch_active_account",
            "active_account_by_type",
            "get_active_info_by_code",
            "batch_get_active_info_by_code",
            "list_actived_account",  # (sic)
            "get_active_info_by_user",
            "batch_transfer_license",
            "batch_share_active_code",
            "get_app_license_info",
            "set_auto_active_status",
            "get_auto_active_status",
        )
    },
    # §13 paid apps (path/91909, 91910, 91913)
    "app_get_order": ("POST", "/cgi-bin/service/get_order", S),
    "app_get_order_list": ("POST", "/cgi-bin/service/get_order_list", S),
    "prolong_try": ("POST", "/cgi-bin/service/prolong_try", S),
}


def test_registry_matches_the_protocol_doc_exactly():
    actual = {name: (ep.method.value, ep.path, ep.token_param) for name, ep in ENDPOINTS.items()}
    assert actual == EXPECTED


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_token_kind_and_parameter_agree(name):
    ep = ENDPOINTS[name]
    default = {
        TokenKind.NONE: None,
        TokenKind.PROVIDER: "provider_access_token",
        TokenKind.SUITE: "suite_access_token",
        TokenKind.CORP: "access_token",
    }[ep.token]
    if name == "get_login_info":
        assert (ep.token, ep.token_param) == (TokenKind.PROVIDER, "access_token")
    else:
        assert ep.token_param == default


def test_paths_are_unique():
    paths = [ep.path for ep in ENDPOINTS.values()]
    assert len(paths) == len(set(paths))


def test_agent_ticket_carries_its_fixed_type():
    assert ENDPOINTS["get_agent_jsapi_ticket"].fixed_params == (("type", "agent_config"),)
    assert all(
        ep.fixed_params == () for name, ep in ENDPOINTS.items() if name != "get_agent_jsapi_ticket"
    )


def test_batch_limits_follow_section_10():
    batches = {
        name: (ep.batch_field, ep.batch_max) for name, ep in ENDPOINTS.items() if ep.batch_field
    }
    assert batches == {
        "userid_to_openuserid": ("userid_list", 1000),
        "create_renew_order_job": ("account_list", 1000),
        "create_new_order_job": ("buy_list", 10),
        "batch_active_account": ("active_list", 1000),
        "batch_get_active_info_by_code": ("active_code_list", 1000),
        "batch_transfer_license": ("transfer_list", 1000),
        "batch_share_active_code": ("share_list", 1000),
    }


def test_paginated_endpoints_name_their_item_lists():
    paged = {name: ep.page_items for name, ep in ENDPOINTS.items() if ep.page_items}
    assert paged == {
        "list_order": "order_list",
        "list_order_account": "account_list",
        "list_actived_account": "account_list",
        "get_union_order": "buy_list",
    }


def test_legacy_bodies_are_flagged_per_section_1():
    legacy = {name for name, ep in ENDPOINTS.items() if ep.legacy_body}
    assert legacy == {
        "get_provider_token",
        "get_suite_token",
        "get_corp_token",
        "get_permanent_code_v1",
    }


def test_endpoints_are_immutable_and_validated():
    ep = ENDPOINTS["get_order"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ep.path = "/elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ENDPOINTS["x"] = ep  # type: ignore[index]
    with pytest.raises(ValueError, match="token_param"):
        Endpoint("x", HttpMethod.GET, "/cgi-bin/x", TokenKind.CORP, None)
    with pytest.raises(ValueError, match="token_param"):
        Endpoint("x", HttpMethod.GET, "/cgi-bin/x", TokenKind.NONE, "access_token")
    with pytest.raises(ValueError, match="path"):
        Endpoint("x", HttpMethod.GET, "/cgi-bin/x?type=1", TokenKind.NONE, None)


def test_endpoint_lookup_names_the_unknown_endpoint():
    assert endpoint("get_order") is ENDPOINTS["get_order"]
    with pytest.raises(KeyError, match="get_ordr"):
        endpoint("get_ordr")


BANNED_PREFIXES = ("django", "rest_framework", "celery", "tenants", "licensing", "callbacks")


@pytest.mark.parametrize("module", ["errors.py", "endpoints.py", "client.py"])
def test_protocol_library_imports_no_framework(module):
    path = Path(__file__).parents[2] / "wecom" / module
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert not [m for m in imported if m.startswith(BANNED_PREFIXES)]
