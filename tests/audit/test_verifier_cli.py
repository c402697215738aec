"""The verifier as an auditor runs it: `python -m podium.audit.verifier DIR` and `podium audit verify DIR` do the
same thing, refuse an export they cannot tie to a key or a head the auditor trusts, and the verifier runs from a
copy of two files with nothing installed but `cryptography`."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.requirements import Requirement

import podium.audit
from tests.audit._exports import entry, public_pem, write_export, write_heads

Verify = Callable[..., tuple[int, str]]


def module_cli(*args: str | Path) -> tuple[int, str]:
    """`python -m podium.audit.verifier ...` in a process of its own: (exit code, what it printed)."""
    done = subprocess.run(
        [sys.executable, "-m", "podium.audit.verifier", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr


def podium_cli(*args: str | Path) -> tuple[int, str]:
    """`podium audit verify ...` in a process of its own (an export needs no database)."""
    podium = Path(sys.executable).parent / "podium"
    done = subprocess.run(
        [str(podium), "audit", "verify", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
    )
    return done.returncode, done.stdout + done.stderr


both = pytest.mark.parametrize("verify", [module_cli, podium_cli], ids=["python -m verifier", "podium audit"])


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trusted_pem(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """The key the auditor got from podium's operator, out of band."""
    path = tmp_path / "trusted.pem"
    path.write_bytes(public_pem(key))
    return path


@both
def test_a_valid_export_verifies_with_the_key_you_trust(
    verify: Verify, tmp_path: Path, key: Ed25519PrivateKey, trusted_pem: Path
) -> None:
    write_export(tmp_path / "export", [entry(n) for n in range(5)], [2, 5], key)
    code, output = verify(tmp_path / "export", "--public-key", trusted_pem)
    assert code == 0, output
    assert "export verified: 5 entries, 2 signed tree head(s), signed by the key you trust" in output


@both
def test_without_a_trusted_key_the_export_is_not_verified_unless_you_trust_its_own_key(
    verify: Verify, tmp_path: Path
) -> None:
    """Anyone can re-sign an edited export with a key of their own and ship that key inside it."""
    forger = Ed25519PrivateKey.generate()
    write_export(tmp_path / "export", [entry(n) for n in range(4)], [4], forger)
    code, output = verify(tmp_path / "export")
    assert code == 1, output
    assert "signed by a key you have not said you trust" in output
    assert "--public-key" in output and "--trust-embedded-key" in output
    code, output = verify(tmp_path / "export", "--trust-embedded-key")
    assert code == 0, output
    assert "signed by the key inside the export" in output


@both
def test_an_export_cut_back_to_an_earlier_signed_head_fails_against_the_trusted_head(
    verify: Verify, tmp_path: Path, key: Ed25519PrivateKey, trusted_pem: Path
) -> None:
    entries = [entry(n) for n in range(9)]
    write_export(tmp_path / "march", entries, [4, 9], key)
    head_file = tmp_path / "last-verified-head.json"
    code, output = verify(tmp_path / "march", "--public-key", trusted_pem, "--save-head", head_file)
    assert code == 0, output
    assert json.loads(head_file.read_text())["tree_size"] == 9

    # April's export: the log cut back to its head of size 4, the later heads removed. Alone it is a valid log.
    write_export(tmp_path / "april", entries[:4], [4], key)
    assert verify(tmp_path / "april", "--public-key", trusted_pem)[0] == 0
    code, output = verify(tmp_path / "april", "--public-key", trusted_pem, "--trusted-head", head_file)
    assert code == 1, output
    assert "the head you trust covers 9 entries but the export holds 4" in output

    # May's export grew honestly: it extends the head the auditor trusts.
    write_export(tmp_path / "may", [*entries, entry(10)], [4, 9, 10], key)
    code, output = verify(tmp_path / "may", "--public-key", trusted_pem, "--trusted-head", head_file)
    assert code == 0, output
    assert "extends the head you trusted (9 entries)" in output


