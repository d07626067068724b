"""``closedloop`` as a user runs it: a subprocess, its exit status and both streams."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple


class Run(NamedTuple):
    code: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path) -> Run:
    """``python -m closedloop.cli ARGS`` with a wide terminal (rich tables do not wrap) and
    without an API key from the developer's shell."""
    env = {key: value for key, value in os.environ.items() if key != "CLOSEDLOOP_API_KEY"}
    env["COLUMNS"] = "200"
    result = subprocess.run(
        [sys.executable, "-m", "closedloop.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def one_error_line(run: Run, command: str, code: int = 1) -> str:
    """The single stderr line of a failed run, without a traceback."""
    assert run.code == code, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"closedloop {command}: "), lines[0]
    assert "Traceback" not in run.stderr
    return lines[0]
