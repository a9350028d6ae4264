"""Start-up, configuration, the control API surface, snapshots and the process entry."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sandbox import SandboxControl
from sandbox import start_sandbox
from sandbox.api import ROUTES
from sandbox.config import ConfigError
from sandbox.control import SandboxControlError

ROOT = Path(__file__).resolve().parents[2]


def test_default_scenario_shape(ctl):
    cfg = ctl.config()
    provider = cfg["provider"]
    assert re.fullmatch(r"ww[0-9a-f]{16}", provider["corpid"])
    assert provider["provider_secret"]
    assert re.fullmatch(r"[A-Za-z0-9]{43}", provider["encoding_aes_key"])
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", provider["token"])
    kinds = sorted(s["kind"] for s in cfg["suites"])
    assert kinds == ["customized_template", "third_party"]
    for suite in cfg["suites"]:
        prefix = "dk" if suite["kind"] == "customized_template" else "ww"
        assert suite["suite_id"].startswith(prefix)
        assert suite["secret"]
        assert suite["suite_ticket"]
        assert suite["command_url"].endswith(f"/callbacks/suite/{suite['suite_id']}/command/")
        assert suite["data_url"].endswith(f"/callbacks/suite/{suite['suite_id']}/data/")
    assert provider["system_url"].endswith(f"/callbacks/provider/{provider['corpid']}/")
    assert len(cfg["corps"]) == 3
    for corp in cfg["corps"]:
        assert corp["corpid"].startswith("wp")
        assert 2 <= len(corp["users"]) <= 3
        assert all(u["userid"].startswith("wo") for u in corp["users"])
        assert corp["users"][0]["admin"] is True
    assert cfg["buyers"] == ["sandbox_buyer"]


def test_secrets_are_random_per_start():
    first = start_sandbox(ticket_interval=0)
    second = start_sandbox(ticket_interval=0)
    try:
        a, b = first.config, second.config
        assert a["provider"]["provider_secret"] != b["provider"]["provider_secret"]
        assert a["suites"][0]["secret"] != b["suites"][0]["secret"]
        assert a["suites"][0]["suite_id"] != b["suites"][0]["suite_id"]
    finally:
        first.stop()
        second.stop()


def test_config_from_yaml_file(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(
        """
provider: {corpid: wwprovider00000001, provider_secret: psecret}
suites:
  - {suite_id: wwsuite, secret: s1, kind: third_party, name: CRM}
  - {suite_id: dktemplate, kind: customized_template}
corps:
  - {corpid: wpcorp1, name: 甲公司, users: [{userid: woadmin, name: 管理员, admin: true}, 乙]}
