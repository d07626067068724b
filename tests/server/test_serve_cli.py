"""``closedloop serve`` on the command line: one readable line for what stops it starting,
JSON log lines for start and stop, and a clean exit on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from closedloop.sampling._config import PACKAGED_POLICY
from server.serving import ROOT, running


def refused(tmp_path: Path, *options: str) -> tuple[int, str]:
    """Run serve to its refusal; its exit code and what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "closedloop.cli", "serve", *options],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.stdout == ""
    return result.returncode, result.stderr


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("closedloop serve: ")
    return lines[0]


@pytest.mark.parametrize(
    ("option", "named"),
    [
        ("--port=http", "--port 'http' is not a port number"),
        ("--port=70000", "--port '70000' is not a port number"),
        ("--rescue-every=0s", "--rescue-every '0s' is not a positive duration"),
        ("--rescue-every=soon", "--rescue-every 'soon' is not a positive duration"),
        ("--max-body-bytes=20MB", "--max-body-bytes '20MB' is not a positive size"),
        ("--max-queue-spans=-1", "--max-queue-spans '-1' is not a whole number"),
        ("--workers=two", "--workers 'two' is not a whole number >= 0"),
        ("--store=ftp://host/db", "--store: store url 'ftp://host/db' has an unknown scheme"),
        ("--policy=missing.yaml", "--policy 'missing.yaml' is not a file"),
        ("--forward-otlp=jaeger:4318", "--forward-otlp 'jaeger:4318' is not an OTLP/HTTP URL"),
        ("--prompts=no-such-dir", "--prompts no-such-dir: no such directory"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(tmp_path: Path, option: str, named: str) -> None:
    code, stderr = refused(tmp_path, option)
    assert code == 2
    assert named in one_line(stderr)


def test_a_policy_it_cannot_decide_by_is_one_line(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "collector" / PACKAGED_POLICY).read_text())
    config["processors"]["tail_sampling"]["policies"].append(
        {"name": "limit", "type": "rate_limiting", "rate_limiting": {"spans_per_second": 10}}
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(config))
    code, stderr = refused(tmp_path, f"--policy={policy}", f"--store=chdb://{tmp_path}/store")
    assert code == 1
    assert "rate_limiting" in one_line(stderr)


def test_a_store_held_by_another_process_or_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with running(tmp_path) as serve:
        code, stderr = refused(tmp_path, "--port=0", f"--store={serve.store_url}")
        assert code == 1
        assert "is in use by" in one_line(stderr)

        code, stderr = refused(tmp_path, f"--port={serve.port}", f"--store=chdb://{tmp_path}/b")
        assert code == 1
        assert f"cannot listen on 127.0.0.1:{serve.port}" in one_line(stderr)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_serve_cleanly_with_a_stop_line(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with running(tmp_path) as serve:
        assert serve.stop(sig) == 0
    events = serve.log_events()
    assert [e["event"] for e in events if "event" in e] == ["serve.start", "serve.stop"]
    assert all(event["level"] in ("info", "warning") for event in events)
    assert "Traceback" not in serve.log.read_text()
