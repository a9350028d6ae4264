"""No seeded secret ever reaches a log line, an error page, an admin page or an API answer.

A full scenario runs against the simulator with a real Celery worker: tickets, installs
(redirect and marketplace), a 代开发 install, a paid order, an activated account, a
failing callback, rejected junk, a dissolved corp and a cancellation. Then every error
page, every admin page and the internal API are fetched. The secrets come from the
simulator's own state (everything it minted or handed out) and the platform's settings.

Where the text is looked for:

- the logs of the whole test in this process: pytest's caplog at DEBUG, and what the
  project's own handlers (built from ``settings.LOGGING``: filters and formatter) write;
- everything the worker process logged, at DEBUG, through its configured handlers;
- the bodies of 400/403/404/500 pages, admin changelists and change pages, API answers.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.contrib import admin
from django.core.management import call_command
from django.test import Client
from django.urls import NoReverseMatch
from django.urls import reverse
from django.utils.module_loading import import_string

from tenants.models import Authorization
from tenants.models import Suite
from tests.ops.scenario import Day
from tests.ops.scenario import Scenario
from tests.ops.scenario import logging_worker
from tests.ops.scenario import worker_env
from wecom_provider.observability.logs import RedactingFilter

# --- the secrets ----------------------------------------------------------------------------------


def seeded_secrets(platform, extra_codes: list[str]) -> dict[str, str]:
    """Return {what: value} for every secret the scenario involved."""
    state = platform.sandbox.state
    config = platform.sandbox.config
    found: dict[str, str] = {}

    def add(label: str, value: str | None) -> None:
        # Labels never quote the value: a failure message must not print a secret.
        if value and value not in found.values():
            found[f"{label} #{len(found) + 1}"] = value

    provider = config["provider"]
    add("provider secret", provider["provider_secret"])
    add("provider callback Token", provider["token"])
    add("provider EncodingAESKey", provider["encoding_aes_key"])
    for suite in config["suites"]:
        add(f"suite {suite['suite_id']} secret", suite["secret"])
        add(f"suite {suite['suite_id']} callback Token", suite["token"])
        add(f"suite {suite['suite_id']} EncodingAESKey", suite["encoding_aes_key"])
    for tickets in state.tickets.values():
        for ticket in tickets:
            add("suite ticket", ticket.ticket)
    for auth in state.auths.values():
        add("permanent code", auth.permanent_code)
        for retired in auth.retired_codes:
            add("retired permanent code", retired)
    for code in state.auth_codes.values():
        add("auth code", code.code)
        add("permanent code (reset)", code.permanent_code)
    for code in extra_codes:
        add("auth code", code)
    for code in state.pre_auth_codes.values():
        add("pre-auth code", code.code)
    for ticket in state.js_tickets.values():
        add("jsapi ticket", ticket.ticket)
    for token in state.tokens.values():
        add(f"{token.kind} access token", token.value)
    for part in django_settings.FIELD_ENCRYPTION_KEYS.split(","):
        key_id, _, material = part.partition(":")
        add(f"FIELD_ENCRYPTION_KEYS {key_id}", material)
        add(f"FIELD_ENCRYPTION_KEYS {key_id} (url-encoded)", quote(material, safe=""))
    add("DJANGO_SECRET_KEY", django_settings.SECRET_KEY)
    return found


def leaks(text: str, secrets: dict[str, str], *, allowed: frozenset[str] = frozenset()) -> list:
    return [label for label, value in secrets.items() if value in text and value not in allowed]


# --- the logs -------------------------------------------------------------------------------------


def _project_handler(stream: io.StringIO) -> logging.Handler:
    """A handler built like settings.LOGGING's console handler: same filters, formatter."""
    config = django_settings.LOGGING
    console = config["handlers"]["console"]
    handler = logging.StreamHandler(stream)
    for name in console["filters"]:
        handler.addFilter(import_string(config["filters"][name]["()"])())
    handler.setFormatter(import_string(config["formatters"][console["formatter"]]["()"])())
    return handler


