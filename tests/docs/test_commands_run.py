"""Every shell command in the README and docs/*.md runs as written, page by page, as a person would type it.

Each page runs in one bash session, in a fresh folder that looks like a clone (the repository's tracked top-level
entries and `.venv` linked into it, so `examples/policies` and `.venv/bin/podium` resolve) with no podium settings
in the environment: the home is the default `./.podium`, new for each page. Each command must exit 0, or the status
its comment ends with (`# refused: exit 1`). A command ending in `&` runs in the background (stopped when the page
ends); when it names `--port N`, the next command waits until the port answers, as a person would. The docs' port
8000 becomes a free one.

Pages about a home with work in it (FROM_THE_DEMO) start from a copy of one made once per session by the demo
command they show (`podium demo --tickets 20`, in a fresh clone): each page's own `podium demo` then re-uses the
finished runs, as it does for a person, instead of triaging the same tickets again.

Where a page's command cannot run as it stands here, REPLACE replaces words of it and says why; each replacement
must still match (a stale one fails). BEFORE runs commands before a page. A block not run at all carries
`<!-- not run: why -->` in the page and is listed in NOT_RUN, so excluding one is a deliberate change to this file.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs._pages import REPO, SHELLS, Block, Command, blocks, commands, pages, tracked_top_level

VENV = Path(sys.executable).parent.parent


@dataclass(frozen=True)
class Replace:
    old: str  # words of the page, matched whole (never inside a longer word)
    new: str  # what runs instead: text, or a shell expression that finds what a person would read on the screen
    why: str


# The demo triages 40 tickets by default (a minute or more of local-model drafting); the first 20 of the same seeded
# sample are a prefix of those 40 and leave five requests waiting, ticket 1498's (which the README shows) among them.
DEMO = ".venv/bin/podium demo --tickets 20"
_TWENTY = "the first 20 of the demo's 40 tickets, a prefix of the same sample: seconds, not minutes"
FROM_THE_DEMO = ("README.md", "docs/review.md", "docs/costs.md")
_DIGEST = "import json, sys; print(json.load(sys.stdin)['action_digest'][:8])"
REPLACE: dict[str, list[Replace]] = {
    "README.md": [
        Replace("make demo", DEMO, f"the venv is installed already; {_TWENTY}"),
        Replace("make test", "true", "this test is part of `make test`"),
        Replace(".venv/bin/podium demo", DEMO, _TWENTY),
    ],
    "docs/review.md": [
        Replace(
            "5fc5977e",
            f'"$(podium review show triage-test-1498-f277867261/review-4 --json | python3 -c "{_DIGEST}")"',
            "the digest of the reply the local model drafted here, which `review show` prints",
        ),
    ],
    "docs/routing.md": [
        Replace(
            "benchmarks/data/routellm/mmlu_responses.csv",
            "mmlu-300.csv",
            "the first 300 of the 14,042 queries (written before the page runs): seconds, not minutes",
        ),
    ],
}

# Commands run before a page's first block, for pages written for a reader who already has a home with work in it.
BEFORE: dict[str, tuple[list[str], str]] = {
    "docs/routing.md": (
        [
            "python -c \"import csv, itertools; rows = csv.reader(open('benchmarks/data/routellm/mmlu_responses.csv'));"
            " csv.writer(open('mmlu-300.csv', 'w')).writerows(itertools.islice(rows, 301))\""
        ],
        "the evaluation's input, cut to 300 queries (see REPLACE)",
    ),
}

# Blocks the runner skips, by page and first command, with the reason the page gives.
NOT_RUN: dict[tuple[str, str], str] = {
    ("README.md", "createdb -h 127.0.0.1 -U postgres podium"): (
        "the scale-out section needs a PostgreSQL database and workers: tests/test_scale_out.py runs it"
    ),
    ("docs/routing.md", "python -m benchmarks.routing"): (
        "replays five sets at 25 floors and 5 seeds on one core (about 9 minutes), rewriting committed results"
    ),
}


def _replaced(command: Command, used: set[tuple[str, str]], port: int) -> str:
    """The command with the page's replacements made (in one pass), and the docs' port 8000 made a free one."""
    table = {r.old: r.new for r in REPLACE.get(command.page, [])}
    text = command.text
    if table:
        words = "|".join(re.escape(old) for old in sorted(table, key=len, reverse=True))

        def new(match: re.Match[str]) -> str:
            used.add((command.page, match.group(0)))
            return table[match.group(0)]

        text = re.sub(rf"(?<![\w./-])(?:{words})(?![\w-])", new, text)
    return re.sub(r"(?<=[ :])8000\b", str(port), text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port(text: str) -> int | None:
    words = shlex.split(text, comments=True)
    return int(words[words.index("--port") + 1]) if "--port" in words else None


def _script(page: str, runnable: list[Command], used: set[tuple[str, str]], port: int) -> str:
    """One bash session for the page: each command in braces (so `export` and `cd` last), its status checked."""
    lines = [
        "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
        'check() { if [ "$1" -ne "$2" ]; then echo "@@ exited $1, the docs expect $2"; exit 99; fi; }',
    ]
    for before in BEFORE.get(page, ([], ""))[0]:
        lines += [f"echo {shlex.quote(f'@@ before {page}: {before}')}", before, "check $? 0"]
    for command in runnable:
        text = _replaced(command, used, port)
        lines += [f"echo {shlex.quote(f'@@ {command.page}:{command.line}: {text}')}", "{", text, "}"]
        lines.append(f"check $? {command.expected_exit}")
        listening = _port(text) if command.background else None
        if listening is not None:
            lines.append(
                f"for _ in $(seq 300); do (: </dev/tcp/127.0.0.1/{listening}) 2>/dev/null && break; sleep 0.1; done"
            )
    return "\n".join(lines) + "\n"


def _clone(folder: Path) -> Path:
    """A folder that looks like the repository's root to a command, with nothing of podium's state in it."""
    folder.mkdir()
    for name in [*tracked_top_level(), ".venv"]:
        (folder / name).symlink_to(REPO / name if name != ".venv" else VENV)
    return folder


def _environment() -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    return {**kept, "PATH": f"{VENV / 'bin'}{os.pathsep}{kept.get('PATH', '')}", "COLUMNS": "120"}


def _shell_blocks(page: str) -> list[Block]:
    return [b for b in blocks(page) if b.language in SHELLS]


def _run(script: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=_environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone in which the docs' demo command has run once: its `.podium` and `.podium-witness`."""
    folder = _clone(tmp_path_factory.mktemp("demo") / "clone")
    done = _run(DEMO, folder)
    assert done.returncode == 0, done.stdout[-4000:]
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in pages() if _shell_blocks(p)])
def test_the_commands_of_a_page_run_as_written(page: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    folder = _clone(tmp_path / "clone")
    if page in FROM_THE_DEMO:
        made: Path = request.getfixturevalue("demo_home")
        for state in (".podium", ".podium-witness"):
            shutil.copytree(made / state, folder / state, symlinks=True)
    runnable = [c for b in _shell_blocks(page) if b.not_run is None for c in commands(b)]
    used: set[tuple[str, str]] = set()
    done = _run(_script(page, runnable, used, _free_port()), folder)
    assert done.returncode == 0, done.stdout[-4000:]
    assert {(page, r.old) for r in REPLACE.get(page, [])} <= used, "a replacement in REPLACE no longer matches"


def test_the_blocks_not_run_are_the_ones_listed() -> None:
    marked = [b for p in pages() for b in _shell_blocks(p) if b.not_run]
    skipped = {(b.page, commands(b)[0].text.split("#")[0].strip()) for b in marked}
    assert skipped == set(NOT_RUN), "list a block marked <!-- not run: … --> in NOT_RUN, with its reason"


def test_every_block_that_shows_a_command_is_a_shell_block() -> None:
    """A command in a block marked ```text (or nothing) would escape the runner."""
    starts = ("podium ", ".venv/bin/", "python ", "python3 ", "make ", "curl ", "export ")
    for page in pages():
        for b in blocks(page):
            if b.language in SHELLS or b.language in ("python", "cedar", "toml", "sql"):
                continue
            shown = [line for line in b.text.splitlines() if line.lstrip().startswith(starts)]
            assert not shown, f"{page}:{b.line}: mark this block ```bash so its commands run: {shown[0]}"
