"""Callback delivery: encryption and receive ids, retries, faults, URL verification (§7, §8)."""

from __future__ import annotations

import base64
import time

import pytest

from sandbox import SandboxControl
from sandbox import start_sandbox
from sandbox.config import build_scenario
from sandbox.control import SandboxControlError


def pushes_of(ctl, info_type):
    return ctl.pushes(info_type=info_type)


def test_start_pushes_a_ticket_to_every_suite_and_template(api, sandbox, receiver):
    sandbox.wait_pushes(5)
    tickets = receiver.of_type("suite_ticket")
    assert {t["suite_id"] for t in tickets} == {api.suite["suite_id"], api.template["suite_id"]}
    for event in tickets:
        assert event["channel"] == "command"
        # Command URL: receive id and ToUserName are the suite/template id, AgentID empty.
        assert event["receive_id"] == event["suite_id"]
        assert event["to_user"] == event["suite_id"]
        assert event["agent_id"] == ""
        assert set(event["query"]) == {"msg_signature", "timestamp", "nonce"}
        assert event["fields"]["SuiteId"] == event["suite_id"]
        assert event["fields"]["SuiteTicket"] == api.suite_cfg(event["suite_id"])["suite_ticket"]
        assert event["fields"]["TimeStamp"].isdigit()
    assert receiver.errors == []


def test_envelope_is_wecom_shaped_and_32_byte_padded(sandbox, receiver):
    sandbox.wait_pushes(5)
    body = receiver.records[0]["body"]
    assert body.startswith("<xml><ToUserName><![CDATA[")
    assert "<AgentID><![CDATA[]]></AgentID><Encrypt><![CDATA[" in body
    encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert len(base64.b64decode(encrypt)) % 32 == 0


def test_periodic_ticket_push_on_the_simulator_clock(receiver):
    scenario = receiver.know(build_scenario())
    handle = start_sandbox(callback_base=receiver.url, ticket_interval=600, config=scenario)
    try:
        handle.wait_pushes(5)
        assert len(receiver.of_type("suite_ticket")) == 2
        handle.advance(599)
        handle.wait_pushes(5)
        assert len(receiver.of_type("suite_ticket")) == 2
        handle.advance(2)
        handle.wait_pushes(5)
        tickets = receiver.of_type("suite_ticket")
        assert len(tickets) == 4
        assert len({t["fields"]["SuiteTicket"] for t in tickets}) == 4
    finally:
        handle.stop()


def test_ticket_interval_of_one_second_in_real_time(receiver):
    scenario = receiver.know(build_scenario())
    handle = start_sandbox(callback_base=receiver.url, ticket_interval=1, config=scenario)
    try:
        time.sleep(1.3)
        handle.wait_pushes(5)
        assert len(receiver.of_type("suite_ticket")) >= 4
    finally:
        handle.stop()


def test_push_ticket_now(api, ctl, sandbox, receiver):
    tickets = ctl.push_ticket()
    assert set(tickets) == {api.suite["suite_id"], api.template["suite_id"]}
    assert ctl.wait_pushes(5) is True
    pushed = {t["fields"]["SuiteTicket"] for t in receiver.of_type("suite_ticket")}
    assert set(tickets.values()) <= pushed


def test_create_auth_push(api, ctl, sandbox, receiver):
    result = ctl.install(api.suite["suite_id"], api.corps[1]["corpid"], state="mkt")
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("create_auth")
    assert event["fields"]["AuthCode"] == result["auth_code"]
    assert event["fields"]["State"] == "mkt"
    assert "AuthCorpId" not in event["fields"]
    [record] = pushes_of(ctl, "create_auth")
    assert record["status"] == "delivered"
    assert record["attempts"] == 1
    assert record["slow"] is False
    assert record["reply_body"] == "success"


