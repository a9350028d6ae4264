"""Issue 15: forced refreshes from many processes make one WeCom call (tokens and tickets).

Real OS processes: four gunicorn workers answering POST …/access-token/refresh/, and
four Python processes asking for a JS-SDK ticket; the simulator counts the calls.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import httpx
import pytest

from api import services as api_services
from api.models import JsapiTicket
from tenants import credentials
from tenants.models import CredentialToken
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path
from tests.support import ROOT
from tests.support import gunicorn_server
from tests.tenants.test_tokens import child_env


@pytest.mark.django_db(transaction=True)
def test_100_forced_refreshes_across_4_gunicorn_workers_make_one_wecom_call(platform):
    authorization = install(platform)
    caller = make_caller("forced-http", suites=[platform.suite])
    stale = credentials.token_get(authorization).value
    platform.control.revoke_tokens(token=stale)  # WeCom dropped it early
    before = len(platform.requests("get_corp_token"))
    results: list[tuple[int, dict]] = []
    # The access log names the worker process of every request (%(p)s: its pid).
    access_log = ("--access-logfile", "-", "--access-logformat", "served-by-pid=%(p)s")
    with gunicorn_server(child_env(platform), workers=4, args=access_log) as web:
        url = web.url + tenant_path(authorization, "access-token/refresh/")
        barrier = threading.Barrier(100)

        def report() -> None:
            with httpx.Client(timeout=60, trust_env=False) as http:
                barrier.wait()
                response = http.post(
                    url,
                    json={"stale_token": stale},
                    headers={"Authorization": f"Bearer {caller.key}"},
                )
                results.append((response.status_code, response.json()))

        threads = [threading.Thread(target=report) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        log = web.log_tail(chars=200_000)
    assert [status for status, _ in results] == [200] * 100, (results[:3], log)
    tokens = {body["access_token"] for _, body in results}
    current = CredentialToken.objects.get(authorization=authorization).value
    assert tokens == {current}  # every caller got the new token
    assert stale not in tokens
    assert len(platform.requests("get_corp_token")) - before == 1
    # Really many processes: the reports were answered by more than one worker (which
    # share the lock and the rows only through Redis and PostgreSQL).
    pids = set(re.findall(r"served-by-pid=<?(\d+)>?", log))
    assert len(pids) >= 2, log[-2000:]


TICKET_CALLERS = """
import json, sys, threading
import django
django.setup()
from api import services
from tenants.models import Authorization
authorization = Authorization.objects.select_related("suite", "corp").get(pk=int(sys.argv[1]))
barrier = threading.Barrier(int(sys.argv[2]))
values, errors = [], []
def call():
    try:
        barrier.wait()
        ticket = services.jsapi_ticket_get(
            authorization=authorization, kind="corp", rejected=sys.argv[3])
        values.append(ticket.value)
    except Exception as exc:
        errors.append(type(exc).__name__)
threads = [threading.Thread(target=call) for _ in range(int(sys.argv[2]))]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"values": sorted(set(values)), "count": len(values), "errors": errors}))
"""


@pytest.mark.django_db(transaction=True)
def test_100_forced_ticket_refreshes_across_4_processes_make_one_wecom_call(platform):
    authorization = install(platform)
    stale = api_services.jsapi_ticket_get(authorization=authorization, kind="corp").value
    before = len(platform.requests("get_jsapi_ticket"))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", TICKET_CALLERS, str(authorization.pk), "25", stale],
            cwd=ROOT,
            env=child_env(platform),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[]] * 4
    assert sum(r["count"] for r in results) == 100
    values = {v for r in results for v in r["values"]}
    row = JsapiTicket.objects.get(authorization=authorization, kind="corp")
    assert values == {row.value}  # all 100 hold the ticket stored by the one fetch
    assert len(platform.requests("get_jsapi_ticket")) - before == 1
    assert row.fetch_count == 2
    assert row.forced_refresh_at is not None  # the cool-down started
