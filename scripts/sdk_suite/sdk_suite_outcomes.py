"""pytest plugin: record every test's outcome, with a short reason, in a JSON file.

``run.py`` loads it (``-p sdk_suite_outcomes``) in both runs of the openai SDK's tests and
compares the two files, so the comparison does not depend on parsing pytest's terminal
output. The file named by ``$SDK_SUITE_OUTCOMES`` maps each node id to
``{"outcome", "reason", "details"}``; outcome is one of passed, failed (the test body),
error (setup, teardown or collection), skipped, xfailed, xpassed. Under pytest-xdist only
the controller writes the file: it receives every worker's reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

OUTCOMES_ENV = "SDK_SUITE_OUTCOMES"
_FAILING = ("failed", "error")
_REASON_CHARS = 300

_results: dict[str, dict[str, str]] = {}


def _reason(report: pytest.TestReport | pytest.CollectReport) -> tuple[str, str]:
    """The crash line (short, for the console) and pytest's full text (for the log)."""
    longrepr: Any = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        short = str(crash.message)
    elif isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        short = str(longrepr[2])
    else:
        short = str(longrepr or "")
    short = " ".join(short.split())
    if len(short) > _REASON_CHARS:
        short = short[: _REASON_CHARS - 3] + "..."
    return short, report.longreprtext


def _phase_outcome(report: pytest.TestReport) -> str | None:
    """What one phase (setup, call, teardown) says; None when it changes nothing."""
    xfail = hasattr(report, "wasxfail")
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.when == "call" and xfail:
        return "xpassed"
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Fold the phases: the first failing phase gives the outcome and the reason."""
    record = _results.setdefault(report.nodeid, {"outcome": "passed", "reason": "", "details": ""})
    outcome = _phase_outcome(report)
    if outcome is None or record["outcome"] in _FAILING:
        return
    reason, details = _reason(report) if outcome != "xpassed" else ("", "")
    record.update(outcome=outcome, reason=reason, details=details)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A module that fails to import has no tests; record it so the loss is visible."""
    if report.failed:
        reason, details = _reason(report)
        _results[report.nodeid] = {"outcome": "error", "reason": reason, "details": details}


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes
        return
    target = os.environ.get(OUTCOMES_ENV)
    if target:
        Path(target).write_text(json.dumps(_results, indent=1, sort_keys=True))