def test_customized_install_pushes_to_the_template_url(api, ctl, sandbox, receiver):
    ctl.install(api.template["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("create_auth")
    assert event["path"] == f"/callbacks/suite/{api.template['suite_id']}/command/"
    assert event["receive_id"] == api.template["suite_id"]


def test_pushes_never_block_the_api(api, ctl, sandbox, receiver):
    # The receiver holds every push until released: if the API waited on a push, the
    # install and the token call below would never return while it is held.
    sandbox.wait_pushes(5)  # the fixture's own pushes are in
    receiver.hold.clear()
    try:
        ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
        assert api.provider_token()
        assert receiver.of_type("create_auth") == []  # still held: nothing waited for it
    finally:
        receiver.hold.set()
    assert sandbox.wait_pushes(5)
    assert len(receiver.of_type("create_auth")) == 1


def test_retry_only_on_timeout(api, ctl, sandbox, receiver):
    sandbox.wait_pushes(5)
    ctl.settings(push_timeout=0.3)
    receiver.delays = [0.8]
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    [record] = pushes_of(ctl, "create_auth")
    assert record["attempts"] == 2
    assert record["attempt_log"][0]["error"] == "ReadTimeout"
    assert record["status"] == "delivered"
    # The retry carried the same payload: the platform must dedupe.
    time.sleep(0.6)
    events = receiver.of_type("create_auth")
    assert len(events) == 2
    assert events[0]["body"] == events[1]["body"]


def test_connection_failure_is_retried_three_more_times(api, ctl, sandbox):
    ctl.settings(callback_base="http://127.0.0.1:9", push_timeout=0.3)
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(10)
    [record] = pushes_of(ctl, "create_auth")
    assert record["attempts"] == 4
    assert record["status"] == "failed"
    assert record["url"].startswith("http://127.0.0.1:9/")


def test_non_2xx_is_recorded_not_retried(api, ctl, sandbox, receiver):
    sandbox.wait_pushes(5)
    receiver.status = 500
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    [record] = pushes_of(ctl, "create_auth")
    assert record["attempts"] == 1
    assert record["status"] == "rejected"
    assert record["reply_status"] == 500


def test_wrong_body_is_recorded_not_retried(api, ctl, sandbox, receiver):
    sandbox.wait_pushes(5)
    receiver.reply = "ok"
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    [record] = pushes_of(ctl, "create_auth")
    assert (record["attempts"], record["status"], record["reply_body"]) == (1, "rejected", "ok")


def test_slow_auth_answers_are_flagged(api, ctl, sandbox, receiver):
    sandbox.wait_pushes(5)
    ctl.settings(slow_ack_ms=100)
    receiver.delays = [0.3]
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    [record] = pushes_of(ctl, "create_auth")
    assert record["slow"] is True
    assert record["status"] == "delivered"


def test_callback_fault_drop_and_delay(api, ctl, sandbox, receiver):
    sandbox.wait_pushes(5)
    ctl.add_fault(target="callback", info_type="create_auth", drop=True, times=1)
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    assert pushes_of(ctl, "create_auth")[0]["status"] == "dropped"
    assert receiver.of_type("create_auth") == []
    ctl.add_fault(target="callback", endpoint="cancel_auth", delay_ms=300)
    started = time.perf_counter()
    ctl.cancel_auth(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    assert time.perf_counter() - started >= 0.3
    assert len(receiver.of_type("cancel_auth")) == 1


def test_callback_fault_validation(ctl):
    with pytest.raises(SandboxControlError) as exc:
        ctl.add_fault(target="callback", info_type="create_auth")
    assert exc.value.status == 400
    with pytest.raises(SandboxControlError) as exc:
        ctl.add_fault(endpoint="gettoken")
    assert exc.value.status == 400


def test_url_verification(api, ctl, receiver):
    for channel, suite_id in (
        ("command", api.suite["suite_id"]),
        ("data", api.template["suite_id"]),
        ("system", None),
    ):
        result = ctl.verify_url(channel, suite_id)
        assert result["ok"] is True, result
        assert result["reply_body"] == result["expected"]
    assert len(receiver.gets) == 3
    # echostr arrives URL-decoded intact ('+' kept), encrypted with the provider corpid.
    assert all(g["plain"] for g in receiver.gets)
    assert len(ctl._call("GET", "verifications")["verifications"]) == 3


def test_url_verification_fails_on_a_wrong_reply(api, ctl, sandbox):
    ctl.settings(callback_base=sandbox.base_url)  # the simulator itself is no platform
    result = ctl.verify_url("command", api.suite["suite_id"])
    assert result["ok"] is False


def test_no_callback_base_records_no_url(receiver):
    handle = start_sandbox(ticket_interval=0)
    try:
        with SandboxControl(handle.base_url) as ctl:
            records = ctl.pushes("suite_ticket")
            assert {r["status"] for r in records} == {"no_url"}
            assert ctl.wait_pushes(1) is True
    finally:
        handle.stop()


def test_contact_events_third_party_shape(api, ctl, sandbox, receiver):
    grant = api.authorize()
    corpid = grant["corpid"]
    result = ctl.contact_event(
        corpid, "create_user", data={"name": "新人", "department": [1, 2], "mobile": "13800000000"}
    )
    assert len(result["pushes"]) == 1
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("change_contact")
    fields = event["fields"]
    assert fields["ChangeType"] == "create_user"
    assert fields["AuthCorpId"] == corpid
    assert fields["Department"] == "1,2"
    assert fields["UserID"].startswith("wo")
    new_user = fields["UserID"]
    token = api.corp_token(grant)
    found = api.post(
        "/cgi-bin/batch/userid_to_openuserid", {"userid_list": [new_user]}, access_token=token
    )
    assert found["open_userid_list"][0]["open_userid"] == fields["OpenUserID"]
    ctl.contact_event(corpid, "update_user", data={"userid": new_user, "position": "经理"})
    ctl.contact_event(corpid, "delete_user", data={"userid": new_user})
    ctl.contact_event(corpid, "create_party", data={"Id": 5, "Name": "研发", "ParentId": 1})
    ctl.contact_event(
        corpid,
        "add_external_contact",
        info_type="change_external_contact",
        data={"UserID": new_user, "ExternalUserID": "wmEXT", "WelcomeCode": "W"},
    )
    sandbox.wait_pushes(5)
    changes = [e["fields"] for e in receiver.of_type("change_contact")]
    update = changes[1]
    assert update["ChangeType"] == "update_user"
    assert update["Position"] == "经理"
    assert "Name" not in update  # only the changed fields (§8 Parsing)
    assert changes[2]["ChangeType"] == "delete_user"
    assert changes[3]["Id"] == "5"
    [external] = receiver.of_type("change_external_contact")
    assert external["fields"]["ExternalUserID"] == "wmEXT"


def test_contact_events_customized_use_the_data_url(api, ctl, sandbox, receiver):
    grant = api.authorize(api.template["suite_id"])
    user = api.corps[0]["users"][1]["userid"]
    ctl.contact_event(
        grant["corpid"], "update_user", data={"userid": user, "new_userid": "renamed"}
    )
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("change_contact")
    assert event["channel"] == "data"
    assert event["receive_id"] == grant["corpid"]
    assert event["fields"]["MsgType"] == "event"
    assert event["fields"]["NewUserID"] == "renamed"


def test_change_app_admin_on_the_data_url(api, ctl, sandbox, receiver):
    grant = api.authorize()
    second = api.corps[0]["users"][1]["userid"]
    ctl.change_app_admin(grant["suite_id"], grant["corpid"], admins=[second])
    sandbox.wait_pushes(5)
    [event] = receiver.of_type("change_app_admin")
    assert event["channel"] == "data"
    assert event["fields"]["FromUserName"] == "sys"
    admins = api.post("/cgi-bin/agent/get_admin_list", {}, access_token=api.corp_token(grant))
    assert [a["userid"] for a in admins["admin"]] == [second]


def test_pushes_filters_and_clear(api, ctl, sandbox):
    ctl.install(api.suite["suite_id"], api.corps[0]["corpid"])
    sandbox.wait_pushes(5)
    assert {p["info_type"] for p in ctl.pushes(channel="command")} == {
        "suite_ticket",
        "create_auth",
    }
    assert ctl.pushes(status="delivered")
    last = ctl.pushes()[-1]["id"]
    assert ctl.pushes(since_id=last) == []
    assert ctl.clear_pushes() == 3
    assert ctl.pushes() == []
