"""README.md and docs/ stand alone (issue 18).

- No link or path reference leaves the repository (a link resolving outside it, or a
  backticked ``../`` path).
- Every repo-relative link, and every backticked repo path of a source or doc file, exists.
- Every management command and setting that docs/architecture.md lists as a contract
  (between ``<!-- contracts:commands -->`` / ``<!-- contracts:settings -->`` markers)
  exists in the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
# A backticked span that names a file in the repository: a/b.py, docs/x.md, docker/compose.yaml.
REPO_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)+\.(?:py|md|yaml|yml|toml|txt|cfg)$")

# Files the docs tell an operator to create on the host (never in the repository).
HOST_FILES = frozenset({"docker/compose.ops.yaml"})


def _section(text: str, name: str) -> list[str]:
    match = re.search(rf"<!-- contracts:{name} -->(.*?)<!-- /contracts:{name} -->", text, re.S)
    assert match, f"docs/architecture.md has no contracts:{name} list"
    items = re.findall(r"^- `([A-Za-z0-9_]+)`", match.group(1), re.M)
    assert items, f"the contracts:{name} list is empty"
    return items


def doc_problems(path: Path, text: str | None = None) -> list[str]:
    """Return the references of one markdown file that point outside or at nothing."""
    text = path.read_text() if text is None else text
    problems = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https:, mailto:, an anchor in the same page
        file_part = target.split("#", 1)[0]
        resolved = (path.parent / file_part).resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{path.name}: link leaves the repository: {target}")
        elif not resolved.exists():
            problems.append(f"{path.name}: link to a missing file: {target}")
    for span in CODE.findall(text):
        if "../" in span:
            problems.append(f"{path.name}: path outside the repository: {span}")
        elif REPO_PATH.match(span) and span not in HOST_FILES and not (ROOT / span).exists():
            problems.append(f"{path.name}: no such file in the repository: {span}")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_references_stay_in_the_repository_and_exist(path):
    assert doc_problems(path) == []


def test_the_check_catches_bad_references():
    text = (
        "[a](../../shared/docs/architecture.md) [b](missing.md) `../shared/x.md` `nowhere/x.py`\n"
        "[ok](architecture.md) [code](../tenants/models.py) [web](https://example.com)\n"
        "[top](#x) `docs/operations.md`\n"
    )
    problems = doc_problems(ROOT / "docs" / "probe.md", text)
    assert len(problems) == 4, problems


def test_readme_points_to_the_docs_in_the_repository():
    text = (ROOT / "README.md").read_text()
    for name in ("docs/architecture.md", "docs/protocol.md", "docs/operations.md"):
        assert name in text


def test_contract_commands_exist():
    text = (ROOT / "docs" / "architecture.md").read_text()
    known = {p.stem for p in ROOT.glob("*/management/commands/*.py")}
    known |= {p.stem for p in ROOT.glob("wecom_provider/*/management/commands/*.py")}
    missing = [c for c in _section(text, "commands") if c not in known]
    assert missing == []


def test_contract_settings_exist():
    text = (ROOT / "docs" / "architecture.md").read_text()
    settings_source = (ROOT / "wecom_provider" / "settings.py").read_text()
    missing = [s for s in _section(text, "settings") if f'"{s}"' not in settings_source]
    assert missing == []
