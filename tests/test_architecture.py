"""The layout keeps its promises (docs/architecture.md §3), computed from the source.

The import graph is built from every first-party package (the apps, the project package
with observability, ops, webhooks, the protocol library, the simulator, the process
harness and bench/); tests/ are left out (they may import anything). Every import
statement counts, wherever it is: module level, inside a function (a lazy import is a
dependency all the same) or under ``TYPE_CHECKING``.

An import of ``a.b.c`` is an edge to ``a.b.c`` (the most specific first-party module the
name resolves to; ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else
to ``a.b``). Importing a module also runs the ``__init__`` of each package around it that
the importer is not itself inside, so those count too: a module that imports
``tenants.services.install`` depends on ``tenants.services`` (whose ``__init__`` re-exports
the whole package). Without that, a lower module could import a submodule of a package
whose ``__init__`` imports that lower module again, and the import order would decide
whether it works.

Checked:
- no cycle between modules;
- the direction between packages: each package imports only itself and the layers below
  it (LAYERS), plus the two named exceptions (ALLOWED);
- ``wecom/`` imports no Django, DRF, Celery or Redis, nor any other first-party package,
  and imports cleanly with nothing else on the path;
- the simulator imports no framework and, of ours, only ``wecom``; production code never
  imports the simulator, the process harness or the tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support import ROOT

# Lowest first. A module may import modules of its own layer and of any layer below; a
# prefix names a module and everything under it, "=name" that one module only.
# wecom_provider is split in two: its building blocks (env, sealed fields, locks, logs and
# metrics, the admin base class, and the package's own __init__, which loads the Celery app
# as Django's convention wants) sit just above the protocol library; the project itself
# (settings, URLs, WSGI, health, management commands) sits on top of the apps.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("protocol library", ("wecom",)),
    (
        "project building blocks",
        (
            "=wecom_provider",
            "wecom_provider.celery",
            "wecom_provider.adminperms",
            "wecom_provider.backoff",
            "wecom_provider.broker",
            "wecom_provider.commits",
            "wecom_provider.env",
            "wecom_provider.fieldcrypt",
            "wecom_provider.hotsql",
            "wecom_provider.observability",
            "wecom_provider.pglocks",
            "wecom_provider.progress",
            "wecom_provider.sealed_cache",
        ),
    ),
    ("tenants", ("tenants",)),
    ("licensing", ("licensing",)),
    ("callbacks", ("callbacks",)),
    ("api", ("api",)),
    ("webhooks", ("webhooks",)),
    ("ops", ("ops",)),
    ("project", ("wecom_provider",)),
]
# Tools beside the platform: never imported by it. Each names the first-party packages
# it may import besides itself (None: any but the tests).
TOOLS = {
    "sandbox": ("wecom",),  # the simulator reuses the protocol library's crypto and XML
    # Throwaway PostgreSQL, Redis, gunicorn and Celery for tests and bench, and the
    # simulator's scenario registered in the platform: drives the platform like bench/.
    "harness": None,
    "bench": None,  # benchmarks drive everything (but never the tests)
    "docker": (),  # gunicorn's settings file (docker/gunicorn.conf.py): imports nothing of ours
}
# Upward edges that are wiring, not logic: (importer, imported) -> why.
ALLOWED = {
    ("api.urls", "webhooks.urls"): "the /api/v1/ route list mounts the webhooks routes",
}
# Development-only commands that start or drive the simulator.
SANDBOX_LAUNCHERS = frozenset(
    {
        "wecom_provider.management.commands.wecom_sandbox",
        "wecom_provider.management.commands.sandbox_bootstrap",
    }
)
FRAMEWORKS = ("django", "rest_framework", "drf_spectacular", "celery", "kombu", "redis")
FRAMEWORKS += ("django_redis", "redbeat")

Graph = dict[str, set[str]]


# --- building the graph -------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> dict[str, Path]:
    """Return every first-party module under ``root`` (tests and virtualenvs left out)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).parts
        if relative[0] in {"tests", ".venv", "var", "node_modules"} or relative[0].startswith("."):
            continue
        if len(relative) == 1:
            continue  # manage.py: sets the settings module, imports nothing of ours
        found[module_name(path, root)] = path
    return found


