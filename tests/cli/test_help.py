"""Every command's ``--help`` exits 0 and shows a command line to copy; the CLI loads no
heavy extra (chDB, scipy, numpy) just to print help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli.running import cli

COMMANDS = [
    (),
    ("version",),
    ("test-server",),
    ("serve",),
    ("rescue",),
    ("migrate",),
    ("sql",),
    ("report",),
    ("feedback",),
    ("compare",),
    ("prompts",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "closedloop")
def test_help_shows_an_example(command: tuple[str, ...], tmp_path: Path) -> None:
    run = cli(*command, "--help", cwd=tmp_path)
    assert run.code == 0, run
    assert "Examples:" in run.stdout
    assert f"$ closedloop {' '.join(command)}".rstrip() in run.stdout, run.stdout


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    from closedloop import __version__

    run = cli("version", cwd=tmp_path)
    assert run == (0, f"closedloop {__version__}\n", "")


def test_an_unknown_command_is_one_line(tmp_path: Path) -> None:
    run = cli("reprot", cwd=tmp_path)
    assert run.code == 2
    assert run.stderr.splitlines() == [
        "closedloop: No such command 'reprot'. Did you mean 'report', 'prompts'? "
        "(see closedloop --help for usage and examples)"
    ]


def test_the_cli_imports_no_heavy_extra() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, closedloop.cli; "
            "print(sorted(m for m in ('chdb', 'scipy', 'numpy', 'clickhouse_connect', 'openai') "
            "if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert loaded.stdout.strip() == "[]"
