import pytest
import redis
from django.test import override_settings

from tests.support import redis_server
from wecom_provider import health


@pytest.fixture
def fresh_redis_client():
    """Drop the cached client so each test connects to the Redis its settings name."""
    health._redis_client = None
    yield
    health._redis_client = None


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_ok_with_real_database_and_redis(client, fresh_redis_client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.django_db
def test_readyz_names_redis_when_it_is_stopped(client, fresh_redis_client):
    with redis_server() as server, override_settings(REDIS_URL=server.url):
        assert client.get("/readyz").status_code == 200
        server.stop()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["redis"]
    assert body["checks"] == {"database": "ok", "redis": "unavailable"}
    assert str(server.port) not in response.content.decode()  # no URL in the answer


def test_readyz_names_the_database_when_it_fails(client, fresh_redis_client, monkeypatch):
    # No django_db mark: pytest-django blocks database access, so the check fails for real.
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]


def test_readyz_rejects_post(client):
    assert client.post("/readyz").status_code == 405
