"""The simulator's corp APIs (seed 003 contacts, seed 004 external contacts, messages,
media) with WeCom's errcodes and its own per-corp quota, over real HTTP."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def corp(api):
    """(corp token, corp config) of the third-party suite installed in corp 0."""
    grant = api.authorize()
    return api.corp_token(grant), api.corps[0]


def test_contacts_answer_with_wecom_shapes(api, corp):
    token, cfg = corp
    users = cfg["users"]
    one = api.get("/cgi-bin/user/get", access_token=token, userid=users[0]["userid"])
    assert one["errcode"] == 0
    assert one["userid"] == users[0]["userid"]
    assert one["open_userid"] == users[0]["open_userid"]
    assert one["name"] == users[0]["userid"]  # third-party apps never see names
    assert api.get("/cgi-bin/user/get", access_token=token, userid="nobody")["errcode"] == 60111

    ids = api.post("/cgi-bin/user/list_id", {"limit": 2}, access_token=token)
    assert ids["errcode"] == 0
    assert len(ids["dept_user"]) == 2
    assert ids["next_cursor"]
    rest = api.post("/cgi-bin/user/list_id", {"cursor": ids["next_cursor"]}, access_token=token)
    listed = {row["userid"] for row in ids["dept_user"] + rest["dept_user"]}
    assert listed == {u["userid"] for u in users}
    assert rest["next_cursor"] == ""

    simple = api.get(
        "/cgi-bin/user/simplelist", access_token=token, department_id="1", fetch_child="1"
    )
    assert {u["userid"] for u in simple["userlist"]} == listed
    missing = api.get("/cgi-bin/user/simplelist", access_token=token, department_id="77")
    assert missing["errcode"] == 60123

    departments = api.get("/cgi-bin/department/list", access_token=token)
    assert departments["department"][0]["id"] == 1
    assert departments["department"][0]["parentid"] == 0
    tags = api.get("/cgi-bin/tag/list", access_token=token)
    assert tags["taglist"][0] == {"tagid": 1, "tagname": "管理员"}


def test_an_invisible_member_is_60011_and_left_out_of_lists(api, ctl, corp):
    token, cfg = corp
    hidden = cfg["users"][1]["userid"]
    ctl.update_user(cfg["corpid"], hidden, visible=False)
    assert api.get("/cgi-bin/user/get", access_token=token, userid=hidden)["errcode"] == 60011
    ids = api.post("/cgi-bin/user/list_id", {}, access_token=token)
    assert hidden not in {row["userid"] for row in ids["dept_user"]}


def test_batch_jobs_read_the_uploaded_csv_and_keep_five_results(api, corp, sandbox):
    token, _ = corp
    csv = b"userid,name\nu1,A\nu2,B\n"
    upload = api.http.post(
        "/cgi-bin/media/upload",
        params={"access_token": token, "type": "file"},
        files={"media": ("users.csv", csv, "text/csv")},
    ).json()
    assert upload["errcode"] == 0, upload
    jobs = []
    for _ in range(6):
        job = api.post(
            "/cgi-bin/batch/syncuser", {"media_id": upload["media_id"]}, access_token=token
        )
        jobs.append(job["jobid"])
    result = api.get("/cgi-bin/batch/getresult", access_token=token, jobid=jobs[-1])
    assert result["status"] == 3
    assert result["total"] == 2
    assert [r["userid"] for r in result["result"]] == ["u1", "u2"]
    cleared = api.get("/cgi-bin/batch/getresult", access_token=token, jobid=jobs[0])
    assert cleared["errcode"] == 40089
    unknown = api.get("/cgi-bin/batch/getresult", access_token=token, jobid="nope")
    assert unknown["errcode"] == 40088
    bad = api.post("/cgi-bin/batch/replaceuser", {"media_id": "nope"}, access_token=token)
    assert bad["errcode"] == 40007


def test_external_contacts_ways_and_welcome_messages(api, ctl, corp, sandbox):
    token, cfg = corp
    userid = cfg["users"][0]["userid"]
    listed = api.get("/cgi-bin/externalcontact/list", access_token=token, userid=userid)
    assert len(listed["external_userid"]) == 2
    detail = api.get(
        "/cgi-bin/externalcontact/get",
        access_token=token,
        external_userid=listed["external_userid"][0],
    )
    assert detail["external_contact"]["external_userid"] == listed["external_userid"][0]
    assert detail["follow_user"][0]["userid"] == userid
    bad = api.get("/cgi-bin/externalcontact/get", access_token=token, external_userid="wmx")
    assert bad["errcode"] == 40096
    batch = api.post(
        "/cgi-bin/externalcontact/batch/get_by_user",
        {"userid_list": [u["userid"] for u in cfg["users"]], "limit": 4},
        access_token=token,
    )
    assert len(batch["external_contact_list"]) == 4
    assert batch["next_cursor"]
    too_many = api.post(
        "/cgi-bin/externalcontact/batch/get_by_user",
        {"userid_list": [userid] * 101},
        access_token=token,
    )
    assert too_many["errcode"] == 40058

    way = api.post(
        "/cgi-bin/externalcontact/add_contact_way",
        {"type": 1, "scene": 2, "user": [userid], "state": "crm"},
        access_token=token,
    )
    assert way["config_id"]
    assert way["qr_code"].startswith("https://")

    code = httpx.post(
        f"{sandbox.base_url}/sandbox/welcome_code",
        json={"corpid": cfg["corpid"], "userid": userid},
    ).json()["welcome_code"]
    body = {"welcome_code": code, "text": {"content": "你好"}}
    sent = api.post("/cgi-bin/externalcontact/send_welcome_msg", body, access_token=token)
    assert sent["errcode"] == 0
    again = api.post("/cgi-bin/externalcontact/send_welcome_msg", body, access_token=token)
    assert again["errcode"] == 41050  # single use


def test_message_send_checks_agentid_and_recipients(api, corp, sandbox):
    token, cfg = corp
    auth = next(a for a in sandbox.state.auths.values() if a.corpid == cfg["corpid"])
    userid = cfg["users"][0]["userid"]
    body = {
        "touser": f"{userid}|ghost",
        "msgtype": "text",
        "agentid": auth.agentid,
        "text": {"content": "hi"},
    }
    sent = api.post("/cgi-bin/message/send", body, access_token=token)
    assert sent["errcode"] == 0
    assert sent["invaliduser"] == "ghost"
    assert sent["msgid"]
    wrong_agent = api.post("/cgi-bin/message/send", {**body, "agentid": 1}, access_token=token)
    assert wrong_agent["errcode"] == 40056
    nobody = api.post("/cgi-bin/message/send", {**body, "touser": "ghost"}, access_token=token)
    assert nobody["errcode"] == 81013
    assert [m["touser"] for m in sandbox.state.corp_data.messages] == [[userid]]


def test_media_round_trip_limits_and_ownership(api, corp):
    token, _ = corp
    data = bytes(range(256)) * 40
    up = api.http.post(
        "/cgi-bin/media/upload",
        params={"access_token": token, "type": "image"},
        files={"media": ("a.png", data, "image/png")},
    ).json()
    assert up["type"] == "image"
    params = {"access_token": token, "media_id": up["media_id"]}
    got = api.http.get("/cgi-bin/media/get", params=params)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert 'filename="a.png"' in got.headers["content-disposition"]
    missing = api.get("/cgi-bin/media/get", access_token=token, media_id="3nope")
    assert missing["errcode"] == 40007
    voice = api.http.post(
        "/cgi-bin/media/upload",
        params={"access_token": token, "type": "voice"},
        files={"media": ("a.amr", b"x" * (2 * 1024 * 1024 + 1), "audio/amr")},
    ).json()
    assert voice["errcode"] == 40010
    wrong_type = api.http.post(
        "/cgi-bin/media/upload",
        params={"access_token": token, "type": "gif"},
        files={"media": ("a.gif", data, "image/gif")},
    ).json()
    assert wrong_type["errcode"] == 40004


def test_the_corp_quota_answers_45009_until_the_block_ends(api, ctl, corp, sandbox):
    token, cfg = corp
    ctl.settings(corp_api_quota_per_minute=3)
    userid = cfg["users"][0]["userid"]
    codes = [
        api.get("/cgi-bin/user/get", access_token=token, userid=userid)["errcode"] for _ in range(5)
    ]
    assert codes == [0, 0, 0, 45009, 45009]
    # Another API of the same corp is not blocked.
    assert api.get("/cgi-bin/tag/list", access_token=token)["errcode"] == 0
    sandbox.advance(61)
    assert api.get("/cgi-bin/user/get", access_token=token, userid=userid)["errcode"] == 0


def test_every_request_is_counted_whatever_its_path(api, sandbox):
    before = sandbox.state.http_hits
    api.http.get("/no/such/path")
    # httpx resolves the dot segments: this reaches a control path, with a token.
    api.http.get("/cgi-bin/../sandbox/state", params={"access_token": "x"})
    api.http.get("/sandbox/state")  # the tests' own control calls do not count
    assert sandbox.state.http_hits == before + 2
