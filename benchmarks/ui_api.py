"""How fast the web UI's pages get their data on a store of 1M LLM calls.

Fills a chDB store with generated calls: the tests' traffic generator
(tests/_support/traffic.py: prompts, versions, users, errors, feedback of every kind) makes
a seed of a few thousand calls, and SQL copies it with fresh trace, span and user ids
until the store holds ``--calls`` calls (sql/ui_api_*.sql), as store_throughput.py
fills its stores in SQL. Then asks each page's API answers in-process (the routes serve
mounts, without HTTP) and prints each page's API time, the median of ``--repeat``
requests, with the slowest page marked.

Run: ``.venv/bin/python benchmarks/ui_api.py [--calls 1000000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from string import Template

from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette
from starlette.testclient import TestClient

import closedloop.store as cs
from closedloop.server._query import query_routes
from closedloop.server._registry_view import RegistryView
from closedloop.server._ui import ui_routes
from closedloop.store._rows import span_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# the tests' traffic generator, not a copy of it
from _support.traffic import batches, generate_traffic

SQL = Path(__file__).with_name("sql")
console = Console(width=120)


def fill(store: cs.Store, calls: int, seed_requests: int) -> tuple[int, float]:
    """The store with about ``calls`` generated LLM calls; (calls, seconds taken)."""
    started = time.perf_counter()
    # within the recent tier's 3 days: older rows expire as they are copied
    traffic = generate_traffic(seed_requests, seed=11, days=2)
    database = store.database
    for batch in batches(traffic.spans, 2000):
        store.insert_rows("otel_traces_recent", span_rows(batch))
    [seed] = store.query(f"SELECT count() AS calls FROM {database}.llm_calls")
    copies = math.ceil(calls / seed["calls"])
    for name in ("ui_api_copies.sql", "ui_api_sampled.sql"):
        text = Template((SQL / name).read_text()).substitute(database=database, copies=copies)
        store.execute(text)
    [stored] = store.query(f"SELECT count() AS n FROM {database}.llm_calls")
    return stored["n"], time.perf_counter() - started


def page_requests(store: cs.Store) -> dict[str, list[str]]:
    """The API requests each page makes, on this store's data."""
    database = store.database
    [pair] = store.query(
        f"SELECT prompt_name, min(prompt_version) AS a, max(prompt_version) AS b "
        f"FROM {database}.llm_calls WHERE generation GROUP BY prompt_name "
        "ORDER BY count() DESC LIMIT 1"
    )
    [trace] = store.query(
        f"SELECT trace_id FROM {database}.feedback_signals ORDER BY timestamp DESC LIMIT 1"
    )
    compare = f"prompt={pair['prompt_name']}&baseline={pair['a']}&candidate={pair['b']}"
    return {
        "Overview": ["/api/overview"],
        "Prompts": ["/api/versions"],
        "Compare": ["/api/version_list", f"/api/compare?{compare}&unit=user"],
        "Compare, calls as units": ["/api/version_list", f"/api/compare?{compare}&unit=call"],
        "Feedback": ["/api/feedback?limit=50"],
        "Trace": [f"/api/traces/{trace['trace_id']}"],
        "Sampling": ["/api/sampling", "/api/sampling/series?bucket=hour"],
    }


def route(path: str) -> str:
    """A request's route, without its query or trace id."""
    path = path.split("?", maxsplit=1)[0]
    return "/api/traces/{id}" if path.startswith("/api/traces/") else path


def timed(client: TestClient, path: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.text[:300])
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000, help="LLM calls in the store")
    parser.add_argument("--seed-requests", type=int, default=2500, help="generated requests")
    parser.add_argument("--repeat", type=int, default=5, help="requests per API, median")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="closedloop-ui-bench-"))
    try:
        with cs.connect(f"chdb://{workdir}/store") as store:
            calls, fill_s = fill(store, args.calls, args.seed_requests)
            console.print(f"store: {calls:,} LLM calls, filled in {fill_s:.1f} s")
            routes = [
                *query_routes(store, authorize=lambda request: True),
                *ui_routes(store, RegistryView(None), authorize=lambda request: True),
            ]
            client = TestClient(Starlette(routes=routes))
            times = {
                page: [(path, timed(client, path, args.repeat)) for path in paths]
                for page, paths in page_requests(store).items()
            }
        totals = {page: sum(t for _, t in found) for page, found in times.items()}
        slowest = max(totals, key=lambda page: totals[page])
        table = Table(title=f"Page API time at {calls:,} calls (median of {args.repeat}), s")
        for column in ("page", "API requests", "each", "page total", ""):
            table.add_column(column, justify="right" if column != "API requests" else "left")
        for page, found in times.items():
            table.add_row(
                page,
                "\n".join(route(path) for path, _ in found),
                "\n".join(f"{t:.3f}" for _, t in found),
                f"{totals[page]:.3f}",
                "<- slowest" if page == slowest else "",
            )
        console.print(table)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
