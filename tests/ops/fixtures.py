"""Fixtures shared by the ops and browser tests (imported by both conftest files)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.ops.scenario import Day
from tests.ops.scenario import Scenario

ADMIN_USERNAME = "ops-admin"
ADMIN_PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def plain_static(settings):
    """Serve admin static files without collectstatic.

    Without DEBUG the settings use whitenoise's manifest storage, which needs
    ``collectstatic``; the plain storage gives unhashed URLs that the live server (and
    its static handler) answer from the apps' static directories.
    """
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def ops_gauges():
    """(Re-)register the ops gauges: another test may have swapped in its own functions."""
    from ops.apps import register_gauges

    register_gauges()


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        ADMIN_USERNAME, "ops@example.invalid", ADMIN_PASSWORD
    )


@pytest.fixture
def admin_http(superuser, plain_static) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def day(live_platform, live_server) -> Day:
    """The ops scenario, processed in this process (no worker)."""
    scenario = Scenario(live_platform, live_server.url)
    try:
        yield scenario.run()
    finally:
        scenario.close()
