"""Every panel's and variable's SQL, expanded as Grafana and the ClickHouse plugin expand it
(dashboards/grafana.py), runs on the chDB store and returns what its panel type needs,
with every variable on All and with one concrete value each."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from dashboards.conftest import World, load_dashboards
from dashboards.experiment_traffic import BASELINE, CANDIDATE, EXPERIMENT, PROMPT, SERVICE
from dashboards.grafana import ALL, Variable, expand

DASHBOARDS = load_dashboards()
# One concrete value per variable, all present in the store's data.
CONCRETE: dict[str, str | list[str]] = {
    "service": [SERVICE],
    "prompt": [PROMPT],
    "version": [CANDIDATE],  # its generated calls include failures
    "experiment": EXPERIMENT,
    "baseline": BASELINE,
    "expected_split": f"{BASELINE}:1,{CANDIDATE}:1",
}
NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*|Bool)\)?$")
TIME = re.compile(r"^(Nullable\()?(DateTime.*|Date|Date32)\)?$")
LABEL = re.compile(r"^(Nullable\()?(LowCardinality\()?String\)?\)?$")


def run(world: World, raw_sql: str, variables: dict[str, Variable]) -> tuple[dict[str, str], Any]:
    """Column types (name -> ClickHouse type) and rows of ``raw_sql`` as a panel runs it."""
    query = expand(raw_sql, variables, world.time_range)
    assert "$" not in query.replace("'$__all'", ""), query
    columns = {row["name"]: row["type"] for row in world.store.query(f"DESCRIBE ({query})")}
    return columns, world.store.query(query)


def variables_for(world: World, dashboard: dict[str, Any], scenario: str) -> dict[str, Variable]:
    """The dashboard's variables as Grafana resolves them in order: each query variable's
    options come from its own query under the variables before it."""
    resolved: dict[str, Variable] = {}
    for model in dashboard["templating"]["list"]:
        name = model["name"]
        if model["type"] == "textbox":
            resolved[name] = Variable(name, "" if scenario == "all" else str(CONCRETE[name]))
            continue
        _, rows = run(world, model["query"]["rawSql"], resolved)
        options = [str(next(iter(row.values()))) for row in rows]
        assert options, f"variable {name} has no options"
        if model["includeAll"] and scenario == "all":
            value: str | list[str] = ALL
        elif model["multi"]:
            value = [str(v) for v in CONCRETE[name]]
        else:
            value = str(CONCRETE[name]) if scenario == "one" else options[0]
        resolved[name] = Variable(name, value, options)
    return resolved


def panels() -> list[Any]:
    return [
        pytest.param(slug, panel, id=f"{slug}/{panel['id']}:{panel['title']}")
        for slug, dashboard in DASHBOARDS.items()
        for panel in dashboard["panels"]
    ]


def check_time_series(columns: dict[str, str], rows: list[dict[str, Any]]) -> None:
    """A time column, numbers, and string labels only: sqlds turns such a long frame into
    one series per label, and only if it is sorted by time."""
    assert TIME.match(columns.get("time", "")), columns
    values = {n: t for n, t in columns.items() if n != "time"}
    assert any(NUMERIC.match(t) for t in values.values()), columns
    assert all(NUMERIC.match(t) or LABEL.match(t) for t in values.values()), columns
    times = [row["time"] for row in rows]
    assert times == sorted(times)


@pytest.mark.parametrize("scenario", ["all", "one"])
@pytest.mark.parametrize(("slug", "panel"), panels())
def test_panel_query_returns_what_its_panel_needs(
    world: World, slug: str, panel: dict[str, Any], scenario: str
) -> None:
    variables = variables_for(world, DASHBOARDS[slug], scenario)
    (target,) = panel["targets"]
    columns, rows = run(world, target["rawSql"], variables)
    assert rows, f"{panel['title']}: no rows"
    if panel["type"] == "timeseries":
        check_time_series(columns, rows)
    elif panel["type"] == "stat":
        assert len(rows) == 1 and len(columns) == 1, (columns, rows)
        ((name, kind),) = columns.items()
        assert NUMERIC.match(kind), columns
        assert rows[0][name] is not None and math.isfinite(float(rows[0][name])), rows
    else:
        assert panel["type"] == "table"
        assert all(name and not name.startswith("$") for name in columns), columns


@pytest.mark.parametrize("slug", sorted(DASHBOARDS))
def test_variable_queries_list_values(world: World, slug: str) -> None:
    for scenario in ("all", "one"):
        variables = variables_for(world, DASHBOARDS[slug], scenario)
        for model in DASHBOARDS[slug]["templating"]["list"]:
            if model["type"] == "query":
                columns, _ = run(world, model["query"]["rawSql"], variables)
                assert [LABEL.match(t) is not None for t in columns.values()] == [True], columns


def panel_sql(slug: str, title: str) -> str:
    (panel,) = [p for p in DASHBOARDS[slug]["panels"] if p["title"] == title]
    (target,) = panel["targets"]
    return str(target["rawSql"])


def wilson(events: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = events / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return center - half, center + half


def test_comparison_wilson_intervals_and_verdict(world: World) -> None:
    variables = variables_for(world, DASHBOARDS["experiments"], "one")
    _, rows = run(world, panel_sql("experiments", "Candidate vs baseline"), variables)
    by_key = {(r["metric"], r["variant"]): r for r in rows}
    for row in rows:
        if row["denominator"]:
            low, high = wilson(int(row["events"]), int(row["denominator"]))
            assert row["ci_low"] == pytest.approx(low) and row["ci_high"] == pytest.approx(high)
    assert by_key[("task success", BASELINE)]["role"] == "baseline"
    assert by_key[("task success", CANDIDATE)]["verdict"] == "better"
    assert by_key[("task success", CANDIDATE)]["denominator"] == 150


@pytest.mark.parametrize(
    ("split", "verdict"),
    [("", 1), (f"{BASELINE}:1,{CANDIDATE}:1", 1), (f"{BASELINE}:9,{CANDIDATE}:1", 0)],
)
def test_sample_ratio_mismatch(world: World, split: str, verdict: int) -> None:
    variables = variables_for(world, DASHBOARDS["experiments"], "one")
    variables["expected_split"] = Variable("expected_split", split)
    _, rows = run(world, panel_sql("experiments", "Sample ratio"), variables)
    assert rows == [{"srm_pass": verdict}]


def test_sampling_rules_keep_what_they_match(world: World) -> None:
    variables = variables_for(world, DASHBOARDS["pipeline-health"], "all")
    _, rows = run(world, panel_sql("pipeline-health", "Sampling by rule"), variables)
    rates = {row["rule"]: row["keep_rate"] for row in rows}
    assert list(rates) == ["error", "feedback", "new user", "baseline"]
    assert rates["error"] == rates["feedback"] == rates["new user"] == 1
    assert 0 < rates["baseline"] < 0.5


def test_trace_links_open_kept_traces(world: World) -> None:
    """Both links of a trace_id cell: Jaeger by id, and the plugin's trace-id query, which
    returns the trace's spans from otel_traces in the Trace panel's columns."""
    variables = variables_for(world, DASHBOARDS["llm-calls"], "all")
    _, rows = run(world, panel_sql("llm-calls", "Recent errors"), variables)
    trace_id = rows[0]["trace_id"]
    (panel,) = [p for p in DASHBOARDS["llm-calls"]["panels"] if p["title"] == "Recent errors"]
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "trace_id"}
    jaeger, clickhouse = override["properties"][0]["value"]
    assert jaeger["internal"]["query"]["query"] == "${__value.raw}"
    link_sql = clickhouse["internal"]["query"]["rawSql"].replace("${__value.raw}", trace_id)
    columns, spans = run(world, link_sql, {})
    stored = world.store.query(
        "SELECT count() AS n FROM otel_traces WHERE TraceId = {t:String}", {"t": trace_id}
    )
    assert len(spans) == stored[0]["n"] > 0
    assert {"traceID", "spanID", "parentSpanID", "serviceName", "operationName"} <= set(columns)
    assert NUMERIC.match(columns["startTime"]) and NUMERIC.match(columns["duration"])
