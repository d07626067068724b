"""``closedloop demo`` as a user runs it: a subprocess, with fewer tickets.

The printed rates must be the store's own numbers (queried with ``closedloop sql`` once
the demo has finished and its serve has stopped), the A/B difference must be detected,
and two runs with the same seed must print the same numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TICKETS, SEED = "600", "3"
RUN_TIMEOUT_S = 120
"""Only keeps a broken run from hanging; a run takes about 10 s."""
_BOX = re.compile("[\u2500-\u257f]+")
_ENVIRONMENT = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


@dataclass(frozen=True)
class Run:
    directory: Path
    output: str

    @property
    def store(self) -> str:
        return f"chdb://{self.directory}/store"

    def search(self, pattern: str) -> re.Match[str]:
        match = re.search(pattern, self.output)
        assert match, f"{pattern!r} not in the demo's output:\n{self.output}"
        return match


def _demo(directory: Path) -> Run:
    command = [sys.executable, "-m", "closedloop.cli", "demo"]
    options = ["--tickets", TICKETS, "--seed", SEED, "--directory", str(directory)]
    done = subprocess.run(
        [*command, *options],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=_ENVIRONMENT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Run(directory, done.stdout)


def _sql(run: Run, query: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "closedloop.cli",
            "sql",
            "-",
            "--store",
            run.store,
            "--format",
            "json",
        ],
        input=query,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=_ENVIRONMENT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    names = [column["name"] for column in answer["columns"]]
    return [dict(zip(names, row, strict=True)) for row in answer["rows"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    return _demo(tmp_path_factory.mktemp("demo-a")), _demo(tmp_path_factory.mktemp("demo-b"))


def _reopen_rates(run: Run, condition: str) -> dict[str, float]:
    """Per version, the reopened share of ticket_reopened outcomes of calls matching
    ``condition``, straight from the typed tables."""
    rows = _sql(
        run,
        "SELECT c.prompt_version AS version, countIf(s.value = 1) / count() AS rate "
        "FROM llm_calls AS c INNER JOIN call_signals AS s "
        "ON s.trace_id = c.trace_id AND s.span_id = c.span_id "
        f"WHERE s.name = 'ticket_reopened' AND {condition} GROUP BY version",
    )
    return {str(row["version"]): float(str(row["rate"])) for row in rows}


def _since(run: Run) -> str:
    return run.search(r"--since (\S+)").group(1)


def test_week0_rate_is_the_stores(runs: tuple[Run, Run]) -> None:
    run = runs[0]
    printed = float(
        run.search(r"triage v3: [\d,]+ tickets routed.*?reopen rate ([\d.]+) %").group(1)
    )
    stored = _reopen_rates(run, f"c.timestamp < parseDateTime64BestEffort('{_since(run)}', 9)")
    assert set(stored) == {"v3"}
    assert printed == round(stored["v3"] * 100, 1)
    assert 18 < printed < 32  # about 25 %


def test_ab_rates_are_the_stores_and_the_difference_is_detected(runs: tuple[Run, Run]) -> None:
    run = runs[0]
    headline = run.search(
        r"Reopen rate: v3 ([\d.]+) % -> v4 ([\d.]+) %, difference .*?, p (< 0\.0001|= [\d.e-]+)"
    )
    baseline, candidate, p = headline.groups()
    verdict = run.search(r"Verdict on the reopen rate: ([^;]+);").group(1)
    stored = _reopen_rates(run, f"c.timestamp >= parseDateTime64BestEffort('{_since(run)}', 9)")
    assert float(baseline) == round(stored["v3"] * 100, 1)
    assert float(candidate) == round(stored["v4"] * 100, 1)
    assert verdict == "better"
    assert p == "< 0.0001" or float(p.removeprefix("= ")) < 0.05
    assert "Sample ratio OK" in run.output


_LATENCY = "latency p95 (ms)"
_LATENCY_ROW = "p95 latency, ms"
_GUARDRAIL_ROWS = ("cost/call, µUSD", "escalated")
_P_BEFORE_VERDICT = re.compile(
    r" (?:< 0\.0001|[\d.e-]+) (?P<verdict>better|worse|no detectable difference|not enough data)$"
)
_CONCLUSION = re.compile(
    r"Verdict on the reopen rate: ([^;]+); (?:worse on (.+?): a person|no guardrail)"
)


def _conclusion(line: str) -> str:
    """The conclusion's verdict and its worse guardrails other than latency: a latency
    that got worse in one run names it, or changes the sentence, in that run only."""
    match = _CONCLUSION.search(line)
    assert match, f"no conclusion in {line!r}"
    primary, worse = match.groups()
    others = [name for name in (worse or "").split(", ") if name and name != _LATENCY]
    return f"reopen rate {primary}; worse guardrails: {others}"


def _numbers(run: Run) -> list[str]:
    """The output without what legitimately changes: wall time (the latency row and its
    interval line, the latency's sample-size line, the elapsed and finish times), the A/B
    start's timestamp and the directory; table borders and spacing dropped, since column
    widths follow the latency cells; the conclusion reduced to what the seed decides."""
    varying = ("Finished in", "--since", "tickets 0:", f"{_LATENCY}:")
    lines, in_latency_row = [], False
    for line in run.output.splitlines():
        cells = _BOX.sub(" ", line.replace(str(run.directory), "DIR")).split()
        if in_latency_row:  # each table row is two lines: values, then intervals
            in_latency_row = False
        elif " ".join(cells).startswith(_LATENCY_ROW):
            in_latency_row = True
        elif line.startswith("Verdict on the reopen rate"):
            lines.append(_conclusion(line))
        elif cells and not any(v in line for v in varying):
            lines.append(_without_holm_p(" ".join(cells)))
    return lines


def _without_holm_p(row: str) -> str:
    """A guardrail row without its p-value: Holm's correction ranks it among the
    latency's, so it may change with wall time (the verdict stays compared)."""
    if not row.startswith(_GUARDRAIL_ROWS):
        return row
    return _P_BEFORE_VERDICT.sub(r" p \g<verdict>", row)


def test_same_seed_same_numbers(runs: tuple[Run, Run]) -> None:
    first, second = (_numbers(run) for run in runs)
    assert first == second
    assert any(line.startswith("Reopen rate: v3") for line in first)
