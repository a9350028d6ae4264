"""Fixtures for the cluster tests: a PgBouncer (transaction pooling) in front of the
suite's test database, and the environment of child processes that go through it."""

from __future__ import annotations

import pytest

from tests.support import django_env
from tests.support import pgbouncer_server


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup):
    """One PgBouncer for the session, in front of the server holding the test database.

    Depends on django_db_setup so it stops (closing its server connections) before
    pytest-django drops the test database. Expects the throwaway cluster `make test`
    starts (trust auth, user postgres); a TEST_DATABASE_URL with a password is not
    supported by this profile.
    """
    from django.db import connection

    db = connection.settings_dict
    with pgbouncer_server(
        upstream_host=db["HOST"] or "127.0.0.1",
        upstream_port=int(db["PORT"] or 5432),
        pool_size=4,  # fewer server connections than clients: they really get shared
    ) as bouncer:
        yield bouncer


def pooled_env(bouncer, **overrides: str) -> dict[str, str]:
    """Environment for a child process that reaches the test database via PgBouncer."""
    from django.db import connection

    values = {
        "DATABASE_URL": bouncer.url(connection.settings_dict["NAME"]),
        "DATABASE_POOLER": "pgbouncer-transaction",
        **overrides,
    }
    return django_env(**values)
