"""The compose file's structure (no Docker engine runs in CI; see README "Docker")."""

import re
import shutil
import subprocess

import pytest
import yaml

from tests.support import ROOT
from webhooks.services import QUEUE as WEBHOOKS_QUEUE

COMPOSE = ROOT / "docker" / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services_and_dependencies_exist(compose):
    services = compose["services"]
    assert set(services) >= {"postgres", "redis", "migrate", "web", "worker", "beat"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_migrations_run_once_before_the_app_starts(compose):
    services = compose["services"]
    assert services["migrate"]["command"][-2:] == ["migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_broker_never_evicts_and_persists(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"


def test_health_checks(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "web", "worker", "worker-priority", "worker-webhooks"):
        assert services[name]["healthcheck"]["test"], name


def test_every_queue_has_a_worker_and_webhooks_one_of_its_own(compose):
    consumed = {}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        if "worker" in command:
            consumed[name] = set(command[command.index("-Q") + 1].split(","))
            condition = service["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully", name
    assert set().union(*consumed.values()) == {"default", "priority", WEBHOOKS_QUEUE}
    # Attempts wait on products' receivers: they never share a worker with callbacks.
    assert consumed["worker-webhooks"] == {WEBHOOKS_QUEUE}
    assert [name for name, queues in consumed.items() if WEBHOOKS_QUEUE in queues] == [
        "worker-webhooks"
    ]


def test_no_secret_has_a_default(compose):
    text = COMPOSE.read_text()
    for variable in ("DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "POSTGRES_PASSWORD"):
        references = re.findall(r"\$\{" + variable + r"([^}]*)\}", text)
        assert references, variable
        assert all(ref.startswith(":?") for ref in references), variable


def test_dockerfile_runs_gunicorn_as_non_root():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE)
    assert '"gunicorn", "wecom_provider.wsgi:application"' in dockerfile
    # The settings the benches measure (bench/support/servers.py GUNICORN_CONFIG).
    assert '"--config", "docker/gunicorn.conf.py"' in dockerfile


def test_the_shipped_gunicorn_settings_are_threaded_and_overridable(monkeypatch):
    import runpy

    from bench.support.servers import GUNICORN_CONFIG

    assert GUNICORN_CONFIG == ROOT / "docker" / "gunicorn.conf.py"
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    shipped = runpy.run_path(str(GUNICORN_CONFIG))
    assert shipped["worker_class"] == "gthread"
    assert shipped["threads"] >= 8  # commits group per process (docs/operations.md §1.4a)
    assert shipped["workers"] >= 2
    assert shipped["wsgi_app"] == "wecom_provider.wsgi:application"
    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    assert runpy.run_path(str(GUNICORN_CONFIG))["workers"] == 5


def test_gunicorn_accepts_the_shipped_settings():
    # Every name is a gunicorn setting and passes its validator (as loading the file does).
    import runpy

    from gunicorn.config import Config

    config = Config()
    for name, value in runpy.run_path(str(ROOT / "docker" / "gunicorn.conf.py")).items():
        if name.startswith("_") or name == "os":
            continue
        assert name in config.settings, name
        config.set(name, value)
    assert config.worker_class_str == "gthread"
    assert config.threads >= 8
    assert config.timeout == 30
    assert config.accesslog == "-"


def test_docker_compose_config_when_available():
    docker = shutil.which("docker")
    has_compose = (
        docker
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not has_compose:
        pytest.skip("the Docker Compose v2 plugin is not installed on this machine")
    env = {
        "POSTGRES_PASSWORD": "x",
        "DJANGO_SECRET_KEY": "x",
        "FIELD_ENCRYPTION_KEYS": "x",
        "PUBLIC_BASE_URL": "https://example.com",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
