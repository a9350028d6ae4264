"""OpenAPI schema, local interactive docs, and schemathesis against the running API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from django.core.management import call_command

from api import urls as api_urls
from tests.api.conftest import install
from tests.api.conftest import make_caller
from tests.support import ROOT

# Bounded so CI finishes in a few minutes on 2 cores; raise locally to dig deeper.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20240601")


@pytest.mark.django_db
def test_schema_documents_every_endpoint_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    paths = schema["paths"]
    assert len(paths) == len(api_urls.v1)
    for path, operations in paths.items():
        assert path.startswith("/api/v1/")
        for method, operation in operations.items():
            responses = operation["responses"]
            ok = [code for code in responses if code.startswith("2")]
            assert ok, (method, path)
            # A DELETE answers 204, which has no body by definition; anything else has one.
            no_body = ok == ["204"]
            assert no_body == (method == "delete"), (method, path)
            assert no_body or "content" in responses[ok[0]], (method, path)
            for code in ("401", "404", "429", "500"):
                error = responses[code]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            assert operation["security"] == [{"apiKey": []}]
            if not no_body:
                ok_media = responses[ok[0]]["content"]["application/json"]
                assert ok_media.get("examples"), (method, path)
            assert responses["404"]["content"]["application/json"]["examples"]
            bodyless = ("cancel", "rotate_secret")  # actions that take no request body
            if method in ("post", "put") and not operation["operationId"].endswith(bodyless):
                body = operation["requestBody"]["content"]["application/json"]
                assert body.get("examples"), (method, path)
    token = paths["/api/v1/suites/{suite_id}/corps/{corpid}/access-token/"]["get"]
    props = schema["components"]["schemas"]["AccessTokenOutput"]["properties"]
    assert set(props) == {"access_token", "expires_at", "expires_in"}
    assert token["responses"]["200"]["content"]["application/json"]["examples"]


@pytest.mark.django_db
def test_schema_and_docs_are_served_locally_without_a_cdn(client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html
    assert "unpkg" not in html
    assert "jsdelivr" not in html
    asset = next(
        part.split('"')[0] for part in html.split('src="')[1:] if "swagger-ui-bundle" in part
    )
    assert asset.startswith("/static/drf_spectacular_sidecar/")


def run_schemathesis(live_server, key: str, tmp_path, *args: str, config: str = "") -> None:
    toml = tmp_path / "schemathesis.toml"
    toml.write_text(config)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(toml),
        "run",
        f"{live_server.url}/api/schema/",
        "--url",
        live_server.url,
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        # One worker: hypothesis' lambda introspection is not thread-safe (a tool
        # "Runtime Error" with 2 workers, not an API failure).
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        *args,
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    sys.stdout.write(result.stdout[-2500:])  # the summary, visible with -s


@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    platform, live_server, tmp_path
):
    tenant = install(platform)
    caller = make_caller("schemathesis", suites=[platform.suite])
    # 1. Every operation with generated ids, queries and bodies (mostly unknown tenants).
    run_schemathesis(live_server, caller.key, tmp_path)
    # 2. Reads of a real tenant: answers with data, checked against the schema.
    config = (
        "[parameters]\n"
        f'"path.suite_id" = "{tenant.suite.suite_id}"\n'
        f'"path.corpid" = "{tenant.corp.corpid}"\n'
    )
    run_schemathesis(live_server, caller.key, tmp_path, "--include-method", "GET", config=config)