buyers: [boss]
settings: {unit_price_base: 1, code_generation_seconds: 5}
""",
        encoding="utf-8",
    )
    handle = start_sandbox(config=str(path), ticket_interval=0)
    try:
        cfg = handle.config
        assert cfg["provider"]["corpid"] == "wwprovider00000001"
        assert cfg["provider"]["provider_secret"] == "psecret"
        assert [s["suite_id"] for s in cfg["suites"]] == ["wwsuite", "dktemplate"]
        assert cfg["suites"][1]["secret"]  # generated
        assert cfg["corps"][0]["users"][0]["userid"] == "woadmin"
        assert cfg["corps"][0]["users"][1]["name"] == "乙"
        assert cfg["buyers"] == ["boss"]
        assert cfg["settings"]["code_generation_seconds"] == 5.0
    finally:
        handle.stop()


def test_config_json_dict_and_errors(tmp_path):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"suites": [{"kind": "third_party"}], "corps": []}))
    handle = start_sandbox(config=path, ticket_interval=0)
    try:
        assert len(handle.config["suites"]) == 1
    finally:
        handle.stop()
    with pytest.raises(ConfigError):
        start_sandbox(config={"suites": [{"kind": "nope"}]})
    with pytest.raises(ConfigError):
        start_sandbox(config={"corps": [{"name": "x", "colour": "red"}]})
    with pytest.raises(ConfigError):
        start_sandbox(config={"settings": {"no_such": 1}})


def test_add_suite_pushes_a_ticket_and_works(api, ctl, sandbox, receiver):
    suite = ctl.add_suite(kind="third_party", name="新应用")
    assert suite["suite_id"].startswith("ww")
    receiver.suites[suite["suite_id"]] = (suite["token"], suite["encoding_aes_key"])
    sandbox.wait_pushes(5)
    assert api.suite_token(suite["suite_id"])
    with pytest.raises(SandboxControlError) as exc:
        ctl.add_suite(suite_id=suite["suite_id"])
    assert exc.value.status == 409


def test_add_corp_and_user(api, ctl):
    corp = ctl.add_corp(name="新企业", users=[{"name": "甲", "admin": True}])
    user = ctl.add_user(corp["corpid"], name="乙")
    assert user["userid"].startswith("wo")
    cfg = ctl.config()
    added = next(c for c in cfg["corps"] if c["corpid"] == corp["corpid"])
    assert [u["name"] for u in added["users"]] == ["甲", "乙"]
    code = ctl.install(api.suite["suite_id"], corp["corpid"], push=False)
    assert code["auth_code"]


def test_control_errors(ctl, sandbox):
    http = httpx.Client(base_url=sandbox.base_url, trust_env=False)
    assert http.get("/sandbox/nope").status_code == 404
    assert http.get("/sandbox/install").status_code == 405
    assert http.post("/sandbox/install", content=b"[1]").status_code == 400
    resp = http.post("/sandbox/install", json={"suite_id": "wwnope", "corpid": "x"})
    assert resp.status_code == 404
    assert "unknown suite" in resp.json()["error"]
    assert http.post("/sandbox/install", json={}).status_code == 400
    assert http.post("/sandbox/clock/advance", json={"seconds": -1}).status_code == 400
    assert http.post("/sandbox/settings", json={"token_ttl": True}).status_code == 400
    http.close()


def test_clock_and_state(api, ctl, sandbox):
    grant = api.authorize()
    before = ctl.clock()
    after = ctl.advance(3600)
    assert after["offset"] == before["offset"] + 3600
    assert after["now"] >= before["now"] + 3600
    state = ctl.state()
    [auth] = state["auths"]
    assert auth["permanent_code"] == grant["permanent_code"]
    assert auth["corpid"] == grant["corpid"]
    assert state["auth_codes"][0]["used"] is True
    assert set(state) >= {"orders", "codes", "tickets", "trials", "tokens", "pay_jobs"}


def test_snapshot_round_trip(tmp_path):
    path = str(tmp_path / "state.json")
    first = start_sandbox(ticket_interval=0, snapshot=path)
    with SandboxControl(first.base_url) as ctl:
        cfg = ctl.config()
        suite = next(s for s in cfg["suites"] if s["kind"] == "third_party")
        corpid = cfg["corps"][0]["corpid"]
        ctl.install(suite["suite_id"], corpid, push=False)
        ctl.advance(100)
    permanent_code = first.state.auth(suite["suite_id"], corpid).permanent_code
    first.stop()
    assert Path(path).exists()
    second = start_sandbox(ticket_interval=0, snapshot=path)
    try:
        assert second.config["provider"] == {**cfg["provider"], "system_url": None}
        assert second.state.auth(suite["suite_id"], corpid).permanent_code == permanent_code
        assert second.state.clock.offset >= 100
        # The old ticket is still valid (within 1800 s) and a new one was pushed at start.
        with httpx.Client(base_url=second.base_url, trust_env=False) as http:
            body = {
                "suite_id": suite["suite_id"],
                "suite_secret": suite["secret"],
                "suite_ticket": suite["suite_ticket"],
            }
            assert http.post("/cgi-bin/service/get_suite_token", json=body).json()["errcode"] == 0
    finally:
        second.stop()


def test_handle_helpers(sandbox):
    assert sandbox.base_url == f"http://127.0.0.1:{sandbox.port}"
    before = sandbox.state.now()
    sandbox.advance(50)
    assert sandbox.state.now() >= before + 50
    assert sandbox.wait_pushes(5) is True
    with sandbox.control() as ctl:
        assert ctl.config()["provider"]["corpid"] == sandbox.state.provider.corpid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_runs_as_a_process():
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            "--ticket-interval",
            "5",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        data = httpx.get(f"http://127.0.0.1:{port}/sandbox/config", trust_env=False).json()
        assert data["ticket_interval"] == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_management_command_arguments():
    pytest.importorskip("django")
    from wecom_provider.management.commands.wecom_sandbox import Command

    parser = Command().create_parser("manage.py", "wecom_sandbox")
    opts = parser.parse_args(["--port", "9811", "--ticket-interval", "2", "--config", "x.yaml"])
    assert (opts.port, opts.ticket_interval, opts.config) == (9811, 2.0, "x.yaml")
    assert opts.callback_base == "http://127.0.0.1:8000"


def test_routes_match_the_client_endpoint_registry():
    """Every endpoint the platform's client knows is served with its method and token param."""
    endpoints = pytest.importorskip("wecom.endpoints")
    served = {r.name: r for r in ROUTES.values()}
    for ep in endpoints.ENDPOINTS.values():
        route = ROUTES.get(ep.path)
        assert route is not None, f"{ep.name} {ep.path} is not served"
        assert route.name == ep.name
        assert route.method == ep.method.value, ep.name
        assert route.token_param == ep.token_param, ep.name
    assert set(served) >= set(endpoints.ENDPOINTS)


def test_process_survives_many_quick_requests(api):
    # 200 back-to-back requests on fresh connections: none refused, none failed
    # (speed is bench/ territory, not a test's).
    token = api.provider_token()
    for _ in range(200):
        assert (
            api.get("/cgi-bin/service/get_account_balance", provider_access_token=token)["errcode"]
            == 0
        )
