"""Issue 14 item 3 over real HTTP: a suspend or cancel bites in every gunicorn worker at once.

The change is made in this process; the requests go to a separate gunicorn server with two
sync workers whose Redis and database caches were warmed first. Every request sent after
the change committed must be refused: there is no per-process cache to wait out, so
"within 1 s" holds with a margin of the whole second.
"""

import httpx
import pytest

from tenants import services
from tests.api.conftest import make_caller
from tests.api.conftest import tenant_path
from tests.support import gunicorn_server
from tests.tenants.test_tokens import child_env
from tests.tenants.test_tokens import install

SIGNATURE_BODY = {"url": "https://app.example.com/page", "kind": "corp"}


def _revoke(change: str, authorization) -> None:
    if change == "suspend":
        services.authorization_suspend(authorization=authorization, actor="ops", reason="test")
    else:
        services.authorization_cancel(authorization=authorization, actor="ops")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["suspend", "cancel"])
def test_revocation_in_one_process_is_refused_by_every_gunicorn_worker(platform, change):
    authorization = install(platform)
    caller = make_caller(f"http-revoke-{change}", suites=[platform.suite])
    token_url = tenant_path(authorization, "access-token/")
    signature_url = tenant_path(authorization, "jsapi-signature/")
    with (
        gunicorn_server(child_env(platform), workers=2) as web,
        httpx.Client(
            base_url=web.url, headers={"Authorization": f"Bearer {caller.key}"}, timeout=30
        ) as http,
    ):
        # Warm both workers and both caches (Redis copies, database rows).
        warm = [http.get(token_url).status_code for _ in range(12)]
        warm += [http.post(signature_url, json=SIGNATURE_BODY).status_code for _ in range(12)]
        assert set(warm) == {200}
        wecom_calls = len(platform.requests(None))

        _revoke(change, authorization)

        answers = []
        for _ in range(10):
            answers.append(http.get(token_url))
            answers.append(http.post(signature_url, json=SIGNATURE_BODY))
            answers.append(
                http.put(tenant_path(authorization, "license/auto-active/"), json={"enabled": True})
            )
            answers.append(
                http.post(
                    tenant_path(authorization, "license/accounts/activate/"),
                    json={"userid": "u1"},
                )
            )
        statuses = {r.status_code for r in answers}
        codes = {r.json()["error"]["code"] for r in answers}

    # Every answer, the very first one included, is the refusal: nothing was served late.
    assert statuses == {409}, [r.text for r in answers if r.status_code != 409][:3]
    assert codes == {"authorization_inactive"}
    assert len(platform.requests(None)) == wecom_calls  # and nothing reached WeCom
