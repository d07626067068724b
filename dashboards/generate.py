"""Write closedloop's Grafana dashboards (dashboards/json/*.json) from dashboards/sql/.

    python dashboards/generate.py            # write the JSON
    python dashboards/generate.py --check    # exit 1 when the checked-in JSON differs

Every query lives in a .sql file (sql/<dashboard>/<panel>.sql, sql/variables/<name>.sql,
sql/links/); this file only lays panels out. The JSON is built with grafana-foundation-sdk's
dashboard and panel builders. The SDK has no model for the ClickHouse plugin's queries nor
for internal data links, so those two are plain dicts, shaped as the plugin defines them
(src/types/sql.ts, src/data/utils.ts of grafana/clickhouse-datasource).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

HERE = Path(__file__).resolve().parent
SQL_DIR = HERE / "sql"
JSON_DIR = HERE / "json"

PLUGIN_TYPE = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.23.5"
CLICKHOUSE_UID = "closedloop-clickhouse"
JAEGER_UID = "closedloop-jaeger"
DATABASE = "closedloop"
CLICKHOUSE = model.DataSourceRef(type_val=PLUGIN_TYPE, uid=CLICKHOUSE_UID)
TAG = "closedloop"
# The plugin's result formats (its mapQueryBuilderOptionsToGrafanaFormat): sqlds turns a
# long time series (a time column, string labels, numbers) into one series per label.
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1
FORMAT_TRACE = 3

PanelKind = Literal["stat", "timeseries", "table"]


class ClickHouseQuery(variants.Dataquery):
    """A SQL-editor query of the ClickHouse plugin (CHSqlQuery): rawSql as written."""

    def __init__(self, raw_sql: str, result_format: int) -> None:
        self.raw_sql = raw_sql
        self.result_format = result_format

    def to_json(self) -> dict[str, object]:
        return {
            "refId": "A",
            "datasource": {"type": PLUGIN_TYPE, "uid": CLICKHOUSE_UID},
            "editorType": "sql",
            "format": self.result_format,
            "pluginVersion": PLUGIN_VERSION,
            "rawSql": self.raw_sql,
        }


class ClickHouseQueryBuilder(cogbuilder.Builder[variants.Dataquery]):
    """Builder wrapper so the SDK's panels accept a ClickHouseQuery as a target."""

    def __init__(self, query: ClickHouseQuery) -> None:
        self._query = query

    def build(self) -> variants.Dataquery:
        return self._query


@dataclass(frozen=True)
class Panel:
    """One panel: its type, title, the .sql file it runs, and how it is shown."""

    kind: PanelKind
    title: str
    sql: str
    description: str
    unit: str = "short"
    width: int = 12
    height: int = 8
    decimals: int | None = None
    series_names: bool = False  # one metric per panel: name series by their label only
    pass_fail: bool = False  # a 1/0 stat shown as pass/fail


@dataclass(frozen=True)
class Dashboard:
    """A dashboard: its uid, file name, variables (in dependency order) and panels."""

    uid: str
    slug: str
    title: str
    description: str
    variables: Sequence[str]
    panels: Sequence[Panel]


def sql(path: str) -> str:
    """The query text of dashboards/sql/<path>.sql, as Grafana will send it."""
    return (SQL_DIR / f"{path}.sql").read_text().strip()


