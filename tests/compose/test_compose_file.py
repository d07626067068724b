"""docker-compose.yml without Docker: valid against the Compose Specification's schema, every
image pinned, every mounted file and build input present, services and ports wired as the
collector, Jaeger and Grafana configs expect, and started in the order clickhouse -> schema
-> collector.

Each check also runs on a broken copy (a mutated compose file, or a copy of the repository
with one file changed) and must report it: a check that cannot fail checks nothing.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compose import checks
from compose.checks import ROOT, load_compose, mutated

COMPOSE = load_compose()
SERVICES = "services"


def test_valid_against_the_compose_specification() -> None:
    assert checks.schema_problems(COMPOSE) == []


def test_images_pinned() -> None:
    assert checks.pin_problems(COMPOSE) == []


def test_built_images_tagged_with_their_version() -> None:
    assert checks.build_tag_problems(COMPOSE) == []


def test_mounted_files_exist() -> None:
    assert checks.mount_problems(COMPOSE) == []


def test_builds_have_their_inputs() -> None:
    assert checks.build_problems(COMPOSE) == []


def test_start_order_and_healthchecks() -> None:
    assert checks.dependency_problems(COMPOSE) == []


def test_services_and_ports_agree_with_the_collector_and_jaeger_configs() -> None:
    assert checks.collector_wiring_problems(COMPOSE) == []


def test_grafana_provisioning_points_at_compose_services() -> None:
    assert checks.grafana_problems(COMPOSE) == []


# --- each check fails when what it checks breaks ------------------------------------------

Check = Callable[[dict[str, Any]], list[str]]
BROKEN_COMPOSE: list[tuple[Check, str, Any, str]] = [
    (checks.schema_problems, "services/clickhouse/restart", ["always"], "restart"),
    (checks.schema_problems, "services/schema/depends_on/clickhouse/condition", "healthy", ""),
    (checks.schema_problems, "services/grafana/portz", [], "portz"),
    (checks.pin_problems, "services/jaeger/image", "jaegertracing/jaeger", "no tag"),
    (checks.pin_problems, "services/grafana/image", "grafana/grafana:latest", "latest"),
    (checks.build_tag_problems, "services/collector/image", "closedloop-otelcol:1.0", "1.0"),
    (checks.mount_problems, "services/jaeger/volumes/0", "./jaeger/missing.yaml:/c:ro", ""),
    (checks.build_problems, "services/schema/build/dockerfile", "deploy/none.Dockerfile", ""),
    (checks.build_problems, "services/schema/build/context", "nowhere", "context"),
    (checks.dependency_problems, "services/collector/depends_on/schema", ..., "schema"),
    (
        checks.dependency_problems,
        "services/collector/depends_on/schema/condition",
        "service_started",
        "schema",
    ),
    (checks.dependency_problems, "services/clickhouse/healthcheck", ..., "no healthcheck"),
    (checks.dependency_problems, "services/schema/restart", "on-failure", "one-shot"),
    (checks.dependency_problems, "services/grafana/depends_on/demo", {}, "profile"),
    (
        checks.collector_wiring_problems,
        "services/collector/environment/CLICKHOUSE_ENDPOINT",
        "tcp://clickhouse:8123",
        "CLICKHOUSE_ENDPOINT",
    ),
    (
        checks.collector_wiring_problems,
        "services/tail-sampler-2/profiles",
        ["scaled"],
        "backends",
    ),
    (checks.collector_wiring_problems, "services/collector/ports/1", "4319:4319", "publish"),
    (checks.collector_wiring_problems, "services/jaeger/ports", [], "UI port"),
    (
        checks.collector_wiring_problems,
        "services/jaeger/healthcheck/test/5",
        "http://127.0.0.1:16686/",
        "healthcheckv2",
    ),
    (
        checks.collector_wiring_problems,
        "services/collector/healthcheck/test/7",
        "http://127.0.0.1:13133/",
        "OTLP/HTTP",
    ),
    (checks.collector_wiring_problems, "services/collector-lb/profiles", ..., "load balancer"),
    (
        checks.grafana_problems,
        "services/grafana/environment/GF_PLUGINS_PREINSTALL_SYNC",
        "grafana-clickhouse-datasource@4.0.0",
        "written for",
    ),
    (checks.grafana_problems, "services/grafana/volumes/1", "./x:/etc/grafana/provisioning", ""),
    (checks.grafana_problems, "services/grafana/volumes/2", ..., "unmounted"),
    (checks.grafana_problems, "services/grafana/environment/CLICKHOUSE_PASSWORD", ..., "password"),
    (checks.grafana_problems, "services/grafana/environment/CLICKHOUSE_USER", ..., "user"),
]


@pytest.mark.parametrize(
    ("check", "path", "value", "reported"),
    BROKEN_COMPOSE,
    ids=[f"{check.__name__}:{path}" for check, path, *_ in BROKEN_COMPOSE],
)
def test_check_reports_a_broken_compose_file(
    check: Check, path: str, value: Any, reported: str
) -> None:
    assert check(COMPOSE) == []
    problems = check(mutated(COMPOSE, path, value))
    assert problems, f"{check.__name__} missed {path} = {value!r}"
    assert reported in " ".join(problems), problems


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """What the checks read, copied: the compose file, Dockerfiles, configs, dashboards, the
    Python source (links kept)."""
    for name in ("docker-compose.yml", ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    for name in ("collector", "deploy", "jaeger", "dashboards", "src", "examples"):
        shutil.copytree(
            ROOT / name,
            tmp_path / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "go.sum", "sql"),
        )
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


BrokenFile = tuple[Callable[..., list[str]], str, str, str, str]
BROKEN_FILES: list[BrokenFile] = [
    (checks.pin_problems, "collector/Dockerfile", "alpine:3.24.2", "alpine", "FROM"),
    (checks.pin_problems, "deploy/app.Dockerfile", "slim-bookworm", "slim-bookworm\nFROM x", "x"),
    (checks.build_problems, ".dockerignore", "!src\n", "", "src"),
    (
        checks.build_problems,
        "deploy/app.Dockerfile",
        "COPY collector/otel-collector.yaml collector/\n",
        "",
        "links",
    ),
    (checks.build_tag_problems, "collector/contrib-release.txt", "v0.161.0", "v0.162.0", "0.161"),
    (
        checks.collector_wiring_problems,
        "collector/otel-collector.yaml",
        "tcp://clickhouse:9000",
        "tcp://ch:9000",
        "clickhouse",
    ),
    (
        checks.collector_wiring_problems,
        "collector/otel-collector.yaml",
        "jaeger:4317",
        "jaeger:4318",
        "otlp",
    ),
    (
        checks.collector_wiring_problems,
        "collector/otel-collector-lb.yaml",
        "tail-sampler-2:4317",
        "tail-sampler-3:4317",
        "backends",
    ),
    (
        checks.collector_wiring_problems,
        "collector/otel-collector.yaml",
        "0.0.0.0:4318}",
        "0.0.0.0:4319}",
        "receiver",
    ),
    (
        checks.collector_wiring_problems,
        "jaeger/config.yaml",
        "0.0.0.0:13133",
        "0.0.0.0:13134",
        "healthcheckv2",
    ),
    (
        checks.grafana_problems,
        "dashboards/provisioning/datasources/closedloop.yaml",
        "host: clickhouse",
        "host: localhost",
        "host",
    ),
    (
        checks.grafana_problems,
        "dashboards/provisioning/datasources/closedloop.yaml",
        "port: 9000",
        "port: 8123",
        "port",
    ),
    (
        checks.grafana_problems,
        "dashboards/provisioning/datasources/closedloop.yaml",
        "http://jaeger:16686",
        "http://localhost:16686",
        "Jaeger",
    ),
    (
        checks.grafana_problems,
        "dashboards/provisioning/dashboards/closedloop.yaml",
        "/var/lib/grafana/dashboards/closedloop",
        "/var/lib/grafana/dashboards",
        "unmounted",
    ),
]


@pytest.mark.parametrize(
    "broken",
    BROKEN_FILES,
    ids=[f"{check.__name__}:{file}:{old.strip()}" for check, file, old, *_ in BROKEN_FILES],
)
def test_check_reports_a_broken_file(repo_copy: Path, broken: BrokenFile) -> None:
    check, file, old, new, reported = broken
    compose = load_compose(repo_copy / "docker-compose.yml")
    assert check(compose, repo_copy) == []
    edit(repo_copy / file, old, new)
    problems = check(load_compose(repo_copy / "docker-compose.yml"), repo_copy)
    assert problems, f"{check.__name__} missed {file}: {old!r} -> {new!r}"
    assert reported in " ".join(problems), problems


def test_check_reports_a_missing_mounted_file(repo_copy: Path) -> None:
    compose = load_compose(repo_copy / "docker-compose.yml")
    assert checks.mount_problems(compose, repo_copy) == []
    (repo_copy / "jaeger" / "config.yaml").unlink()
    assert re.search(
        r"jaeger: mounts \./jaeger/config\.yaml",
        " ".join(checks.mount_problems(compose, repo_copy)),
    )
