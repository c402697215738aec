"""The docs' other examples are real too: every Cedar block loads against podium's schema, every TOML block is a
podium.toml podium accepts (or a policy test file whose cases pass), every SQL block runs on podium's tables, and
every Python block compiles (the README's program and the architecture's stage run in tests/test_docs.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlalchemy as sa

import podium
from podium import Podium, Settings
from podium.models import ModelConfig
from podium.policy import PolicySet, run_file
from tests.docs._pages import Block, blocks, pages


def _blocks(language: str) -> list[Block]:
    return [b for page in pages() for b in blocks(page) if b.language == language]


def _name(block: Block) -> str:
    return f"{block.page}:{block.line}"


@pytest.mark.parametrize("block", _blocks("cedar"), ids=_name)
def test_a_cedar_block_is_a_policy_podium_loads(block: Block, tmp_path: Path) -> None:
    """Validated against the schema, with the @id every policy needs: what a project's policies folder would get."""
    (tmp_path / "example.cedar").write_text(block.text)
    loaded = PolicySet.load(tmp_path)
    assert len(loaded.policies) > len(PolicySet.load().policies)


@pytest.mark.parametrize("block", _blocks("toml"), ids=_name)
def test_a_toml_block_is_a_podium_toml_podium_accepts(block: Block, tmp_path: Path) -> None:
    """Or, when it holds `[[case]]`s, a policy test file whose cases pass on the page's own Cedar blocks."""
    if "[[case]]" in block.text:
        for n, cedar in enumerate(b for b in blocks(block.page) if b.language == "cedar"):
            (tmp_path / f"page{n}.cedar").write_text(cedar.text)
        (tmp_path / "page.test.toml").write_text(block.text)
        results = run_file(PolicySet.load(tmp_path), tmp_path / "page.test.toml")
        assert results and all(r.passed for r in results), [(r.name, r.decision.allowed) for r in results]
        return
    path = tmp_path / "podium.toml"
    path.write_text(block.text)
    config = ModelConfig.load(path)
    for name, model in config.models.items():
        model.resolved_price(name)
    config.check_tiers({"local", *(m.tier for m in config.models.values())})


@pytest.mark.parametrize("block", _blocks("sql"), ids=_name)
def test_a_sql_block_runs_on_podiums_tables(block: Block, sqlite_settings: Settings) -> None:
    with Podium.connect(sqlite_settings):
        pass
    engine = sa.create_engine(sqlite_settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(block.text)).fetchall()
    finally:
        engine.dispose()


@pytest.mark.parametrize("block", _blocks("python"), ids=_name)
def test_a_python_block_compiles(block: Block) -> None:
    ast.parse(block.text, filename=_name(block))


def test_the_review_rules_shown_are_rules_podium_builds() -> None:
    """docs/review.md's rules, run as written (the workflow under them needs the example's steps)."""
    (shown,) = [b for b in _blocks("python") if b.page == "docs/review.md" and "RULES = " in b.text]
    module = ast.parse(shown.text)
    setup = ast.Module([s for s in module.body if isinstance(s, ast.Import | ast.ImportFrom | ast.Assign)], [])
    namespace: dict[str, object] = {}
    exec(compile(setup, "docs/review.md", "exec"), namespace)  # the docs' own example
    assert isinstance(namespace["RULES"], podium.ExceptionRules)
