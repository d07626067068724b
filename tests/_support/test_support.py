"""The shared helpers behave as the tests that use them rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _support.collector import free_port, wait_for_port
from _support.tools import require_go
from _support.waiting import wait_for


def test_wait_for_says_what_never_happened():
    with pytest.raises(AssertionError, match="the spool never emptied"):
        wait_for(lambda: False, timeout=0, message="the spool never emptied")


def test_wait_for_port_fails_as_wait_for_does_or_at_once_when_the_process_exits():
    alive = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    port = free_port()
    try:
        with pytest.raises(AssertionError, match=f"collector did not listen on {port}"):
            wait_for_port(port, alive, timeout=0)
    finally:
        alive.communicate()  # closes its stdin: it exits
    exited = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit('no receivers configured')"],
        stderr=subprocess.PIPE,
        text=True,
    )
    exited.wait()
    try:  # the default timeout: the exit is reported without waiting for it
        with pytest.raises(RuntimeError, match="collector exited early: no receivers configured"):
            wait_for_port(free_port(), exited)
    finally:
        exited.communicate()


def test_a_missing_go_skips_or_fails_where_it_is_required(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `go`
    monkeypatch.delenv("CLOSEDLOOP_REQUIRE_GO", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Go is not installed: cannot build it"):
        require_go("build it")
    monkeypatch.setenv("CLOSEDLOOP_REQUIRE_GO", "1")
    with pytest.raises(pytest.fail.Exception, match="CLOSEDLOOP_REQUIRE_GO=1"):
        require_go("build it")
