"""Tokens, tickets, the token-error table and request validation (§3, §11 items 1–5, 17–18)."""

from __future__ import annotations

import pytest

PROVIDER_TOKEN = "/cgi-bin/service/get_provider_token"
SUITE_TOKEN = "/cgi-bin/service/get_suite_token"
PRE_AUTH = "/cgi-bin/service/get_pre_auth_code"


def test_provider_token_has_no_errcode_on_success(api):
    body = {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]}
    data = api.post(PROVIDER_TOKEN, body)
    assert "errcode" not in data
    assert data["expires_in"] == 7200
    assert data["provider_access_token"]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"provider_secret": "x"}, 41002),
        ({"corpid": "CORP"}, 41004),
        ({"corpid": "wwnotus", "provider_secret": "SECRET"}, 40013),
        ({"corpid": "CORP", "provider_secret": "wrong"}, 40001),
        ({"corpid": 12, "provider_secret": "SECRET"}, 40058),
    ],
)
def test_provider_token_errors(api, body, errcode):
    body = {
        k: {"CORP": api.provider["corpid"], "SECRET": api.provider["provider_secret"]}.get(v, v)
        for k, v in body.items()
    }
    data = api.post(PROVIDER_TOKEN, body)
    assert data["errcode"] == errcode
    assert "hint: [" in data["errmsg"]
    assert (
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}" in data["errmsg"]
    )


def test_same_token_while_valid_with_remaining_expires_in(api, ctl):
    first = api.post(
        PROVIDER_TOKEN,
        {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]},
    )
    ctl.advance(1000)
    second = api.post(
        PROVIDER_TOKEN,
        {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]},
    )
    assert second["provider_access_token"] == first["provider_access_token"]
    assert 6190 <= second["expires_in"] <= 6200


def test_strict_mode_answers_7200_but_keeps_the_expiry(api, ctl):
    ctl.settings(strict_token_expiry=True, token_renew_window=0)
    token = api.provider_token()
    ctl.advance(7000)
    body = {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]}
    again = api.post(PROVIDER_TOKEN, body)
    assert again["provider_access_token"] == token
    assert again["expires_in"] == 7200
    ctl.advance(201)
    # The original expiry held: the token is dead and a new one is minted.
    assert (
        api.get("/cgi-bin/service/get_account_balance", provider_access_token=token)["errcode"]
        == 40082
    )
    assert api.provider_token() != token


def test_a_fetch_in_the_renew_window_issues_a_new_token_and_the_old_one_lives_on(api, ctl):
    token = api.provider_token()
    ctl.advance(7200 - 1000)  # outside the default 900 s window: same token
    assert api.provider_token() == token
    ctl.advance(200)  # 800 s left: inside the window
    renewed = api.provider_token()
    assert renewed != token
    # The old token still works until its own expiry.
    body = api.get("/cgi-bin/service/get_account_balance", provider_access_token=token)
    assert body.get("errcode", 0) == 0


def test_new_token_after_expiry(api, ctl):
    token = api.suite_token()
    ctl.advance(7201)
    ctl.push_ticket(api.suite["suite_id"])
    assert api.suite_token() != token


def test_suite_token_same_even_with_a_newer_ticket(api, ctl):
    token = api.suite_token()
    ctl.push_ticket(api.suite["suite_id"])
    assert api.suite_token() == token


@pytest.mark.parametrize(
    ("field", "errcode"),
    [("suite_id", 41021), ("suite_secret", 41024), ("suite_ticket", 41023)],
)
def test_suite_token_missing_fields(api, field, errcode):
    body = {
        "suite_id": api.suite["suite_id"],
        "suite_secret": api.suite["secret"],
        "suite_ticket": api.suite["suite_ticket"],
    }
    del body[field]
    assert api.post(SUITE_TOKEN, body)["errcode"] == errcode


def test_suite_token_errors(api):
    good = {
        "suite_id": api.suite["suite_id"],
        "suite_secret": api.suite["secret"],
        "suite_ticket": api.suite["suite_ticket"],
    }
    assert api.post(SUITE_TOKEN, {**good, "suite_id": "wwunknown"})["errcode"] == 40083
    assert api.post(SUITE_TOKEN, {**good, "suite_secret": "nope"})["errcode"] == 40080
    assert api.post(SUITE_TOKEN, {**good, "suite_ticket": "nope"})["errcode"] == 40085
    # Another suite's ticket is not this suite's ticket.
    other = {**good, "suite_ticket": api.template["suite_ticket"]}
    assert api.post(SUITE_TOKEN, other)["errcode"] == 40085
    assert api.post(SUITE_TOKEN, good)["errcode"] == 0


def test_suite_ticket_valid_for_1800_seconds(api, ctl):
    ctl.advance(1799)
    assert api.suite_token()
    ctl.advance(2)
    ctl.revoke_tokens(kind="suite")
    body = {
        "suite_id": api.suite["suite_id"],
        "suite_secret": api.suite["secret"],
        "suite_ticket": api.suite["suite_ticket"],
    }
    assert api.post(SUITE_TOKEN, body)["errcode"] == 40085
    new_ticket = ctl.push_ticket(api.suite["suite_id"])[api.suite["suite_id"]]
    assert api.post(SUITE_TOKEN, {**body, "suite_ticket": new_ticket})["errcode"] == 0


def test_template_gets_a_suite_token_with_its_ticket(api):
    assert api.suite_token(api.template["suite_id"])


