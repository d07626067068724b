"""``compare`` and ``closedloop compare`` end to end on a chDB store.

Traffic goes through the real path: openai calls to the local OpenAI-compatible server,
instrumented by closedloop inside ``closedloop.context`` (prompt ``triage``, sticky users:
each user always gets one version), and ``closedloop.feedback.outcome(...,
"ticket_reopened", ...)`` on every call, v4 reopening fewer tickets than v3; every span is
written to the recent tier, which fills ``llm_calls`` and ``feedback_signals``. The test
keeps its own record of each call's arm, user and outcome, and recomputes the printed
numbers from those raw counts with scipy and the textbook formulas, not with
``closedloop.experiments.stats``.
"""

from __future__ import annotations

import datetime
import json
import math
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from scipy import stats as scipy_stats
from typer.testing import CliRunner

import closedloop
import closedloop.feedback as fb
import closedloop.store as cs
from _support.spans import client_for
from closedloop.experiments._cli_compare import compare_command
from closedloop.experiments._compare import (
    MIN_UNITS_PER_ARM,
    CompareError,
    CompareResult,
    Unit,
    Verdict,
    compare,
)
from closedloop.experiments._compare_metrics import METRICS
from closedloop.store._schema import SchemaSettings
from closedloop.testing import OpenAICompatibleServer

PROMPT, BASELINE, CANDIDATE = "triage", "v3", "v4"
REOPEN = {BASELINE: 0.45, CANDIDATE: 0.2}
USERS, CALLS_PER_USER = 160, 3


@dataclass
class Truth:
    """What the app did: per arm, each call's user and whether its ticket was reopened."""

    reopened: dict[str, list[tuple[str, bool]]] = field(
        default_factory=lambda: {BASELINE: [], CANDIDATE: []}
    )


@dataclass
class World:
    url: str
    truth: Truth


def _traffic(seed: int = 3) -> tuple[list, Truth]:  # type: ignore[type-arg]
    spans = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "triage-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = provider.get_tracer("triage-app", "1.0")
    rng = random.Random(seed)
    truth = Truth()
    with OpenAICompatibleServer() as server:
        closedloop.instrument(tracer_provider=provider, user_hash_key="compare-test")
        try:
            client = client_for(server)
            for index in range(USERS * CALLS_PER_USER):
                user = f"user-{index % USERS}"
                arm = (BASELINE, CANDIDATE)[index % USERS % 2]
                with (
                    tracer.start_as_current_span("POST /triage", kind=SpanKind.SERVER),
                    closedloop.context(user_id=user, prompt_name=PROMPT, prompt_version=arm),
                ):
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"ticket {index}"}],
                    )
                reopened = rng.random() < REOPEN[arm]
                fb.outcome(fb.call_id(reply), "ticket_reopened", reopened)
                truth.reopened[arm].append((user, reopened))
        finally:
            closedloop.uninstrument()
    return list(spans.get_finished_spans()), truth


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("compare-store")
    url = f"chdb://{directory}/store"
    spans, truth = _traffic()
    with cs.connect(url) as store:
        store.insert_spans(spans, "otel_traces_recent")
    yield World(url, truth)


def _wilson(x: int, n: int) -> tuple[float, float]:
    """scipy's Wilson interval (its own implementation, not closedloop's)."""
    ci = scipy_stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _counts(truth: Truth, arm: str) -> tuple[int, int]:
    outcomes = truth.reopened[arm]
    return sum(reopened for _, reopened in outcomes), len(outcomes)


