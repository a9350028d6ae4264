"""wecom_provider/commits.py: a lazy commit is lazy for its own transaction only."""

import pytest
from django.db import connection
from django.db import transaction

from wecom_provider.commits import lazy_commit


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_only_an_outermost_lazy_commit_skips_the_flush_wait():
    with connection.cursor() as cursor:
        cursor.execute(
            "SET synchronous_commit = on"
        )  # production's default, whatever the test cluster runs
    try:
        with lazy_commit():
            assert synchronous_commit() == "off"
        assert synchronous_commit() == "on"  # SET LOCAL: gone with the transaction
        with transaction.atomic():
            # Inside a caller's transaction it is a savepoint: the caller's commit (a
            # stored callback, a feed entry) keeps its durability.
            with lazy_commit():
                assert synchronous_commit() == "on"
            assert synchronous_commit() == "on"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