@pytest.mark.parametrize(
    ("param", "value_kind", "errcode"),
    [
        ("suite_access_token", None, 41022),
        ("suite_access_token", "garbage", 40082),
        ("suite_access_token", "provider", 40082),
        ("suite_access_token", "corp", 40082),
        ("suite_access_token", "expired", 42009),
        ("access_token", None, 41001),
        ("access_token", "garbage", 40014),
        ("access_token", "suite", 40014),
        ("access_token", "provider", 40014),
        ("access_token", "expired", 42001),
        ("provider_access_token", None, 41001),
        ("provider_access_token", "garbage", 40082),
        ("provider_access_token", "suite", 40082),
        ("provider_access_token", "expired", 40082),
    ],
)
def test_token_errors_by_query_parameter(api, ctl, param, value_kind, errcode):
    grant = api.authorize()
    tokens = {
        "provider": api.provider_token(),
        "suite": grant["suite_token"],
        "corp": api.corp_token(grant),
    }
    if value_kind == "expired":
        ctl.advance(7201)
    value = {
        None: None,
        "garbage": "x" * 30,
        "expired": tokens[
            {"suite_access_token": "suite", "access_token": "corp"}.get(param, "provider")
        ],
    }.get(value_kind, tokens.get(value_kind))
    path = {
        "suite_access_token": PRE_AUTH,
        "access_token": "/cgi-bin/getcallbackip",
        "provider_access_token": "/cgi-bin/service/get_account_balance",
    }[param]
    params = {param: value} if value is not None else {}
    assert api.get(path, **params)["errcode"] == errcode


def test_get_login_info_takes_the_provider_token_as_access_token(api, ctl):
    grant = api.authorize()
    path = "/cgi-bin/service/get_login_info"
    code = ctl.login_code(grant["corpid"], api.corps[0]["users"][0]["userid"])
    corp_token = api.corp_token(grant)
    assert api.post(path, {"auth_code": code}, access_token=corp_token)["errcode"] == 40014
    data = api.post(path, {"auth_code": code}, access_token=api.provider_token())
    assert data["errcode"] == 0


def test_other_suites_token_is_48003_on_get_app_qrcode(api):
    token = api.suite_token(api.template["suite_id"])
    data = api.post(
        "/cgi-bin/service/get_app_qrcode",
        {"suite_id": api.suite["suite_id"], "result_type": 2},
        suite_access_token=token,
    )
    assert data["errcode"] == 48003


def test_revoke_hook_kills_a_token_early(api, ctl):
    token = api.provider_token()
    assert ctl.revoke_tokens(token=token) == 1
    data = api.get("/cgi-bin/service/get_account_balance", provider_access_token=token)
    assert data["errcode"] == 40082
    assert api.provider_token() != token


def test_randomized_legacy_errcode(api, ctl):
    ctl.settings(randomize_legacy_errcode=True)
    body = {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]}
    seen = {"errcode" in api.post(PROVIDER_TOKEN, body) for _ in range(40)}
    assert seen == {True, False}


def test_wrong_method_is_a_parameter_error_not_405(api):
    token = api.suite_token()
    resp = api.http.get("/cgi-bin/service/set_session_info", params={"suite_access_token": token})
    assert resp.status_code == 200
    assert resp.json()["errcode"] == 40058
    resp = api.http.post(PRE_AUTH, params={"suite_access_token": token}, json={})
    assert resp.json()["errcode"] == 40058


def test_bad_json_warns_in_errmsg(api):
    resp = api.http.post(PROVIDER_TOKEN, content=b"{not json")
    data = resp.json()
    assert data["errcode"] == 41002
    assert "Warning: wrong json format." in data["errmsg"]


def test_ip_allow_list_gives_60020(api, ctl):
    ctl.settings(ip_allowlist=["10.0.0.1"])
    body = {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]}
    assert api.post(PROVIDER_TOKEN, body)["errcode"] == 60020
    ctl.settings(ip_allowlist=[])
    assert "provider_access_token" in api.post(PROVIDER_TOKEN, body)


def test_unknown_path_is_404(api):
    assert api.http.get("/cgi-bin/nope").status_code == 404


def test_new_each_call_mode_mints_a_token_per_call_and_the_old_one_lives_on(api, ctl):
    ctl.settings(token_mode="new_each_call")
    first = api.provider_token()
    second = api.provider_token()
    assert first != second
    body = api.get("/cgi-bin/service/get_account_balance", provider_access_token=first)
    assert body.get("errcode", 0) == 0


def test_same_while_valid_mode_without_renew_window_is_same_until_expiry(api, ctl):
    ctl.settings(token_mode="same_while_valid", token_renew_window=0)
    token = api.provider_token()
    ctl.advance(7199)
    assert api.provider_token() == token
    ctl.advance(2)
    assert api.provider_token() != token


def test_repeated_wrong_secrets_on_gettoken_ban_the_ip(api, ctl):
    ctl.settings(wrong_secret_ban_after=3, wrong_secret_ban_seconds=3600)
    grant = api.authorize(api.template["suite_id"])
    for _ in range(3):
        wrong = api.get("/cgi-bin/gettoken", corpid=grant["corpid"], corpsecret="wrong")
        assert wrong["errcode"] == 40001
    # Banned: even the right secret is refused for an hour.
    right = {"corpid": grant["corpid"], "corpsecret": grant["permanent_code"]}
    assert api.get("/cgi-bin/gettoken", **right)["errcode"] == 45009
    ctl.advance(3601)
    assert api.get("/cgi-bin/gettoken", **right)["errcode"] == 0