def _run(world: World, *args: str) -> str:
    app = typer.Typer()
    app.command()(compare_command)
    result = CliRunner().invoke(
        app,
        [
            "--prompt",
            PROMPT,
            "--baseline",
            BASELINE,
            "--candidate",
            CANDIDATE,
            "--store",
            world.url,
            *args,
        ],
        env={"COLUMNS": "220"},  # one table row per line
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_compare_calls_as_units_prints_the_independent_newcombe_interval_and_p(
    world: World,
) -> None:
    x1, n1 = _counts(world.truth, BASELINE)
    x2, n2 = _counts(world.truth, CANDIDATE)
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = _wilson(x1, n1), _wilson(x2, n2)
    # Newcombe 1998 method 10 for p2 - p1, written out here
    low = (p2 - p1) - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = (p2 - p1) + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    # the pooled two-proportion z-test is Pearson's chi-square without continuity correction
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    p_value = scipy_stats.chi2_contingency(table, correction=False).pvalue

    answer = json.loads(_run(world, "--unit", "call", "--json"))
    reopen = next(m for m in answer["metrics"] if m["name"] == "reopen_rate")
    assert answer["srm"]["mismatch"] is False
    assert reopen["baseline"]["units"] == n1 and reopen["candidate"]["units"] == n2
    assert reopen["baseline"]["value"] == pytest.approx(p1, abs=1e-12)
    assert reopen["candidate"]["interval"]["low"] == pytest.approx(l2, abs=1e-9)
    assert reopen["interval"]["low"] == pytest.approx(low, abs=1e-9)
    assert reopen["interval"]["high"] == pytest.approx(high, abs=1e-9)
    assert reopen["p_value"] == pytest.approx(p_value, rel=1e-9)
    assert reopen["test"] == "two-proportion z-test"
    assert p_value < 1e-4 and reopen["verdict"] == "better"  # fewer reopened tickets

    printed = _run(world, "--unit", "call")
    assert printed.index("Sample ratio OK") < printed.index("ticket reopened")
    row = next(line for line in printed.splitlines() if "ticket reopened" in line)
    assert f"[{low:.4g}, {high:.4g}]" in row and "better" in row


def test_compare_users_as_units_uses_per_user_ratios_with_the_delta_method(world: World) -> None:
    """Each user is one observation: the reopen rate is Σ reopened / Σ outcomes over users,
    its variance from the per-user pairs (Deng et al. 2018), recomputed here."""
    estimates = []
    for arm in (BASELINE, CANDIDATE):
        per_user: dict[str, list[int]] = {}
        for user, reopened in world.truth.reopened[arm]:
            per_user.setdefault(user, []).append(int(reopened))
        y = np.array([sum(v) for v in per_user.values()], dtype=float)
        n = np.array([len(v) for v in per_user.values()], dtype=float)
        ratio = y.sum() / n.sum()
        variance = np.var((y - ratio * n) / n.mean(), ddof=1) / y.size
        estimates.append((ratio, variance, y.size))
    difference = estimates[1][0] - estimates[0][0]
    se = math.sqrt(estimates[0][1] + estimates[1][1])
    z = scipy_stats.norm.isf(0.025)

    with cs.connect(world.url, migrate=False) as store:
        result = compare(store, prompt=PROMPT, baseline=BASELINE, candidate=CANDIDATE)
    reopen = result.metric("reopen_rate")
    assert result.unit == "user" and result.units == (USERS // 2, USERS // 2)
    assert "per-user aggregates" in result.notes[0]
    assert reopen.comparison is not None
    assert reopen.comparison.difference == pytest.approx(difference, abs=1e-12)
    assert reopen.comparison.interval.low == pytest.approx(difference - z * se, abs=1e-9)
    assert reopen.comparison.p_value == pytest.approx(
        2 * scipy_stats.norm.sf(abs(difference) / se), rel=1e-9
    )
    assert reopen.verdict is Verdict.BETTER
    assert result.trustworthy


def test_compare_flags_a_sample_ratio_mismatch_before_any_verdict(world: World) -> None:
    printed = _run(world, "--unit", "call", "--shares", "80/20")
    assert printed.lstrip().startswith("SAMPLE RATIO MISMATCH")
    answer = json.loads(_run(world, "--unit", "call", "--shares", "80/20", "--json"))
    assert answer["trustworthy"] is False
    assert {m["verdict"] for m in answer["metrics"] if m["p_value"] is not None} == {
        Verdict.SAMPLE_RATIO_MISMATCH.value
    }


PROMPT_FILE = """\
name: triage
experiment: triage-1
versions:
  v3: {{status: production, model: m, messages: [{{role: user, content: hi}}]}}
  v4: {{status: testing, share: {share}, model: m, messages: [{{role: user, content: hi}}]}}
"""


@pytest.mark.parametrize(("share", "mismatch"), [(50, False), (20, True)])
def test_compare_expects_the_shares_the_prompt_files_configure(
    world: World, tmp_path: Path, share: int, mismatch: bool
) -> None:
    (tmp_path / "triage.yaml").write_text(PROMPT_FILE.format(share=share))
    answer = json.loads(_run(world, "--unit", "call", "--prompts", str(tmp_path), "--json"))
    assert answer["trustworthy"] is not mismatch
    assert answer["srm"]["shares"] == pytest.approx([(100 - share) / 100, share / 100])


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"baseline": "v3", "candidate": "v3"}, "baseline and candidate"),
        ({"unit": "team"}, "unit='team'"),
        ({"primary": "happiness"}, "primary='happiness'"),
        ({"alpha": 1.5}, "alpha=1.5"),
        ({"shares": (50, 0)}, "shares=(50, 0)"),
    ],
)
def test_compare_refuses_bad_arguments_by_name(
    world: World, arguments: dict[str, object], named: str
) -> None:
    call: dict[str, object] = {"prompt": PROMPT, "baseline": BASELINE, "candidate": CANDIDATE}
    with (
        cs.connect(world.url, migrate=False) as store,
        pytest.raises(CompareError, match=re.escape(named)),
    ):
        compare(store, **{**call, **arguments})  # type: ignore[arg-type]


class _RowsOnly:
    """A store's rows and nothing else: compare takes the rows-only path with it."""

    def __init__(self, store: cs.Store) -> None:
        self.settings = store.settings
        self._store = store

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self._store.query(sql, parameters)


