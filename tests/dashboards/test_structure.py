"""The dashboards hang together: ids, data source uids, variables, SQL files, provisioning,
and the checked-in JSON is what dashboards/generate.py writes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.conftest import DASHBOARDS as DASHBOARD_DIR
from dashboards.conftest import load_dashboards
from dashboards.grafana import VARIABLE_REGEX

DASHBOARDS = load_dashboards()
PROVISIONING = DASHBOARD_DIR / "provisioning"
GENERATE = DASHBOARD_DIR / "generate.py"


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def queries(dashboard: dict[str, Any]) -> list[str]:
    """The SQL Grafana sends: panel targets and query variables (not data links)."""
    found = [t["rawSql"] for p in dashboard["panels"] for t in p["targets"]]
    found += [v["query"]["rawSql"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def used_variables(text: str) -> set[str]:
    names = {m.group(1) or m.group(2) or m.group(4) for m in VARIABLE_REGEX.finditer(text)}
    return {name for name in names if not name.startswith("__")}


def test_four_dashboards_with_unique_uids() -> None:
    assert sorted(DASHBOARDS) == ["experiments", "feedback-loop", "llm-calls", "pipeline-health"]
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("slug", sorted(DASHBOARDS))
def test_panel_ids_unique(slug: str) -> None:
    ids = [panel["id"] for panel in DASHBOARDS[slug]["panels"]]
    assert len(set(ids)) == len(ids), ids


def provisioned() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((PROVISIONING / "datasources" / "closedloop.yaml").read_text())
    return {source["uid"]: source for source in config["datasources"]}


def test_data_sources_provisioned_as_the_stack_expects() -> None:
    sources = provisioned()
    clickhouse, jaeger = sources["closedloop-clickhouse"], sources["closedloop-jaeger"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert {k: clickhouse["jsonData"][k] for k in ("host", "port", "protocol", "username")} == {
        "host": "clickhouse",
        "port": 9000,
        "protocol": "native",
        "username": "${CLICKHOUSE_USER}",
    }
    assert clickhouse["jsonData"]["defaultDatabase"] == "closedloop"
    assert clickhouse["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"
    assert (jaeger["type"], jaeger["url"]) == ("jaeger", "http://jaeger:16686")


@pytest.mark.parametrize("slug", sorted(DASHBOARDS))
def test_every_data_source_uid_is_provisioned(slug: str) -> None:
    sources = provisioned()
    used = {value for key, value in walk(DASHBOARDS[slug]) if key == "datasourceUid"}
    used |= {
        value["uid"]
        for key, value in walk(DASHBOARDS[slug])
        if key == "datasource" and isinstance(value, dict) and value.get("type") != "grafana"
    }
    assert used and used <= set(sources), used - set(sources)
    for key, value in walk(DASHBOARDS[slug]):
        if key == "datasource" and isinstance(value, dict) and value["uid"] in sources:
            assert value["type"] == sources[value["uid"]]["type"]


@pytest.mark.parametrize("slug", sorted(DASHBOARDS))
def test_variables_defined_and_used(slug: str) -> None:
    dashboard = DASHBOARDS[slug]
    defined = [v["name"] for v in dashboard["templating"]["list"]]
    used: set[str] = set()
    for sql in queries(dashboard):
        used |= used_variables(sql)
    assert used <= set(defined), used - set(defined)
    assert set(defined) <= used, set(defined) - used
    for model in dashboard["templating"]["list"]:
        if model["type"] == "query":
            assert model["datasource"]["uid"] == "closedloop-clickhouse"
            assert model["multi"] == model["includeAll"]


def test_service_prompt_version_are_multi_value_with_all() -> None:
    for slug in ("llm-calls", "feedback-loop"):
        models = {v["name"]: v for v in DASHBOARDS[slug]["templating"]["list"]}
        for name in ("service", "prompt", "version"):
            assert models[name]["multi"] and models[name]["includeAll"], (slug, name)


def test_every_query_is_a_sql_file_and_every_sql_file_a_query() -> None:
    files = {p.read_text().strip(): p for p in (DASHBOARD_DIR / "sql").rglob("*.sql")}
    sent = [sql for dashboard in DASHBOARDS.values() for sql in queries(dashboard)]
    sent += [
        value["rawSql"]
        for dashboard in DASHBOARDS.values()
        for key, value in walk(dashboard)
        if key == "query" and isinstance(value, dict) and "rawSql" in value
    ]
    assert all(sql in files for sql in sent)
    assert {files[sql] for sql in sent} == set(files.values())


def test_trace_id_columns_link_to_jaeger_and_the_trace_view() -> None:
    tables = [p for d in DASHBOARDS.values() for p in d["panels"] if p["type"] == "table"]
    linked = [p for p in tables if "trace_id" in p["targets"][0]["rawSql"]]
    assert len(linked) >= 4
    for panel in linked:
        (override,) = panel["fieldConfig"]["overrides"]
        assert override["matcher"] == {"id": "byName", "options": "trace_id"}
        links = override["properties"][0]["value"]
        targets = {link["internal"]["datasourceUid"] for link in links}
        assert targets == {"closedloop-jaeger", "closedloop-clickhouse"}
        trace_view = links[1]["internal"]["query"]
        assert trace_view["builderOptions"]["queryType"] == "traces"
        assert trace_view["builderOptions"]["meta"]["isTraceIdMode"]


def test_dashboard_provider_reads_the_mounted_json() -> None:
    config = yaml.safe_load((PROVISIONING / "dashboards" / "closedloop.yaml").read_text())
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/closedloop"


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATE), *args], capture_output=True, text=True, check=False
    )


def test_checked_in_json_is_what_generate_writes() -> None:
    result = generate("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_on_stale_json(tmp_path: Path) -> None:
    assert generate("--out", str(tmp_path)).returncode == 0
    written = tmp_path / "llm-calls.json"
    written.write_text(written.read_text().replace("closedloop-clickhouse", "other", 1))
    result = generate("--check", "--out", str(tmp_path))
    assert result.returncode == 1 and "llm-calls.json" in result.stdout
