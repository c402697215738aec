"""The README and docs/*.md as the tests read them: their shell blocks, the commands in them, the paths they name.

A shell block is a fenced block marked ```bash (every line a command, `#` lines comments) or ```console (commands
after `$ `, the rest output). A block the docs runner must not run says why in an HTML comment on the line before
it: `<!-- not run: installs packages -->`. A command expects exit status 0 unless its comment ends with `exit N`
(`# refused: exit 1`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELLS = ("bash", "console")
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(.+?)\s*-->\s*$")
_EXIT = re.compile(r"#[^\n]*\bexit (\d+)\W*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    not_run: str | None  # why the docs runner skips it


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str  # as a person types it: continuation lines joined by the shell, comments kept

    @property
    def expected_exit(self) -> int:
        found = _EXIT.search(self.text)
        return int(found.group(1)) if found else 0

    @property
    def background(self) -> bool:
        return re.sub(r"\s+#.*$", "", self.text).rstrip().endswith("&")


def pages() -> list[str]:
    """The pages a reader is sent to, relative to the repository: README.md and docs/*.md."""
    return ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


def blocks(page: str) -> list[Block]:
    """Every fenced block of `page`, in order, with its language and not-run marker."""
    lines = (REPO / page).read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, language = opening.groups()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _NOT_RUN.match(before)
        found.append(Block(page, i + 1, language, body + "\n", marker.group(1) if marker else None))
        i = end + 1
    return found


def commands(block: Block) -> list[Command]:
    """The commands of a shell block, a `\\`-continued command as one."""
    found: list[Command] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(block.text.splitlines(), start=block.line + 1):
        line = raw.rstrip()
        if block.language == "console" and not pending:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = offset
        pending.append(line)
        if not line.endswith("\\"):
            found.append(Command(block.page, start, "\n".join(pending)))
            pending = []
    assert not pending, f"{block.page}:{start}: a command ends with a line continuation"
    return found


def tracked() -> set[str]:
    """What a clone holds: the files git tracks (or has staged), and the folders they are in."""
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    files = set(listed.splitlines())
    return files | {str(Path(f).parents[i]) for f in files for i in range(len(Path(f).parents) - 1)}


def tracked_top_level() -> set[str]:
    """The names at the top of a clone, so a path the docs name can be told from one a person creates."""
    return {path.split("/", 1)[0] for path in tracked()}
