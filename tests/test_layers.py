"""The import contracts `lint-imports` checks in `make test` cover every package and every private module: a
module added later is protected too, or this fails and says which to list."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "podium"


def test_every_private_module_is_protected_by_its_package() -> None:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    protected = {
        tuple(c["allowed_importers"]): set(c["protected_modules"]) for c in contracts if c["type"] == "protected"
    }
    for package in sorted(p for p in SRC.iterdir() if (p / "__init__.py").exists()):
        private = {f"podium.{package.name}.{f.stem}" for f in package.glob("_*.py") if f.stem != "__init__"}
        assert protected.get((f"podium.{package.name}",), set()) == private, (
            f"list podium.{package.name}'s private modules in its protected contract in pyproject.toml"
        )


def test_every_package_has_its_layer() -> None:
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages <= placed, f"give {sorted(packages - placed)} a layer in pyproject.toml"