def imported_names(path: Path, module: str) -> Iterable[tuple[str, list[str]]]:
    """Yield (base, [base.name…]) for each import statement of one file, lazy ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base, [f"{base}.{alias.name}" for alias in node.names]


def resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def import_graph(root: Path) -> tuple[Graph, dict[str, set[str]]]:
    """Return (first-party edges, top-level names of everything each module imports)."""
    modules = source_files(root)
    graph: Graph = {module: set() for module in modules}
    external: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        own = set(ancestors(module)) | ({module} if path.name == "__init__.py" else set())
        for base, names in imported_names(path, module):
            external[module].add(base.split(".")[0])
            targets = [resolve(n, modules) if n in modules else None for n in names]
            targets = [t for t in targets if t] or [resolve(base, modules)]
            for target in filter(None, targets):
                # The package __init__s the import runs on the way (see the docstring).
                for package in ancestors(target):
                    if package in modules and package not in own:
                        graph[module].add(package)
                if target != module:
                    graph[module].add(target)
    return graph, external


def find_cycles(graph: Graph) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a deep graph cannot hit the recursion limit.
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for number, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if prefix.startswith("="):
                if module == prefix[1:]:
                    return number
            elif (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), number)
    return None if best is None else best[1]


def direction_violations(graph: Graph) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        top = module.split(".")[0]
        # A package __init__ reached on the way to a module already reported is noise.
        on_the_way = {package for target in targets for package in ancestors(target)}
        for target in sorted(targets - on_the_way):
            target_top = target.split(".")[0]
            if top in TOOLS:
                allowed = TOOLS[top]
                if target_top in {"tests"} or (
                    allowed is not None and target_top != top and target_top not in allowed
                ):
                    found.append(f"{module} -> {target}")
                continue
            if target_top in TOOLS:
                if not (target_top == "sandbox" and module in SANDBOX_LAUNCHERS):
                    found.append(f"{module} -> {target} (a tool, never imported by the platform)")
                continue
            mine, theirs = layer_of(module), layer_of(target)
            if mine is None or theirs is None:
                found.append(f"{module} -> {target}: not in any layer")
            elif theirs > mine and not _allowed(module, target):
                found.append(
                    f"{module} -> {target} ({LAYERS[mine][0]} imports {LAYERS[theirs][0]})"
                )
    return found


def _allowed(module: str, target: str) -> bool:
    # An allowed edge to a.b.c also allows the package __init__s it runs (a, a.b).
    return any(
        module == importer and (target == imported or imported.startswith(target + "."))
        for importer, imported in ALLOWED
    )


@pytest.fixture(scope="module")
def graph() -> tuple[Graph, dict[str, set[str]]]:
    return import_graph(ROOT)


# --- the checks -------------------------------------------------------------------------------


def test_the_graph_covers_every_package(graph):
    edges, _ = graph
    tops = {module.split(".")[0] for module in edges}
    expected = {"wecom", "sandbox", "wecom_provider", "tenants", "licensing", "callbacks"}
    expected |= {"api", "webhooks", "ops", "bench", "harness"}
    assert expected <= tops
    # Lazy imports are in: tenants.fetching imports the metrics inside functions only.
    assert "wecom_provider.observability.metrics" in edges["tenants.fetching"]


def test_no_import_cycles(graph):
    edges, _ = graph
    assert find_cycles(edges) == []


def test_imports_flow_one_way(graph):
    edges, _ = graph
    assert direction_violations(edges) == []


def test_every_module_is_placed(graph):
    edges, _ = graph
    unplaced = [m for m in edges if m.split(".")[0] not in TOOLS and layer_of(m) is None]
    assert unplaced == []


@pytest.mark.parametrize("package", ["wecom", "sandbox"])
def test_protocol_library_and_simulator_import_no_framework(graph, package):
    _, external = graph
    offenders = sorted(
        f"{module}: {name}"
        for module, names in external.items()
        if module.split(".")[0] == package
        for name in names
        if name in FRAMEWORKS
    )
    assert offenders == []


def test_the_contract_name_of_the_codec_is_the_library_s():
    from wecom import crypto
    from wecom_provider.wecom import crypto as contract

    assert contract.CallbackCrypto is crypto.CallbackCrypto
    assert contract.CallbackCryptoError is crypto.CallbackCryptoError
    assert issubclass(contract.InvalidSignature, contract.CallbackCryptoError)


def test_protocol_library_imports_without_django_settings(tmp_path):
    """The library works on its own: no settings, and no Django/DRF/Celery module loaded."""
    code = (
        "import sys, pkgutil, importlib\n"
        "import wecom\n"
        "for info in pkgutil.walk_packages(wecom.__path__, 'wecom.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'django', 'rest_framework', 'celery', 'redis'}))\n"
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


# --- the checks can fail ----------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_lazy_import_cycle_is_found(tmp_path):
    root = _tree(
        tmp_path,
        {
            "tenants/__init__.py": "",
            "tenants/a.py": "def f():\n    from tenants import b\n",
            "tenants/b.py": "from tenants.c import x\n",
            "tenants/c.py": "import tenants.a\nx = 1\n",
            "tenants/d.py": "import tenants.c\n",
        },
    )
    edges, _ = import_graph(root)
    assert find_cycles(edges) == [["tenants.a", "tenants.b", "tenants.c"]]


def test_a_package_init_that_imports_back_is_a_cycle(tmp_path):
    root = _tree(
        tmp_path,
        {
            "tenants/__init__.py": "",
            "tenants/services/__init__.py": "from tenants.services.install import go\n",
            "tenants/services/install.py": "from tenants.tokens import t\ndef go(): ...\n",
            "tenants/services/sync.py": "from tenants.services.install import go\n",
            "tenants/tokens.py": "def t():\n    from tenants.services.sync import go\n",
        },
    )
    edges, _ = import_graph(root)
    assert "tenants.services" in edges["tenants.tokens"]  # its __init__ runs first
    assert "tenants.services" not in edges["tenants.services.sync"]  # already running
    assert find_cycles(edges) == [
        ["tenants.services", "tenants.services.install", "tenants.services.sync", "tenants.tokens"]
    ]


def test_an_upward_import_and_a_framework_in_the_library_are_found(tmp_path):
    root = _tree(
        tmp_path,
        {
            "tenants/__init__.py": "",
            "tenants/models.py": "def f():\n    from callbacks.models import Row\n",
            "callbacks/__init__.py": "",
            "callbacks/models.py": "from tenants.models import f\nRow = 1\n",
            "wecom/__init__.py": "",
            "wecom/client.py": "import django.conf\nfrom tenants import models\n",
            "sandbox/__init__.py": "",
            "sandbox/server.py": "from wecom import client\nfrom callbacks import models\n",
        },
    )
    edges, external = import_graph(root)
    assert direction_violations(edges) == [
        "sandbox.server -> callbacks.models",
        "tenants.models -> callbacks.models (tenants imports callbacks)",
        "wecom.client -> tenants.models (protocol library imports tenants)",
    ]
    assert "django" in external["wecom.client"]
