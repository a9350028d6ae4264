"""The WSGI entry point: WeCom's callback URLs run the lean handler, the rest the full one."""

import io
import time
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest

from callbacks.models import CallbackEvent
from tests.callbacks import signing
from tests.tenants.factories import make_suite
from wecom_provider import wsgi


def call(path: str, *, method: str = "GET", query: str = "", body: bytes = b""):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "text/xml",
        "HTTP_HOST": "localhost",
        "wsgi.input": io.BytesIO(body),
    }
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)

    chunks = wsgi.application(environ, start_response)
    try:
        answer["body"] = b"".join(chunks)
    finally:
        chunks.close()
    return answer


@pytest.mark.django_db(transaction=True)
def test_callbacks_run_the_lean_handler_and_are_stored():
    suite = make_suite()
    callback = signing.suite_command(
        suite, signing.ticket_xml(suite.suite_id, "VIA-WSGI", int(time.time()))
    )

    answer = call(callback.path, method="POST", query=urlencode(callback.query), body=callback.body)

    assert (answer["status"], answer["body"]) == (200, b"success")
    assert answer["headers"]["Content-Length"] == "7"  # not chunked: no CommonMiddleware here
    assert answer["headers"]["X-Request-ID"]  # the request id middleware runs
    assert "X-Frame-Options" not in answer["headers"]  # the browser middleware does not
    assert CallbackEvent.objects.get().info_type == "suite_ticket"


@pytest.mark.django_db(transaction=True)
def test_other_urls_run_the_full_middleware():
    answer = call("/healthz")

    assert answer["status"] == 200
    assert answer["headers"]["X-Frame-Options"] == "DENY"
    assert answer["headers"]["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
def test_the_lean_handler_resolves_only_callback_urls():
    # /callbacks/… is the lean handler's whole URLconf: nothing else leaks into it.
    assert call("/callbacks/../admin/")["status"] == 404
    assert call("/callbacks/nothing-here/")["status"] == 404
