"""One chDB store for every dashboard test (a process holds one chDB store), filled as a
production pipeline fills it: generated traffic plus an A/B experiment from the real
instrumentation; closedloop's tail sampler decides on each trace before its late feedback
arrives; every span goes to the recent tier and the kept traces to otel_traces through the
real ClickHouseSpanExporter; then a rescue copies the dropped traces that got feedback."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import closedloop.store as cs
from _support.collector import PRODUCTION_CONFIG
from _support.traffic import DAY_NS, batches, generate_traffic
from closedloop.sampling import TailSampler, load
from closedloop.sampling._trace import SpanView
from dashboards.experiment_traffic import experiment_spans
from dashboards.grafana import TimeRange

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
# A week of generated traffic, the experiment and the rescue (both now); an hour's buckets,
# what Grafana picks for a week on a wide panel.
INTERVAL_S = 3600.0


@dataclass
class World:
    store: cs.Store
    time_range: TimeRange


def load_dashboards() -> dict[str, dict[str, Any]]:
    """The checked-in dashboard JSON, by file stem."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((DASHBOARDS / "json").glob("*.json"))}


# package scope, not session: a process opens one chDB store at a time, and the tests of
# other packages open their own once this one is closed
@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("dashboards-store")
    store = cs.connect(f"chdb://{directory}/store?recent_ttl_days=30")
    end_ns = time.time_ns() // DAY_NS * DAY_NS
    spans = generate_traffic(600, seed=11, days=7, end_ns=end_ns).spans + experiment_spans()
    kept_views: list[SpanView] = []
    sampler = TailSampler(load(PRODUCTION_CONFIG), kept_views.extend)
    sampler.ingest(SpanView.of(s) for s in spans if s.name != "closedloop.feedback")
    sampler.drain()
    kept = [view.source for view in kept_views if view.source is not None]
    exporter = cs.ClickHouseSpanExporter(store, spool_dir=directory / "spool")
    for batch in batches(spans, 1000):
        assert exporter.export_to(batch, ("otel_traces_recent",)).name == "SUCCESS"
    assert exporter.export_to(kept, ("otel_traces",)).name == "SUCCESS"
    assert exporter.force_flush()
    exporter.shutdown()
    assert cs.rescue(store).traces > 0
    store.execute("USE closedloop")  # the data source's default database
    now = datetime.datetime.now(datetime.timezone.utc)
    start = datetime.datetime.fromtimestamp(end_ns / 1e9 - 8 * 86_400, datetime.timezone.utc)
    yield World(store, TimeRange(start, now + datetime.timedelta(minutes=5), INTERVAL_S))
    store.close()
