"""Issue 19: hostile input and the allowlist answer 4xx and the simulator receives nothing.

"Nothing" is the simulator's own count of every request outside its control API
(``http_hits``: any path, known or not, and any token-bearing request): not one call,
not even a token fetch. The Django test client hands the view the path as a web server
decodes it once (``%2e`` → ``.``, ``%252e`` → ``%2e``), without resolving dot segments.
"""

from __future__ import annotations

import pytest

from api import services as api_services
from api.models import AuditLog
from tests.api.conftest import tenant_path
from tests.api.gateway_support import gateway_tenant

HOSTILE_PATHS = [
    ("../access-token/", 400),
    ("user/../../access-token/", 400),
    ("%2e%2e/%2e%2e/access-token/", 400),  # percent-encoded
    ("%252e%252e/%252e%252e/sandbox/state", 400),  # double-encoded
    ("..%2fsandbox%2fstate", 400),  # encoded slash
    ("user/get/../../../sandbox/state", 400),
    ("http://evil.example/cgi-bin/user/get", 400),  # absolute URL
    ("//evil.example/cgi-bin/user/get", 400),  # another host
    ("user/get@evil.example", 400),
    ("user/get%0d%0aX-Injected:%201", 400),  # header injection through the path
    ("user/get%00", 400),
    ("user/get/", 400),
    ("user//get", 400),
    ("user/get;x=1", 400),
    ("a/" * 9 + "b", 400),
    ("x" * 201, 400),
    ("../../sandbox/state", 400),  # outside /cgi-bin/
    ("service/get_provider_token", 403),  # provider and suite token families
    ("service/get_corp_token", 403),
    ("license/create_new_order", 403),
    ("gettoken", 403),
]


@pytest.fixture
def tenant(platform, db):
    return gateway_tenant(platform, paths=["*"])  # even allowing everything


@pytest.mark.parametrize(("path", "status"), HOSTILE_PATHS)
def test_hostile_paths_are_refused_before_anything(tenant, path, status):
    hits = tenant.hits
    response = tenant.caller.get(tenant_path(tenant.authorization, "wecom/") + path)
    assert response.status_code == status, (path, response.content)
    assert response.json()["error"]["code"] in ("invalid_path", "path_not_reachable")
    assert "X-Wecom-Errcode" not in response
    assert tenant.hits == hits  # the simulator received nothing


def test_hostile_queries_and_bodies_are_refused_and_nothing_is_sent(tenant, settings):
    settings.WECOM_GATEWAY_MAX_JSON_BYTES = 2048
    url = tenant.url("message/send")
    http = tenant.caller.http
    hits = tenant.hits
    cases = {
        "header injection in the query": http.get(
            tenant.url("user/get") + "?userid=a%0d%0aHost:%20evil.example"
        ),
        "a NUL in a query name": http.get(tenant.url("user/get") + "?user%00id=a"),
        "too many query parameters": http.get(
            tenant.url("user/get") + "?" + "&".join(f"p{i}=1" for i in range(51))
        ),
        "an oversized JSON body": http.post(
            url, {"text": {"content": "x" * 4096}}, content_type="application/json"
        ),
        "a body that is not JSON": http.post(url, b"{not json", content_type="application/json"),
        "a JSON array": http.post(url, b"[1, 2]", content_type="application/json"),
        "a form body": http.post(url, {"a": "b"}),
        "a text body": http.post(url, b"hello", content_type="text/plain"),
        "a GET with a body": http.generic(
            "GET", tenant.url("user/get"), b'{"a": 1}', content_type="application/json"
        ),
        "a method WeCom never takes": http.put(url, b"{}", content_type="application/json"),
        "a HEAD": http.head(tenant.url("user/get")),
        "an upload without a type": tenant.caller.http.post(
            tenant.url("media/upload"), {"media": b"x"}
        ),
    }
    expected = {
        "header injection in the query": (400, "invalid_query"),
        "a NUL in a query name": (400, "invalid_query"),
        "too many query parameters": (400, "invalid_query"),
        "an oversized JSON body": (413, "body_too_large"),
        "a body that is not JSON": (400, "invalid_json"),
        "a JSON array": (400, "invalid_json"),
        "a form body": (415, "unsupported_media_type"),
        "a text body": (415, "unsupported_media_type"),
        "a GET with a body": (400, "invalid_body"),
        "a method WeCom never takes": (405, "method_not_allowed"),
        "a HEAD": (405, None),
        "an upload without a type": (400, "invalid_media_type"),
    }
    got = {
        name: (r.status_code, r.json()["error"]["code"] if r.content else None)
        for name, r in cases.items()
    }
    assert got == expected
    assert tenant.hits == hits


def test_a_post_without_content_length_is_411(tenant):
    hits = tenant.hits
    response = tenant.caller.http.generic(
        "POST", tenant.url("tag/list"), b"", content_type="application/json", CONTENT_LENGTH=""
    )
    assert response.status_code == 411
    assert tenant.hits == hits


@pytest.mark.django_db
def test_the_allowlist_is_empty_by_default_and_holds(platform):
    nothing = gateway_tenant(platform, paths=())
    some = gateway_tenant(platform, corp_index=1, paths=["user/*", "externalcontact/*"])
    hits = nothing.hits
    refused = nothing.get("user/get", userid=nothing.userid)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "path_not_allowed"
    assert some.get("department/list").status_code == 403
    assert some.post("message/send", {}).status_code == 403
    assert nothing.hits == hits  # none of the refusals reached WeCom
    assert some.get("user/get", userid=some.userid)["X-Wecom-Errcode"] == "0"
    # "*" spans "/": externalcontact/* covers externalcontact/batch/get_by_user.
    batch = some.post("externalcontact/batch/get_by_user", {"userid_list": [some.userid]})
    assert batch["X-Wecom-Errcode"] == "0"
    # The refusals are audited (ids and the path, no body).
    denied = AuditLog.objects.filter(action="wecom.call", status_code=403)
    assert {row.detail["path"] for row in denied} == {"user/get", "department/list", "message/send"}


@pytest.mark.django_db
def test_patterns_for_token_families_cannot_be_granted(platform):
    for bad in (["service/*"], ["license/list_order"], ["gettoken"], ["user/../x"], "user/*"):
        with pytest.raises(api_services.ApiClientError):
            api_services.api_client_create(name=f"bad-{bad!r}", wecom_paths=bad)


@pytest.mark.django_db
def test_the_two_tenant_triad(platform):
    """Anonymous 401, own tenant answered by WeCom, the other tenant 404 with nothing sent."""
    from django.test import Client

    from tests.api.conftest import NOT_FOUND

    mine = gateway_tenant(platform, corp_index=0, name="mine")
    theirs = gateway_tenant(platform, corp_index=1, customized=True, name="theirs")
    hits = mine.hits
    anonymous = Client().get(mine.url("user/get"), {"userid": mine.userid})
    assert anonymous.status_code == 401
    foreign_url = theirs.url("user/get")  # the other client's tenant
    for method in ("get", "post"):
        response = getattr(mine.caller, method)(foreign_url, {"userid": theirs.userid})
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert mine.hits == hits
    own = mine.get("user/get", userid=mine.userid)
    assert own.status_code == 200
    assert own["X-Wecom-Errcode"] == "0"
