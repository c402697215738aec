"""Run a podium driver process until it reports a result, or until it freezes and is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def drive_process(module: str, spec: dict[str, object], done: str) -> str:
    """Start `python -m module spec`; SIGKILL it when it prints FROZEN (return that line), or wait for it to exit
    cleanly after printing a line starting with `done` (return that line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, json.dumps(spec)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("FROZEN"):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return line.strip()
            if line.startswith(done):
                assert process.wait(timeout=60) == 0
                return line.strip()
        raise AssertionError(f"{module} ended without {done} (exit {process.wait(timeout=30)})")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