def trace_links() -> list[dict[str, object]]:
    """Data links for a trace_id column: Jaeger's trace view, and the ClickHouse plugin's
    own trace view over otel_traces (the query its "View trace" link builds)."""
    otel_columns = [
        ("time", "Timestamp"),
        ("trace_id", "TraceId"),
        ("trace_span_id", "SpanId"),
        ("trace_parent_span_id", "ParentSpanId"),
        ("trace_service_name", "ServiceName"),
        ("trace_operation_name", "SpanName"),
        ("trace_duration_time", "Duration"),
        ("trace_tags", "SpanAttributes"),
        ("trace_service_tags", "ResourceAttributes"),
        ("trace_status_code", "StatusCode"),
        ("trace_kind", "SpanKind"),
        ("trace_status_message", "StatusMessage"),
        ("trace_state", "TraceState"),
    ]
    trace_query = {
        "refId": "Trace ID",
        "datasource": {"type": PLUGIN_TYPE, "uid": CLICKHOUSE_UID},
        "editorType": "builder",
        "format": FORMAT_TRACE,
        "pluginVersion": PLUGIN_VERSION,
        "rawSql": sql("links/trace_view"),
        "builderOptions": {
            "database": DATABASE,
            "table": "otel_traces",
            "queryType": "traces",
            "columns": [{"name": name, "hint": hint} for hint, name in otel_columns],
            "filters": [],
            "orderBy": [],
            "meta": {
                "minimized": True,
                "isTraceIdMode": True,
                "traceId": "${__value.raw}",
                "traceDurationUnit": "nanoseconds",
                "otelEnabled": True,
                "otelVersion": "latest",
                "traceEventsColumnPrefix": "Events",
                "traceLinksColumnPrefix": "Links",
                "hasTraceTimestampTable": True,
                "traceTimestampTableSuffix": "_trace_id_ts",
                "flattenNested": False,
            },
        },
    }
    return [
        {
            "title": "Trace in Jaeger",
            "url": "",
            "internal": {
                "datasourceUid": JAEGER_UID,
                "datasourceName": "Jaeger",
                "query": {"refId": "A", "query": "${__value.raw}"},
            },
        },
        {
            "title": "Trace in ClickHouse (otel_traces)",
            "url": "",
            "internal": {
                "datasourceUid": CLICKHOUSE_UID,
                "datasourceName": "ClickHouse",
                "query": trace_query,
            },
        },
    ]


def variable(name: str) -> cogbuilder.Builder[model.VariableModel]:
    """A dashboard variable: query variables on ClickHouse (sql/variables/<name>.sql)."""
    if name == "expected_split":
        return (
            dash.TextBoxVariable(name)
            .id(name)
            .label("Expected split")
            .description(
                "variant:weight pairs, comma-separated (e.g. v2:9,v3:1); empty: equal split."
            )
        )
    query = (
        dash.QueryVariable(name)
        .id(name)
        .label(name.capitalize())
        .datasource(CLICKHOUSE)
        .query({"editorType": "sql", "rawSql": sql(f"variables/{name}")})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.DISABLED)
    )
    if name in ("experiment", "baseline"):
        return query.multi(False).include_all(False)
    return (
        query.multi(True)
        .include_all(True)
        .current(model.VariableOption(text="All", value="$__all", selected=True))
    )


def panel_builder(
    dashboard: Dashboard, spec: Panel, panel_id: int, x: int, y: int
) -> cogbuilder.Builder[model.Panel]:
    """The SDK builder of one panel, placed at (x, y)."""
    raw_sql = sql(f"{dashboard.slug.replace('-', '_')}/{spec.sql}")
    builder: stat.Panel | table.Panel | timeseries.Panel
    if spec.kind == "stat":
        builder = (
            stat.Panel()
            .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
            .graph_mode(common.BigValueGraphMode.NONE)
            .color_mode(common.BigValueColorMode.VALUE)
        )
        result_format = FORMAT_TABLE
    elif spec.kind == "table":
        builder = table.Panel().show_header(True)
        if "trace_id" in raw_sql:
            builder = builder.override_by_name(
                "trace_id", [model.DynamicConfigValue(id_val="links", value=trace_links())]
            )
        result_format = FORMAT_TABLE
    else:
        builder = (
            timeseries.Panel()
            .line_width(1)
            .fill_opacity(10)
            .span_nulls(False)
            .legend(
                common_builders.VizLegendOptions()
                .show_legend(True)
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
            )
        )
        if spec.series_names:
            builder = builder.display_name("${__field.labels.series}")
        result_format = FORMAT_TIME_SERIES
    builder = (
        builder.id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(CLICKHOUSE)
        .with_target(ClickHouseQueryBuilder(ClickHouseQuery(raw_sql, result_format)))
        .unit(spec.unit)
        .grid_pos(model.GridPos(h=spec.height, w=spec.width, x=x, y=y))
    )
    if spec.decimals is not None:
        builder = builder.decimals(spec.decimals)
    if spec.pass_fail:
        builder = builder.mappings(
            [
                model.ValueMap(
                    {
                        "1": model.ValueMappingResult(text="pass", color="green", index=0),
                        "0": model.ValueMappingResult(text="fail", color="red", index=1),
                    }
                )
            ]
        )
    return builder