@contextlib.contextmanager
def project_logs() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Capture at DEBUG what the project's handlers write, for every logger of the config.

    Yields (a StringIO handler's output, the configured console handlers' output).
    """
    own, configured = io.StringIO(), io.StringIO()
    handler = _project_handler(own)
    names = [
        "",
        *(
            name
            for name, options in django_settings.LOGGING["loggers"].items()
            if options.get("propagate", True) is False
        ),
    ]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    consoles = {
        id(h): h
        for logger in loggers
        for h in logger.handlers
        if any(isinstance(f, RedactingFilter) for f in h.filters)
    }
    assert consoles, "settings.LOGGING installed no redacting handler"
    streams = {key: h.setStream(configured) for key, h in consoles.items()}
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield own, configured
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        for key, h in consoles.items():
            h.setStream(streams[key])


# --- the pages ------------------------------------------------------------------------------------


def error_pages(platform, day: Day) -> dict[str, str]:
    suite = platform.suite
    used_code = day.auth_codes[0]
    client = Client(raise_request_exception=False)
    pages: dict[str, tuple[int, bytes]] = {}

    def fetch(label: str, expected: int, response) -> None:
        assert response.status_code == expected, (label, response.status_code)
        pages[label] = response.content.decode(errors="replace")

    fetch("404 page", 404, client.get("/no-such-page/"))
    fetch("404 suite", 404, client.get("/install/wwnosuchsuite/"))
    fetch("400 bad host", 400, client.get("/healthz", HTTP_HOST="evil.invalid"))
    # The install redirect replayed with a code already exchanged: the page answers from
    # the first exchange; and with a code WeCom never issued: refused.
    done = f"/install/{suite.suite_id}/done/"
    fetch("install page, code used", 200, client.get(done, {"auth_code": used_code}))
    fetch("400 install, unknown code", 400, client.get(done, {"auth_code": "Zz" * 20}))
    fetch(
        "403 csrf",
        403,
        Client(enforce_csrf_checks=True).post(
            "/admin/login/", {"username": "ops", "password": "x"}
        ),
    )
    fetch("403 metrics", 403, client.get("/metrics", REMOTE_ADDR="192.0.2.10"))
    fetch(
        "403 callback signature",
        403,
        client.post(
            f"/callbacks/suite/{suite.suite_id}/command/?msg_signature=0&timestamp=1&nonce=1",
            b"<xml><ToUserName>x</ToUserName><Encrypt>abc</Encrypt></xml>",
            content_type="text/xml",
        ),
    )
    fetch("500 page", 500, client.get("/ops-test/boom/"))
    return pages


def admin_pages(client: Client) -> dict[str, str]:
    """GET the index, the dashboard, and every changelist and change page of the admin."""
    pages = {}
    for url in (reverse("admin:index"), reverse("admin:ops_dashboard")):
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.content.decode()
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.content.decode()
        for pk in model_admin.get_queryset(response.wsgi_request).values_list("pk", flat=True):
            try:
                change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
            except NoReverseMatch:
                break
            response = client.get(change)
            assert response.status_code == 200, change
            pages[change] = response.content.decode()
    return pages


def api_answers(platform, day: Day) -> tuple[dict[str, str], str, str]:
    """Return (answers by path, the access-token answer, the corp token it carries)."""
    out = io.StringIO()
    call_command(
        "create_api_client",
        "leak-check",
        "--suite",
        platform.suite.suite_id,
        "--suite",
        platform.template.suite_id,
        stdout=out,
    )
    key = out.getvalue().strip().splitlines()[-1]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    suite = platform.suite.suite_id
    tenant = f"/api/v1/suites/{suite}/corps/{day.market_corp}/"
    paths = [
        "/api/v1/suites/",
        f"/api/v1/suites/{suite}/corps/",
        tenant,
        f"/api/v1/suites/{platform.template.suite_id}/corps/",
        tenant + "license/orders/",
        tenant + f"license/orders/{day.paid_order.order_id}/",
        tenant + "license/accounts/",
        tenant + "license/app-info/",
        tenant + "license/auto-active/",
        "/api/v1/events/",
        "/api/schema/",
    ]
    answers = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        answers[path] = response.content.decode()
    signature = client.post(
        tenant + "jsapi-signature/",
        {"url": "https://app.example.com/page?x=1", "kind": "corp"},
        content_type="application/json",
    )
    assert signature.status_code == 200, signature.content[:300]
    answers[tenant + "jsapi-signature/"] = signature.content.decode()
    token = client.get(tenant + "access-token/")
    assert token.status_code == 200, token.content[:300]
    return answers, token.content.decode(), token.json()["access_token"]


# --- the test -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.urls("tests.ops.urls")
def test_no_seeded_secret_leaks_into_logs_pages_or_api_answers(
    live_platform, live_server, superuser, plain_static, caplog, tmp_path: Path
):
    caplog.set_level(logging.DEBUG)
    worker_log = tmp_path / "worker.log"
    with project_logs() as (own_log, console_log):
        env = worker_env(live_platform, LOG_LEVEL="DEBUG")
        with logging_worker(env=env, log_path=worker_log, loglevel="debug"):
            scenario = Scenario(live_platform, live_server.url, worker=True)
            try:
                day = scenario.run()
            finally:
                scenario.close()
        pages = error_pages(live_platform, day)
        api: dict[str, str] = {}
        token_answer, corp_token = "", ""
        if apps.is_installed("api"):
            api, token_answer, corp_token = api_answers(live_platform, day)
        staff = Client()
        staff.force_login(superuser)
        pages.update(admin_pages(staff))
        logging.getLogger("tests.ops").debug("capture ends")

    secrets = seeded_secrets(live_platform, day.auth_codes)
    # Sanity: the secrets are real, and the captures hold what the test did.
    assert len(secrets) >= 20, secrets.keys()
    assert Authorization.objects.count() == 3
    assert Suite.objects.filter(suite_ticket_sealed__startswith="v1:").count() == 2
    worker_text = worker_log.read_text(errors="replace")
    assert "callbacks.process" in worker_text, worker_text[-2000:]
    assert "capture ends" in own_log.getvalue()
    assert "capture ends" in console_log.getvalue()
    assert "capture ends" in caplog.text

    found = {
        "caplog (DEBUG)": leaks(caplog.text, secrets),
        "project handler": leaks(own_log.getvalue(), secrets),
        "configured console handler": leaks(console_log.getvalue(), secrets),
        "worker log": leaks(worker_text, secrets),
    }
    for where, text in {**pages, **api}.items():
        found[where] = leaks(text, secrets)
    if token_answer:
        # The access-token endpoint exists to hand out the corp token: that one only.
        market = next(
            t
            for t in live_platform.sandbox.state.tokens.values()
            if t.kind == "corp" and t.corpid == day.market_corp and t.value == corp_token
        )
        found["access-token answer"] = leaks(
            token_answer, secrets, allowed=frozenset({market.value})
        )
    assert {where: labels for where, labels in found.items() if labels} == {}
    assert len(pages) > 40
