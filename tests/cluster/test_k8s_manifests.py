"""The Kubernetes base (deploy/k8s/base) validates against a pinned Kubernetes schema.

The kustomization is assembled here from the files it lists (kustomize is not among
the packages CI can install); the base uses no transformer other than ``images``,
which is applied the same way, so this is what ``kubectl kustomize`` renders. Where
kubectl is installed, its rendering is compared too.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.urls import resolve

from tests.support import ROOT
from webhooks.services import QUEUE as WEBHOOKS_QUEUE

BASE = ROOT / "deploy" / "k8s" / "base"
# The oldest Kubernetes we support (docs/operations.md); strict: unknown fields fail.
K8S_VERSION = "1.30.0"
# Every queue tasks are published to: the default one, install events' (callbacks) and
# webhook attempts'.
QUEUES = ("default", "priority", WEBHOOKS_QUEUE)
WORKLOADS = {"Deployment", "Job"}


def render(base: Path = BASE) -> list[dict]:
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "images"}
    assert not unsupported, f"teach render() these kustomize fields first: {unsupported}"
    images = {image["name"]: image for image in kustomization.get("images", [])}
    documents = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((base / name).read_text()):
            if doc:
                documents.append(_set_images(doc, images))
    return documents


def _set_images(doc: dict, images: dict) -> dict:
    for spec in _pod_specs(doc):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            image = images.get(container["image"].split(":")[0])
            if image:
                container["image"] = f"{image['newName']}:{image['newTag']}"
    return doc


def _pod_specs(doc: dict) -> list[dict]:
    if doc["kind"] in WORKLOADS:
        return [doc["spec"]["template"]["spec"]]
    return []


def validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    return render()


def by_kind(documents, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_every_document_validates_against_the_kubernetes_schema(documents):
    kinds = sorted({d["kind"] for d in documents})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    for doc in documents:
        validate(doc)


@pytest.mark.parametrize(
    "breakage",
    ["wrong type", "unknown field", "missing required field"],
)
def test_the_validation_rejects_a_broken_manifest(documents, breakage):
    """The check can fail: the web Deployment, broken three ways, is refused."""
    broken = copy.deepcopy(by_kind(documents, "Deployment")["wecom-provider-web"])
    if breakage == "wrong type":
        broken["spec"]["replicas"] = "two"
    elif breakage == "unknown field":
        broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    else:
        del broken["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_the_rendering_matches_kustomize_where_installed(documents):
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    if not (kubectl or kustomize):
        pytest.skip("neither kubectl nor kustomize installed; render() alone is checked")
    command = [kubectl, "kustomize", str(BASE)] if kubectl else [kustomize, "build", str(BASE)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(theirs, key=key) == sorted(documents, key=key)


def test_every_tier_is_there_with_requests_probes_and_a_budget(documents):
    deployments = by_kind(documents, "Deployment")
    assert set(deployments) == {
        "wecom-provider-web",
        "wecom-provider-worker",
        "wecom-provider-priority-worker",
        "wecom-provider-webhooks-worker",
        "wecom-provider-beat",
    }
    assert deployments["wecom-provider-beat"]["spec"]["replicas"] == 2  # redbeat: a standby
    budgets = list(by_kind(documents, "PodDisruptionBudget").values())
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
        assert any(b["spec"]["selector"]["matchLabels"] == selector for b in budgets), name
    for doc in documents:
        for spec in _pod_specs(doc):
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                requests = container["resources"]["requests"]
                assert requests.get("cpu"), container["name"]
                assert requests.get("memory"), container["name"]
                assert container["image"] == "wecom-provider:latest"

    web = deployments["wecom-provider-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for path in ("/healthz", "/readyz"):  # the probes hit views that exist
        assert resolve(path).url_name == path.strip("/")
    hpa = by_kind(documents, "HorizontalPodAutoscaler")["wecom-provider-web"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "wecom-provider-web"
    service = by_kind(documents, "Service")["wecom-provider-web"]
    assert (
        service["spec"]["selector"]
        == deployments["wecom-provider-web"]["spec"]["selector"]["matchLabels"]
    )
    job = by_kind(documents, "Job")["wecom-provider-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == [
        "migrate",
        "--noinput",
    ]


def test_every_queue_has_a_worker_and_webhooks_one_of_its_own(documents):
    consumed: dict[str, set[str]] = {}
    for name, deployment in by_kind(documents, "Deployment").items():
        command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
        if "worker" in command:
            consumed[name] = set(command[command.index("-Q") + 1].split(","))
    assert set().union(*consumed.values()) == set(QUEUES)
    # Attempts wait on products' receivers: they never share a worker with callbacks.
    assert consumed["wecom-provider-webhooks-worker"] == {"webhooks"}
    assert all(
        "webhooks" not in queues for name, queues in consumed.items() if "webhooks" not in name
    )


def test_secrets_are_referenced_never_committed(documents):
    assert not by_kind(documents, "Secret")
    text = "\n".join(p.read_text() for p in BASE.glob("*.yaml"))
    assert "stringData" not in text
    assert "BEGIN " not in text  # no key material
    config = by_kind(documents, "ConfigMap")["wecom-provider-config"]["data"]
    for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "REDIS_URL"):
        assert name not in config
    for doc in documents:
        for spec in _pod_specs(doc):
            secret_names = {
                v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v
            }
            assert secret_names == {"wecom-provider-secrets"}
            for container in spec["containers"]:
                env = {e["name"]: e for e in container.get("env", [])}
                for name in ("DATABASE_URL", "DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS"):
                    assert name not in env  # read from the mounted files
                    assert env[f"{name}_FILE"]["value"].startswith("/run/secrets/wecom/")
                assert "value" not in env["REDIS_URL"]


def test_the_web_tier_runs_the_shipped_gunicorn_settings(documents):
    # The file the image's CMD and the benches use (docs/operations.md §1.4a); only the
    # process count is set here (a pod's CPU limit is invisible inside the container).
    deployments = by_kind(documents, "Deployment")
    web = deployments["wecom-provider-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["command"][:3] == [
        "gunicorn",
        "wecom_provider.wsgi:application",
        "--config=docker/gunicorn.conf.py",
    ]
    assert (ROOT / "docker" / "gunicorn.conf.py").exists()
    assert any(arg.startswith("--workers=") for arg in web["command"])
