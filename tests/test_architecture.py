"""Imports flow one way: wecom ← tenants ← licensing ← callbacks (architecture.md)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

RULES = {  # package -> import prefixes it must never use
    "wecom": (
        "django",
        "rest_framework",
        "celery",
        "tenants",
        "licensing",
        "callbacks",
        "api",
        "ops",
        "sandbox",
    ),
    "sandbox": (
        "rest_framework",
        "celery",
        "tenants",
        "licensing",
        "callbacks",
        "api",
        "ops",
    ),
    "tenants": ("licensing", "callbacks", "api", "ops", "webhooks", "sandbox"),
    "licensing": ("callbacks", "api", "ops", "webhooks", "sandbox"),
    "callbacks": ("api", "ops", "webhooks", "sandbox"),
    # api/urls.py mounts the webhooks routes (the one import of webhooks from api).
    "api": ("ops", "webhooks.services", "webhooks.models", "sandbox"),
    "webhooks": ("ops", "callbacks", "sandbox"),
}


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize(("package", "banned"), RULES.items())
def test_nothing_imports_upward(package, banned):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            if module.startswith(banned) or (
                package == "sandbox" and module.split(".")[0] == "django"
            ):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def test_protocol_library_imports_without_django_settings(tmp_path):
    """The library works on its own: no settings, and no Django/DRF/Celery module loaded."""
    code = (
        "import sys\n"
        "import wecom.client, wecom.crypto\n"
        "import wecom.messages, wecom.endpoints\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'rest_framework', 'celery'}))\n"
    )
    # Only the library on the path: no project package, no Django app, no settings.
    (tmp_path / "wecom").symlink_to(ROOT / "wecom")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
