"""Every file the README and docs/*.md send a reader to exists in a clone: links, and paths in the repository.

A path counts as the repository's when it starts at one of the clone's top-level entries (`src/…`, `docs/…`,
`examples/…`) or outside it (`../…`, which a clone does not have), when it is a markdown link's target
(relative to the page), or when it is a package-relative module in the architecture's diagrams
(`governance/_stages.py`). "In a clone" means tracked by git: a file left out of a commit is
missing for everyone else. Paths a person creates (`.podium/operator.key`, `./audit-2026-11`, `podium.toml`)
are not the repository's and are not checked.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from tests.docs._pages import REPO, pages, tracked, tracked_top_level

_PATH = re.compile(r"(?<![\w./:<>@-])((?:\.\./)*[A-Za-z_][\w.-]*(?:/[\w.*-]+)+/?)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_BARE_DOC = re.compile(r"(?<![\w./-])([A-Z][A-Z_]+\.md)\b")  # DESIGN.md, RESULTS.md: a file somewhere in the clone
PACKAGES = {p.name for p in (REPO / "src" / "podium").iterdir() if (p / "__init__.py").exists()}


def _in_a_clone(relative: str, base: str, clone: set[str]) -> bool:
    target = (REPO / base / relative.rstrip("/")).resolve()
    if not target.is_relative_to(REPO):
        return False  # `../shared/…` is beside this repository, not in a clone of it
    if base == "**":
        return any(Path(path).name == relative for path in clone)
    path = str(target.relative_to(REPO))
    return any(fnmatch.fnmatch(p, path) for p in clone) if "*" in path else path in clone


def mentioned(page: str) -> list[tuple[str, str]]:
    """(path, base folder) for every repository path `page` names."""
    text = (REPO / page).read_text()
    top = tracked_top_level() | {"LICENSE", ".."}
    found: list[tuple[str, str]] = []
    for link in _LINK.findall(text):
        if not re.match(r"^[a-z]+:|^#", link):
            found.append((link.split("#", 1)[0], str((REPO / page).parent.relative_to(REPO))))
    for path in _PATH.findall(text):
        first = path.split("/", 1)[0]
        if "<" in path or "{" in path:
            continue
        if first in top:
            found.append((path.rstrip("."), ""))
        elif first in PACKAGES and path.endswith(".py"):
            found.append((path, "src/podium"))
    found += [(name, "**") for name in _BARE_DOC.findall(text)]  # `**`: anywhere in the clone
    return found


@pytest.mark.parametrize("page", pages())
def test_every_path_a_page_names_exists(page: str) -> None:
    clone = tracked()
    missing = [path for path, base in mentioned(page) if not _in_a_clone(path, base, clone)]
    assert not missing, f"{page} names files a clone does not have (not in git): {missing}"


def test_the_check_finds_paths() -> None:
    """So a pattern that matched nothing would not pass for docs that are right."""
    named = {path for page in pages() for path, _ in mentioned(page)}
    assert {"docs/examples/quickstart.py", "examples/policies/support.cedar", "routing.svg"} <= named
    assert "governance/_stages.py" in named


def test_the_licence_pyproject_names_ships_in_full() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
    assert declared == "Apache-2.0" and "LICENSE" in tracked()
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "9. Accepting Warranty or Additional Liability." in text


def test_every_page_the_code_sends_a_reader_to_exists() -> None:
    """Help texts, errors and docstrings name docs pages too (`fields: docs/cli-json.md`)."""
    clone = tracked()
    named = {
        (str(path.relative_to(REPO)), page)
        for top in ("src", "examples", "benchmarks")
        for path in (REPO / top).rglob("*.py")
        for page in re.findall(r"(?<![\w/])docs/[\w/.-]*\w", path.read_text(encoding="utf-8"))
    }
    missing = sorted(f"{page} (named in {where})" for where, page in named if page not in clone)
    assert not missing, "the code names docs a clone does not have: " + ", ".join(missing)
