"""OAuth codes, user tickets and web login (§5.7, §11 item 8)."""

from __future__ import annotations

import pytest

INFO = "/cgi-bin/service/auth/getuserinfo3rd"
INFO_LEGACY = "/cgi-bin/service/getuserinfo3rd"
DETAIL = "/cgi-bin/service/auth/getuserdetail3rd"
DETAIL_LEGACY = "/cgi-bin/service/getuserdetail3rd"
LOGIN = "/cgi-bin/service/get_login_info"


@pytest.fixture
def member(api):
    grant = api.authorize()
    return grant, api.corps[0]["users"][1]


def test_getuserinfo3rd_base_scope(api, ctl, member):
    grant, user = member
    code = ctl.oauth_code(grant["suite_id"], grant["corpid"], user["userid"])
    data = api.get(INFO, suite_access_token=grant["suite_token"], code=code)
    assert data["errcode"] == 0
    assert data["corpid"] == grant["corpid"]
    assert data["userid"] == user["userid"]
    assert data["open_userid"] == user["open_userid"]
    assert "user_ticket" not in data


def test_oauth_code_is_single_use(api, ctl, member):
    grant, user = member
    code = ctl.oauth_code(grant["suite_id"], grant["corpid"], user["userid"])
    assert api.get(INFO, suite_access_token=grant["suite_token"], code=code)["errcode"] == 0
    assert api.get(INFO, suite_access_token=grant["suite_token"], code=code)["errcode"] == 40029
    assert (
        api.get(INFO_LEGACY, suite_access_token=grant["suite_token"], code=code)["errcode"] == 40029
    )


def test_oauth_code_expires_after_300_seconds(api, ctl, member):
    grant, user = member
    code = ctl.oauth_code(grant["suite_id"], grant["corpid"], user["userid"])
    ctl.advance(301)
    assert api.get(INFO, suite_access_token=grant["suite_token"], code=code)["errcode"] == 40029


def test_oauth_code_of_another_suite_is_40029(api, ctl, member):
    grant, user = member
    code = ctl.oauth_code(grant["suite_id"], grant["corpid"], user["userid"])
    other = api.suite_token(api.template["suite_id"])
    assert api.get(INFO, suite_access_token=other, code=code)["errcode"] == 40029


def test_oauth_code_missing_is_41008(api, member):
    grant, _ = member
    assert api.get(INFO, suite_access_token=grant["suite_token"])["errcode"] == 41008


def test_legacy_path_capitalises_keys(api, ctl, member):
    grant, user = member
    code = ctl.oauth_code(
        grant["suite_id"], grant["corpid"], user["userid"], scope="snsapi_privateinfo"
    )
    data = api.get(INFO_LEGACY, suite_access_token=grant["suite_token"], code=code)
    assert data["CorpId"] == grant["corpid"]
    assert data["UserId"] == user["userid"]
    assert "DeviceId" in data
    assert data["user_ticket"]
    assert data["expires_in"] == 7200


def test_non_member_gets_openid(api, ctl, member):
    grant, _ = member
    code = ctl.oauth_code(grant["suite_id"], grant["corpid"], openid="oOPENID")
    assert api.get(INFO, suite_access_token=grant["suite_token"], code=code)["openid"] == "oOPENID"
    code = ctl.oauth_code(grant["suite_id"], grant["corpid"], openid="oOPENID")
    legacy = api.get(INFO_LEGACY, suite_access_token=grant["suite_token"], code=code)
    assert legacy["OpenId"] == "oOPENID"


@pytest.mark.parametrize("path", [DETAIL, DETAIL_LEGACY])
def test_user_detail_with_user_ticket(api, ctl, member, path):
    grant, user = member
    code = ctl.oauth_code(
        grant["suite_id"], grant["corpid"], user["userid"], scope="snsapi_privateinfo"
    )
    ticket = api.get(INFO, suite_access_token=grant["suite_token"], code=code)["user_ticket"]
    data = api.post(path, {"user_ticket": ticket}, suite_access_token=grant["suite_token"])
    assert data["errcode"] == 0
    assert data["userid"] == user["userid"]
    assert data["name"] == user["userid"]
    assert isinstance(data["gender"], str)
    assert data["qr_code"]


def test_user_ticket_errors(api, ctl, member):
    grant, user = member
    token = grant["suite_token"]
    assert api.post(DETAIL, {"user_ticket": "nope"}, suite_access_token=token)["errcode"] == 84015
    code = ctl.oauth_code(
        grant["suite_id"], grant["corpid"], user["userid"], scope="snsapi_privateinfo"
    )
    ticket = api.get(INFO, suite_access_token=token, code=code)["user_ticket"]
    ctl.advance(7201)
    ctl.push_ticket(grant["suite_id"])
    token = api.suite_token()
    assert api.post(DETAIL, {"user_ticket": ticket}, suite_access_token=token)["errcode"] == 84014


def test_no_user_ticket_outside_the_visible_range(api, ctl, member):
    grant, user = member
    ctl.update_user(grant["corpid"], user["userid"], visible=False)
    code = ctl.oauth_code(
        grant["suite_id"], grant["corpid"], user["userid"], scope="snsapi_privateinfo"
    )
    data = api.get(INFO, suite_access_token=grant["suite_token"], code=code)
    assert "user_ticket" not in data


def test_get_login_info_admin_and_member(api, ctl, member):
    grant, user = member
    token = api.provider_token()
    admin = api.corps[0]["users"][0]
    code = ctl.login_code(grant["corpid"], admin["userid"])
    data = api.post(LOGIN, {"auth_code": code}, access_token=token)
    assert data["usertype"] == 2
    assert data["corp_info"] == {"corpid": grant["corpid"]}
    assert data["user_info"]["open_userid"] == admin["open_userid"]
    assert data["agent"][0]["auth_type"] == 1
    assert data["auth_info"]["department"]
    code = ctl.login_code(grant["corpid"], user["userid"])
    data = api.post(LOGIN, {"auth_code": code}, access_token=token)
    assert data["usertype"] == 5
    assert "agent" not in data
    assert api.post(LOGIN, {"auth_code": code}, access_token=token)["errcode"] == 40029
    assert api.post(LOGIN, {}, access_token=token)["errcode"] == 41008