def build(dashboard: Dashboard) -> dict[str, object]:
    """The dashboard's JSON model, panels laid out left to right, top to bottom."""
    builder = (
        dash.Dashboard(dashboard.title)
        .uid(dashboard.uid)
        .description(dashboard.description)
        .tags([TAG])
        .editable()
        .time("now-7d", "now")
        .timezone("utc")
        .refresh("1m")
        .annotation(
            dash.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .type("dashboard")
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
        )
        .link(
            dash.DashboardLink("closedloop")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(False)
        )
    )
    for name in dashboard.variables:
        builder = builder.with_variable(variable(name))
    x = y = row_height = 0
    for panel_id, spec in enumerate(dashboard.panels, start=1):
        if x + spec.width > 24:
            x, y, row_height = 0, y + row_height, 0
        builder = builder.with_panel(panel_builder(dashboard, spec, panel_id, x, y))
        x += spec.width
        row_height = max(row_height, spec.height)
    encoded: dict[str, object] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return encoded


FILTERS = ("service", "prompt", "version")

DASHBOARDS = (
    Dashboard(
        uid="closedloop-llm-calls",
        slug="llm-calls",
        title="closedloop / LLM calls",
        description="Calls, errors, tokens, cost and latency of LLM calls, from llm_calls.",
        variables=FILTERS,
        panels=(
            Panel("stat", "Calls", "calls", "Generations users saw.", width=4, height=4),
            Panel(
                "stat",
                "Error rate",
                "error_rate",
                "Share of generations that failed.",
                unit="percentunit",
                width=4,
                height=4,
                decimals=2,
            ),
            Panel("stat", "Tokens", "tokens", "Input + output, every call.", width=4, height=4),
            Panel(
                "stat",
                "Cost",
                "cost",
                "Every priced call.",
                unit="currencyUSD",
                width=4,
                height=4,
                decimals=2,
            ),
            Panel(
                "stat", "Latency p95", "latency_p95", "Generations.", unit="ms", width=4, height=4
            ),
            Panel(
                "stat",
                "TTFT p50",
                "ttft_p50",
                "Streamed generations.",
                unit="ms",
                width=4,
                height=4,
            ),
            Panel(
                "timeseries",
                "Calls by prompt version",
                "calls_by_version",
                "Generations per interval.",
                series_names=True,
            ),
            Panel(
                "timeseries",
                "Calls by service",
                "calls_by_service",
                "Generations per interval.",
                series_names=True,
            ),
            Panel(
                "timeseries",
                "Latency p50 / p95 / p99",
                "latency",
                "Exact quantiles of generation latency.",
                unit="ms",
            ),
            Panel(
                "timeseries",
                "Time to first token p50 / p95",
                "ttft",
                "Exact quantiles over streamed generations.",
                unit="ms",
            ),
            Panel("timeseries", "Errors", "errors", "Failed generations and their share."),
            Panel("timeseries", "Tokens", "token_usage", "Input and output tokens, every call."),
            Panel(
                "timeseries",
                "Cost by prompt version",
                "cost_by_version",
                "Spend per interval, every priced call.",
                unit="currencyUSD",
                width=24,
                series_names=True,
            ),
            Panel(
                "table",
                "By service, prompt and version",
                "by_version",
                "The range at a glance; priced_calls below calls: cost is a lower bound.",
                width=24,
                height=9,
            ),
            Panel(
                "table",
                "Recent errors",
                "recent_errors",
                "Latest failed generations; trace_id opens the trace.",
                height=10,
            ),
            Panel(
                "table",
                "Slowest calls",
                "slowest_calls",
                "Slowest generations; kept: the trace was sampled and opens.",
                height=10,
            ),
        ),
    ),
    Dashboard(
        uid="closedloop-feedback-loop",
        slug="feedback-loop",
        title="closedloop / Feedback loop",
        description="Per prompt version, the rates of prompt_version_metrics and the feedback.",
        variables=FILTERS,
        panels=(
            Panel(
                "table",
                "Per prompt version",
                "by_version",
                "Every rate of prompt_version_metrics over the range.",
                unit="percentunit",
                width=24,
                height=9,
                decimals=3,
            ),
            Panel(
                "timeseries",
                "Task success and reopen rate",
                "outcomes",
                "Verdict rates over the calls with that outcome reported.",
                unit="percentunit",
            ),
            Panel(
                "timeseries",
                "Escalation and human help",
                "escalation",
                "Event rates over all calls.",
                unit="percentunit",
            ),
            Panel(
                "timeseries",
                "Safety triggers by level",
                "safety",
                "Calls whose latest safety verdict is low, medium or high.",
                unit="percentunit",
            ),
            Panel(
                "timeseries",
                "Thumbs up",
                "thumbs",
                "Share of up votes among voted calls.",
                unit="percentunit",
                series_names=True,
            ),
            Panel(
                "timeseries",
                "Mean rating",
                "rating",
                "Mean latest rating, 1 to 5.",
                series_names=True,
            ),
            Panel(
                "timeseries",
                "Edit ratio",
                "edit_ratio",
                "0 untouched, 1 rewritten.",
                series_names=True,
            ),
            Panel(
                "timeseries",
                "Retry and abandonment",
                "retry_abandonment",
                "Event rates over all calls.",
                unit="percentunit",
                width=24,
            ),
            Panel(
                "table",
                "Feedback",
                "feedback",
                "Every signal (the feedback view); trace_id opens the call's trace.",
                width=24,
                height=12,
            ),
        ),
    ),
    Dashboard(
        uid="closedloop-experiments",
        slug="experiments",
        title="closedloop / Experiments",
        description="Candidate variants against the baseline, traffic split and SRM check.",
        variables=("service", "prompt", "experiment", "baseline", "expected_split"),
        panels=(
            Panel(
                "stat",
                "Sample ratio",
                "srm_pass",
                "pass: the split matches the expected split (chi-square, alpha 0.001).",
                width=6,
                height=6,
                pass_fail=True,
            ),
            Panel(
                "table",
                "Sample-ratio-mismatch check",
                "srm",
                "Pearson chi-square against the critical value for k-1 degrees of freedom.",
                width=18,
                height=6,
            ),
            Panel(
                "table",
                "Traffic share per variant",
                "traffic_share",
                "Calls, observed share and expected share per variant.",
                unit="short",
            ),
            Panel(
                "timeseries",
                "Traffic per variant",
                "traffic_over_time",
                "Generations per interval per variant.",
                series_names=True,
            ),
            Panel(
                "table",
                "Candidate vs baseline",
                "comparison",
                "Rates with 95 % Wilson intervals; verdict when intervals do not overlap.",
                width=24,
                height=14,
                decimals=4,
            ),
        ),
    ),
    Dashboard(
        uid="closedloop-pipeline-health",
        slug="pipeline-health",
        title="closedloop / Pipeline health",
        description="Spans received and kept, sampling by rule, rescues, recent-tier size.",
        variables=("service",),
        panels=(
            Panel(
                "stat",
                "Kept share",
                "kept_share",
                "Kept spans over received spans.",
                unit="percentunit",
                width=6,
                height=4,
                decimals=1,
            ),
            Panel(
                "stat",
                "Rescued traces",
                "rescued_traces",
                "Traces copied back for late feedback.",
                width=6,
                height=4,
            ),
            Panel(
                "stat",
                "Recent tier on disk",
                "recent_tier_bytes",
                "otel_traces_recent, active parts.",
                unit="bytes",
                width=6,
                height=4,
            ),
            Panel(
                "table",
                "Trace tiers",
                "tier_size",
                "Both tiers as stored now (system.parts).",
                width=6,
                height=4,
            ),
            Panel(
                "timeseries",
                "Spans received vs kept",
                "received_vs_kept",
                "Spans per second into the recent tier and into otel_traces.",
                unit="reqps",
            ),
            Panel(
                "table",
                "Sampling by rule",
                "by_rule",
                "Traces received and kept per tail-sampling rule (first matching rule).",
            ),
            Panel(
                "timeseries",
                "Rescues",
                "rescues_over_time",
                "Traces and spans rescued per interval.",
            ),
            Panel(
                "table",
                "Recent rescues",
                "recent_rescues",
                "Latest rescued traces; trace_id opens the trace.",
            ),
        ),
    ),
)


def render(dashboard: Dashboard) -> str:
    """The file content written for ``dashboard``: sorted keys, stable across runs."""
    return json.dumps(build(dashboard), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write the JSON, or with --check report the files that differ and return 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the JSON is stale")
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="directory of the JSON")
    args = parser.parse_args(argv)
    stale = []
    for dashboard in DASHBOARDS:
        path = args.out / f"{dashboard.slug}.json"
        content = render(dashboard)
        if args.check:
            if not path.exists() or path.read_text() != content:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    expected = {f"{d.slug}.json" for d in DASHBOARDS}
    if args.check and args.out.is_dir():
        stale += [p for p in sorted(args.out.glob("*.json")) if p.name not in expected]
    for path in stale:
        print(f"{path}: differs from what generate.py writes; run dashboards/generate.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
