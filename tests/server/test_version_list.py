"""``/api/version_list`` lists exactly the versions ``/api/versions`` has rows for, with
the same calls and days, for every filter: the Compare page's pickers read it instead of
the metrics, and must offer what the Prompts page shows."""

from __future__ import annotations

import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

import closedloop.store as cs
from _support.traffic import batches, generate_traffic
from closedloop.server._registry_view import RegistryView
from closedloop.server._ui import ui_routes
from closedloop.store._rows import span_rows

LISTED = (
    "prompt_name",
    "prompt_version",
    "first_day",
    "last_day",
    "calls",
    "status",
    "share_percent",
)


def test_version_list_is_the_versions_rows_without_their_metrics(store: cs.Store) -> None:
    traffic = generate_traffic(120, seed=47, days=3)
    for batch in batches(traffic.spans, 500):
        store.insert_rows("otel_traces_recent", span_rows(batch))
    days = sorted(
        {
            datetime.datetime.fromtimestamp(s.start_time / 1e9, datetime.UTC).date()
            for s in traffic.spans
            if s.start_time
        }
    )
    client = TestClient(
        Starlette(routes=ui_routes(store, RegistryView(None), authorize=lambda request: True))
    )
    cases: list[dict[str, Any]] = [
        {},
        {"prompt": "triage"},
        {"prompt": "no-such-prompt"},
        {"from": days[-1].isoformat()},
        {"from": days[0].isoformat(), "to": days[1].isoformat(), "prompt": "support"},
    ]
    for case in cases:
        listed = client.get("/api/version_list", params=case)
        full = client.get("/api/versions", params=case)
        assert listed.status_code == full.status_code == 200, (case, listed.text)
        rows = [{k: row[k] for k in LISTED} for row in full.json()["rows"]]
        assert listed.json()["rows"] == rows, case
        if not case:
            assert len(rows) >= 3 and sum(row["calls"] for row in rows) > 0
    refused = client.get("/api/version_list", params={"from": "yesterday"})
    assert refused.status_code == 400 and refused.json()["parameter"] == "from"
