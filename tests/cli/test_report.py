"""``closedloop report`` on a store of generated traffic: its numbers are
``prompt_version_metrics`` queried directly (summed over days, rates from the summed
counts), the latency p95 the exact quantile over the period; through a running serve it
prints the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _support.traffic import Traffic, batches, generate_traffic
from cli.running import cli, one_error_line
from closedloop.store import connect
from closedloop.store._exporter import ClickHouseSpanExporter
from server.serving import running
from store.reference_metrics import quantile


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate_traffic(300, seed=23, days=3)


@pytest.fixture(scope="module")
def store_url(traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("report")
    url = f"chdb://{directory}/store"
    with connect(url) as store:
        exporter = ClickHouseSpanExporter(store, spool_dir=directory / "spool")
        for batch in batches(traffic.spans, 500):
            assert exporter.export(batch).name == "SUCCESS"
        assert exporter.force_flush()
        exporter.shutdown()
    return url


def view_totals(store_url: str, where: str = "") -> dict[tuple[str, str], dict[str, Any]]:
    """The view's rows summed per version, each rate from its summed counts."""
    with connect(store_url, migrate=False) as store:
        rows = store.query(f"SELECT * FROM closedloop.prompt_version_metrics {where}")
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["prompt_name"], row["prompt_version"])
        total = totals.setdefault(key, {"days": []})
        total["days"].append(row["day"])
        for column in ("calls", "errors", "task_outcomes", "tasks_succeeded", "reopen_outcomes",
                       "thumbs_votes", "priced_calls"):  # fmt: skip
            total[column] = total.get(column, 0) + row[column]
        for count, rate, of in (
            ("reopened", "reopen_rate", "reopen_outcomes"),
            ("thumbs_up", "thumbs_up_rate", "thumbs_votes"),
            ("escalated", "escalation_rate", "calls"),
        ):
            total[count] = total.get(count, 0) + round((row[rate] or 0) * row[of])
        total["cost"] = total.get("cost", 0.0) + (row["total_cost_usd"] or 0.0)
    return totals


def report_json(*args: str) -> list[dict[str, Any]]:
    run = cli("report", "--json", *args, cwd=Path.cwd())
    assert run.code == 0, run.stderr
    rows: list[dict[str, Any]] = json.loads(run.stdout)
    return rows


def test_report_equals_the_view_summed_over_days(store_url: str, traffic: Traffic) -> None:
    rows = report_json("--store", store_url)
    totals = view_totals(store_url)
    assert [(r["prompt_name"], r["prompt_version"]) for r in rows] == sorted(totals)
    for row in rows:
        total = totals[(row["prompt_name"], row["prompt_version"])]
        assert (row["first_day"], row["last_day"]) == (min(total["days"]), max(total["days"]))
        for column in ("calls", "errors", "task_outcomes", "reopen_outcomes", "thumbs_votes"):
            assert row[column] == total[column], column
        assert row["error_rate"] == pytest.approx(total["errors"] / total["calls"])
        assert row["task_success_rate"] == pytest.approx(
            total["tasks_succeeded"] / total["task_outcomes"]
        )
        assert row["reopen_rate"] == pytest.approx(total["reopened"] / total["reopen_outcomes"])
        assert row["thumbs_up_rate"] == pytest.approx(total["thumbs_up"] / total["thumbs_votes"])
        assert row["escalation_rate"] == pytest.approx(total["escalated"] / total["calls"])
        assert row["total_cost_usd"] == pytest.approx(total["cost"])
        latencies = [
            call.latency_ms
            for call in traffic.calls
            if (call.prompt_name, call.prompt_version)
            == (row["prompt_name"], row["prompt_version"])
            and call.generation
            and not call.shadow
        ]
        assert row["latency_p95_ms"] == pytest.approx(quantile(latencies, 0.95))


def test_filters_pick_the_rows_of_the_view(store_url: str) -> None:
    [one_day] = sorted({r["last_day"] for r in report_json("--store", store_url)})[-1:]
    rows = report_json("--store", store_url, "--prompt", "triage", "--version", "v2",
                       "--since", one_day)  # fmt: skip
    with connect(store_url, migrate=False) as store:
        [view] = store.query(
            "SELECT calls, latency_p95_ms, reopen_rate FROM closedloop.prompt_version_metrics "
            f"WHERE prompt_name = 'triage' AND prompt_version = 'v2' AND day = '{one_day}'"
        )
    [row] = rows
    assert (row["first_day"], row["last_day"]) == (one_day, one_day)
    assert row["calls"] == view["calls"]
    assert row["latency_p95_ms"] == pytest.approx(view["latency_p95_ms"])  # one day: the view's
    assert row["reopen_rate"] == pytest.approx(view["reopen_rate"])


def test_the_table_shows_every_version(store_url: str, tmp_path: Path) -> None:
    run = cli("report", "--store", store_url, cwd=tmp_path)
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:5] == ["prompt", "version", "days", "calls", "errors"]
    for row in report_json("--store", store_url):
        [line] = [
            line
            for line in lines
            if line.split()[:2] == [row["prompt_name"], row["prompt_version"]]
        ]
        assert f"{row['calls']:,}" in line.split()
        assert f"{row['reopen_rate']:.1%}" in line


def test_no_match_says_so(store_url: str, tmp_path: Path) -> None:
    run = cli("report", "--store", store_url, "--prompt", "nope", cwd=tmp_path)
    assert run == (0, "", "no calls for prompt 'nope' in the store\n")


def test_a_bad_since_is_one_line(store_url: str, tmp_path: Path) -> None:
    line = one_error_line(cli("report", "--store", store_url, "--since", "soon", cwd=tmp_path),
                          "report")  # fmt: skip
    assert "--since: since='soon' is neither an age like 3d/12h/30m nor an ISO timestamp" in line


def test_through_serve_prints_the_same(store_url: str, tmp_path: Path) -> None:
    direct = cli("report", "--store", store_url, cwd=tmp_path)
    direct_json = report_json("--store", store_url)
    with running(tmp_path, store_url=store_url):
        through = cli("report", "--store", store_url, cwd=tmp_path)
        through_json = report_json("--store", store_url)
    assert through == direct
    assert len(through_json) == len(direct_json)
    for through_row, direct_row in zip(through_json, direct_json, strict=True):
        assert through_row.keys() == direct_row.keys()
        for column, value in direct_row.items():  # sums of floats differ in the last bit
            expected = pytest.approx(value) if isinstance(value, float) else value
            assert through_row[column] == expected, column
