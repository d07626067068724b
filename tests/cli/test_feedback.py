"""``closedloop feedback`` sends a Contract 2 feedback span over OTLP to a real
``closedloop serve``; the store's feedback table then holds it. Mistakes name the argument,
with closedloop.feedback's own messages; no receiver is one line with the fix."""

from __future__ import annotations

from pathlib import Path

from _support.collector import free_port
from cli.running import cli, one_error_line
from server.serving import running

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALL = f"{TRACE}:00f067aa0ba902b7"


def test_feedback_reaches_the_store_through_serve(tmp_path: Path) -> None:
    with running(tmp_path) as serve:
        thumbs = cli("feedback", CALL, "thumbs", "0", "--comment", "wrong team",
                     "--endpoint", serve.url, cwd=tmp_path)  # fmt: skip
        reopened = cli("feedback", TRACE, "ticket_reopened", "true", "--outcome",
                       "--endpoint", serve.url, cwd=tmp_path)  # fmt: skip
        assert serve.stop() == 0
    assert thumbs.code == 0, thumbs.stderr
    assert thumbs.stdout.splitlines()[0] == (
        f"sent thumbs = 0 (explicit, label 'down', comment 'wrong team') about {CALL}"
    )
    assert thumbs.stdout.splitlines()[1].endswith(f" to {serve.url}/v1/traces")
    assert reopened.stdout.splitlines()[0] == (
        f"sent ticket_reopened = true (outcome) about {TRACE}"
    )
    rows = serve.rows(
        "feedback_signals",
        "trace_id, name, kind, value, label, explanation, source",
    )
    assert sorted((r["name"], r["kind"], r["value"], r["label"], r["source"]) for r in rows) == [
        ("thumbs", "explicit", 0.0, "down", "cli"),
        ("ticket_reopened", "outcome", 1.0, "", "cli"),
    ]
    assert {r["trace_id"] for r in rows} == {TRACE}
    assert [r["explanation"] for r in rows if r["name"] == "thumbs"] == ["wrong team"]


def test_a_bad_value_names_the_argument(tmp_path: Path) -> None:
    line = one_error_line(cli("feedback", CALL, "thumbs", "3", cwd=tmp_path), "feedback", 2)
    assert line.startswith(
        "closedloop feedback: Invalid value for VALUE: feedback 'thumbs' value=3 is out of "
        "range; thumbs takes a whole number from 0 to 1."
    )
    line = one_error_line(cli("feedback", CALL, "safety", "--label", "severe", cwd=tmp_path),
                          "feedback", 2)  # fmt: skip
    assert "Invalid value for --label: feedback 'safety' needs the field label=" in line
    line = one_error_line(cli("feedback", "abc", "thumbs", "1", cwd=tmp_path), "feedback", 2)
    assert "Invalid value for TARGET: target 'abc' is not a trace id" in line


def test_no_receiver_is_one_line_with_the_fix(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(
        cli("feedback", CALL, "thumbs", "1", "--endpoint", endpoint, cwd=tmp_path), "feedback"
    )
    assert line == (
        f"closedloop feedback: {endpoint}/v1/traces did not take the feedback span ([Errno 111] "
        "Connection refused); start `closedloop serve` (or a collector) there, or pass --endpoint"
    )
