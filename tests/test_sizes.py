"""No god modules or god functions (issue 18): a size budget, computed from the source.

Every first-party module outside tests and migrations (the apps, the project package, the
protocol library, the simulator, the harness and bench) stays within MODULE_MAX lines,
and every function or method anywhere in it within FUNCTION_MAX lines (decorators and
docstring included). A module that outgrows the budget is split along its seams (a
services package, one module per endpoint group or event family); tests are exempt,
being scenarios read top to bottom.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

MODULE_MAX = 600
FUNCTION_MAX = 80


def budgeted_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if parts[0] in {"tests", ".venv", "var"} or parts[0].startswith("."):
            continue
        if "migrations" in parts:
            continue
        files.append(path)
    return files


def oversize(root: Path) -> list[str]:
    """Return a line per module or function over budget, with its size."""
    found = []
    for path in budgeted_files(root):
        text = path.read_text()
        name = str(path.relative_to(root))
        lines = len(text.splitlines())
        if lines > MODULE_MAX:
            found.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text, filename=name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = node.end_lineno - start + 1
                if size > FUNCTION_MAX:
                    found.append(f"{name}:{node.lineno} {node.name}(): {size} lines")
    return found


def test_no_module_or_function_over_budget():
    assert len(budgeted_files(ROOT)) > 150  # the walk sees the whole repository
    assert oversize(ROOT) == []


def test_the_budget_check_finds_a_long_module_and_a_long_function(tmp_path):
    (tmp_path / "app").mkdir()
    long_function = "def f():\n" + "    x = 1\n" * FUNCTION_MAX
    (tmp_path / "app" / "big.py").write_text(long_function + "\n" * (MODULE_MAX - 80))
    (tmp_path / "app" / "ok.py").write_text("def g():\n    return 1\n")
    (tmp_path / "app" / "migrations").mkdir()
    (tmp_path / "app" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 900)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_long.py").write_text(long_function * 10)
    assert oversize(tmp_path) == [
        f"app/big.py: {FUNCTION_MAX + 1 + MODULE_MAX - 80} lines",
        f"app/big.py:1 f(): {FUNCTION_MAX + 1} lines",
    ]
