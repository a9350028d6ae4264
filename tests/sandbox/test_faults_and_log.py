"""Fault injection and the request log (§11 item 17)."""

from __future__ import annotations

import time

import pytest

from sandbox.control import SandboxControlError

BALANCE = "/cgi-bin/service/get_account_balance"


def test_errcode_fault_for_one_endpoint_and_count(api, ctl):
    token = api.provider_token()
    fault = ctl.add_fault(endpoint="get_account_balance", errcode=-1, times=2)
    assert fault["times"] == 2
    assert api.get(BALANCE, provider_access_token=token)["errcode"] == -1
    assert api.get(BALANCE, provider_access_token=token)["errcode"] == -1
    data = api.get(BALANCE, provider_access_token=token)
    assert data["errcode"] == 0
    assert ctl.faults() == []
    faulted = ctl.requests("get_account_balance")
    assert [r["fault"] is not None for r in faulted] == [True, True, False]
    assert [r["errcode"] for r in faulted] == [-1, -1, 0]


@pytest.mark.parametrize("errcode", [-1, 45009, 45033, 40014, 42001])
def test_global_errcode_fault(api, ctl, errcode):
    ctl.add_fault(endpoint="*", errcode=errcode, count=1)
    body = {"corpid": api.provider["corpid"], "provider_secret": api.provider["provider_secret"]}
    data = api.post("/cgi-bin/service/get_provider_token", body)
    assert data["errcode"] == errcode
    assert "hint: [" in data["errmsg"]
    assert "provider_access_token" in api.post("/cgi-bin/service/get_provider_token", body)


def test_http_5xx_fault(api, ctl):
    token = api.provider_token()
    ctl.add_fault(endpoint="get_account_balance", http_status=503, times=1)
    resp = api.http.get(BALANCE, params={"provider_access_token": token})
    assert resp.status_code == 503
    assert ctl.requests("get_account_balance")[-1]["http_status"] == 503
    assert api.get(BALANCE, provider_access_token=token)["errcode"] == 0


def test_latency_fault(api, ctl):
    token = api.provider_token()
    ctl.add_fault(endpoint="get_account_balance", latency_ms=300, times=1)
    started = time.perf_counter()
    assert api.get(BALANCE, provider_access_token=token)["errcode"] == 0
    assert time.perf_counter() - started >= 0.3


def test_rate_zero_never_fires_and_delete_clears(api, ctl):
    token = api.provider_token()
    ctl.add_fault(endpoint="*", errcode=-1, rate=0)
    for _ in range(5):
        assert api.get(BALANCE, provider_access_token=token)["errcode"] == 0
    ctl.add_fault(endpoint="*", errcode=45009, rate=1)
    assert api.get(BALANCE, provider_access_token=token)["errcode"] == 45009
    assert ctl.clear_faults() == 2
    assert api.get(BALANCE, provider_access_token=token)["errcode"] == 0


def test_partial_rate_fires_sometimes(api, ctl):
    token = api.provider_token()
    ctl.add_fault(endpoint="get_account_balance", errcode=-1, rate=0.5)
    codes = {api.get(BALANCE, provider_access_token=token)["errcode"] for _ in range(40)}
    assert codes == {0, -1}


@pytest.mark.parametrize(
    "fault",
    [{"endpoint": "x"}, {"errcode": -1, "rate": 2}, {"http_status": 200}, {"bogus": 1}],
)
def test_invalid_faults_are_refused(ctl, fault):
    with pytest.raises(SandboxControlError) as exc:
        ctl.add_fault(**fault)
    assert exc.value.status == 400


def test_request_log(api, ctl):
    ctl.clear_requests()
    token = api.provider_token()
    api.get(BALANCE, provider_access_token=token)
    api.get(BALANCE, provider_access_token="bad")
    log = ctl.requests()
    assert [r["endpoint"] for r in log] == [
        "get_provider_token",
        "get_account_balance",
        "get_account_balance",
    ]
    entry = log[1]
    assert entry["method"] == "GET"
    assert entry["path"] == BALANCE  # never the query string: it holds the token
    assert entry["errcode"] == 0
    assert isinstance(entry["time"], int)
    assert entry["duration_ms"] >= 0
    assert [r["errcode"] for r in ctl.requests(errcode="40082")] == [40082]
    assert ctl.requests(since_id=log[1]["id"]) == [log[2]]
    assert all(token not in str(r) for r in log)
    assert ctl.clear_requests() == 3
    assert ctl.requests() == []


def test_control_calls_are_not_logged(ctl):
    ctl.clear_requests()
    ctl.config()
    ctl.state()
    assert ctl.requests() == []