@pytest.mark.parametrize("unit", ["user", "call"])
def test_compare_reads_the_same_units_column_by_column_as_row_by_row(
    world: World, unit: Unit
) -> None:
    call: dict[str, Any] = {"prompt": PROMPT, "baseline": BASELINE, "candidate": CANDIDATE}
    call |= {"unit": unit, "until": datetime.datetime.now(datetime.timezone.utc)}
    with cs.connect(world.url, migrate=False) as store:
        assert compare(store, **call).as_json() == compare(_RowsOnly(store), **call).as_json()


def test_cli_names_a_bad_option_on_one_line(world: World) -> None:
    app = typer.Typer()
    app.command()(compare_command)
    result = CliRunner().invoke(
        app,
        [
            "--prompt",
            PROMPT,
            "--baseline",
            "v3",
            "--candidate",
            "v4",
            "--store",
            world.url,
            "--shares",
            "eighty",
        ],
    )
    assert result.exit_code == 1
    assert result.output.strip() == (
        "closedloop compare: --shares 'eighty': pass baseline/candidate traffic, e.g. 80/20"
    )


class _RowsStore:
    """A store that answers the per-unit query with given rows, and rows only (as serve's
    read-only SQL route does)."""

    settings = SchemaSettings()

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.rows


def _unit_row(unit: str, arm: str, **sums: int) -> dict[str, Any]:
    """One user of one call (latency 100 ms) with the given sums, every other column 0."""
    columns: dict[str, Any] = dict.fromkeys(_UNIT_COLUMNS, 0)
    columns.update(
        unit=unit,
        baseline_calls=int(arm == "v3"),
        candidate_calls=int(arm == "v4"),
        calls=1,
        latency_sum=100.0,
        latencies=[100.0],
    )
    return {**columns, **sums}


_UNIT_COLUMNS = {
    prefix + column
    for metric in METRICS
    for column in (metric.numerator, metric.denominator)
    for prefix in ("", "pre_")
} - {"latencies", "pre_latencies"}


def _compare_rows(rows: list[dict[str, Any]]) -> CompareResult:
    return compare(_RowsStore(rows), prompt="triage", baseline="v3", candidate="v4", unit="user")


def test_per_user_rates_of_one_call_each_use_wilson_and_fisher_not_the_delta_method() -> None:
    # 0 of 30 users erred against 4 of 30: the delta method gave [0, 0] and p = 0.035.
    rows = [_unit_row(f"a{i}", "v3") for i in range(30)]
    rows += [_unit_row(f"b{i}", "v4", errors=int(i < 4)) for i in range(30)]
    c = _compare_rows(rows).metric("error_rate").comparison
    assert c is not None
    assert c.test == "Fisher's exact test"
    assert (c.baseline.interval.low, round(c.baseline.interval.high, 4)) == (0.0, 0.1135)
    assert round(c.p_value, 4) == round(scipy_stats.fisher_exact([[0, 30], [4, 26]]).pvalue, 4)
    assert (c.baseline.units, c.candidate.units) == (30, 30)


def test_no_units_no_verdicts() -> None:
    result = _compare_rows([])
    assert (result.units, result.srm, result.excluded_units) == ((0, 0), None, 0)
    assert {metric.verdict for metric in result.metrics} == {Verdict.NOT_ENOUGH_DATA}


def test_no_verdict_below_the_minimum_units_or_without_spread() -> None:
    # Two users per arm, one never erring and one always: was "worse" at p = 0.
    rows = [_unit_row("a1", "v3"), _unit_row("a2", "v3")]
    rows += [_unit_row("b1", "v4", errors=1), _unit_row("b2", "v4", errors=1)]
    result = _compare_rows(rows)
    errors = result.metric("error_rate")
    assert (errors.verdict, errors.p_value_adjusted) == (Verdict.NOT_ENOUGH_DATA, None)
    assert errors.more_units_needed == MIN_UNITS_PER_ARM - 2
    # Every latency alike: no spread, no p-value, no verdict, and valid JSON (null).
    latency = result.metric("latency_mean_ms")
    assert latency.comparison is not None and math.isnan(latency.comparison.p_value)
    assert latency.verdict is Verdict.NOT_ENOUGH_DATA
    [metric] = [m for m in result.as_json()["metrics"] if m["name"] == "latency_mean_ms"]
    assert metric["p_value"] is None


def test_a_rate_needs_events_and_non_events_before_a_verdict() -> None:
    rows = [_unit_row(f"a{i}", "v3", errors=int(i < 1)) for i in range(400)]
    rows += [_unit_row(f"b{i}", "v4", errors=int(i < 2)) for i in range(400)]
    errors = _compare_rows(rows).metric("error_rate")
    assert errors.comparison is not None
    # 3 events in 800 users: not tested, so not in the Holm family either
    assert (errors.verdict, errors.p_value_adjusted) == (Verdict.NOT_ENOUGH_DATA, None)