@both
def test_a_trusted_head_file_that_cannot_be_read_is_one_line_that_says_what_to_pass(
    verify: Verify, tmp_path: Path, key: Ed25519PrivateKey, trusted_pem: Path
) -> None:
    write_export(tmp_path / "export", [entry(0)], [1], key)
    (tmp_path / "garbled.json").write_text("{not json")
    for head_file in (tmp_path / "absent.json", tmp_path / "garbled.json"):
        code, output = verify(tmp_path / "export", "--public-key", trusted_pem, "--trusted-head", head_file)
        assert code == 2, output
        assert output.count("\n") == 1 and "--save-head" in output, output
    code, output = verify(tmp_path / "nowhere")
    assert code == 2 and "pass the directory that `podium audit export` wrote" in output, output


@both
def test_text_from_a_crafted_export_cannot_paint_on_the_auditors_terminal(
    verify: Verify, tmp_path: Path, key: Ed25519PrivateKey, trusted_pem: Path
) -> None:
    """A head's key_id is the export's own text: ESC sequences in it must not erase the line and print a fake
    "export verified", nor bidi overrides reorder it, nor a newline start a line of its own."""
    heads = write_export(tmp_path / "export", [entry(n) for n in range(3)], [3], key)
    forged = "\x1b[2K\r\x1b[32mexport verified: 3 entries, signed by the key you trust.\x1b[0m\u202e\nok"
    write_heads(tmp_path / "export", [replace(heads[0], key_id=forged)])
    code, output = verify(tmp_path / "export", "--public-key", trusted_pem)
    assert code == 1, output
    assert "\x1b" not in output and "\r" not in output and "\u202e" not in output, repr(output)
    assert output.count("\n") == 1 and output.startswith("export does NOT verify: tree head 1"), repr(output)
    assert "\\x1b[2K" in output and "\\u202e" in output, output


def _packages_of(distribution: str) -> set[str]:
    """The top-level names a distribution installs, and those of what it requires here (recursively)."""
    names: set[str] = set()
    pending, seen = [distribution], set()
    while pending:
        dist = importlib.metadata.distribution(pending.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for file in dist.files or ():
            top = file.parts[0]
            if not top.endswith((".dist-info", ".pth")) and top not in ("..", "__pycache__"):
                names.add(top.removesuffix(".py"))
        for text in dist.requires or ():
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return names


def test_the_verifier_runs_from_a_copy_with_only_cryptography_installed(
    tmp_path: Path, key: Ed25519PrivateKey, trusted_pem: Path
) -> None:
    """As an auditor runs it: verifier.py and _merkle.py copied into an empty folder, beside `cryptography` (and
    what it requires), in an interpreter without site-packages or environment: podium and its dependencies are
    absent (`-S -E -s`; not `-I`, which also leaves the script's own folder off the path)."""
    write_export(tmp_path / "export", [entry(n) for n in range(3)], [3], key)
    alone = tmp_path / "auditor"
    alone.mkdir()
    source = Path(podium.audit.__file__).parent
    for name in ("verifier.py", "_merkle.py"):
        (alone / name).write_bytes((source / name).read_bytes())
    site = Path(str(importlib.metadata.distribution("cryptography").locate_file("")))
    for name in _packages_of("cryptography"):
        (alone / name).symlink_to(site / name)
    assert not any(name.startswith(("podium", "sqlalchemy", "pydantic")) for name in _packages_of("cryptography"))

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-S", "-E", "-s", str(alone / "verifier.py"), *map(str, args)]
        return subprocess.run(command, check=False, capture_output=True, text=True, cwd=alone, timeout=60)

    done = run(tmp_path / "export", "--public-key", trusted_pem)
    assert done.returncode == 0, done.stderr
    assert "export verified: 3 entries" in done.stdout
    lines = (tmp_path / "export" / "entries.jsonl").read_bytes().replace(b'"decision":"deny"', b'"decision":"allow"')
    (tmp_path / "export" / "entries.jsonl").write_bytes(lines)
    done = run(tmp_path / "export", "--public-key", trusted_pem)
    assert done.returncode == 1 and "export does NOT verify" in done.stderr, done.stdout + done.stderr
    probe = subprocess.run(
        [sys.executable, "-S", "-E", "-s", "-c", "import podium"],
        check=False,
        capture_output=True,
        text=True,
        cwd=alone,
        timeout=60,
    )
    assert probe.returncode != 0, "the isolated interpreter must not see podium"


def test_the_options_of_an_export_need_an_export(tmp_path: Path) -> None:
    code, output = podium_cli("--trusted-head", tmp_path / "last-head.json")
    assert code == 2 and "check an export: pass its folder" in output, output
