"""``closedloop serve`` as the demo's backend: a subprocess started exactly as a user
starts it, on a free port, holding the demo's store; the demo reads the store through
its API, as every CLI command does while serve holds it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from closedloop._errors import ClosedloopError
from closedloop._serve_client import ServeClient
from closedloop._serve_discovery import ServeAdvert, find_serve
from closedloop.store._readonly_sql import SqlResult

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 60.0
"""How long the store may take to hold every span serve acknowledged (it takes ~0.5 s)."""


class DemoError(ClosedloopError, RuntimeError):
    """The demo cannot go on; the message says why and what to do."""


def sql_file(name: str) -> str:
    """The text of one of the demo's queries (``sql/<name>.sql``)."""
    return resources.files("closedloop.demo").joinpath("sql", f"{name}.sql").read_text("utf-8")


@dataclass
class Serve:
    """A running serve, its store URL and the client that reads through it."""

    process: subprocess.Popen[bytes]
    store_url: str
    advert: ServeAdvert
    client: ServeClient

    @property
    def url(self) -> str:
        return self.advert.url

    def rows(self, query: str) -> list[dict[str, Any]]:
        """A read-only query's rows as dicts, through serve's SQL route."""
        return _dicts(self.client.sql(query))

    def settle(self, calls: int, signals: int) -> None:
        """Wait until the store holds ``calls`` LLM calls and ``signals`` feedback signals:
        serve acknowledges spans once spooled and inserts them a moment later."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        query = sql_file("pipeline_counts")
        while True:
            (counts,) = self.rows(query)
            if (counts["calls"], counts["signals"]) == (calls, signals):
                return
            if time.monotonic() > deadline:
                raise DemoError(
                    f"the store holds {counts['calls']} calls and {counts['signals']} signals "
                    f"after {SETTLE_TIMEOUT_S:.0f} s, not the {calls} and {signals} the demo "
                    "sent; see serve's log"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C would: serve decides its buffered traces and flushes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise DemoError(f"serve did not stop within {STOP_TIMEOUT_S:.0f} s") from None


def start(store_url: str, prompts: Path, home: Path, log: Path) -> Serve:
    """Start ``closedloop serve`` on a free loopback port and wait until it answers.

    ``home`` is its ``CLOSEDLOOP_HOME`` (spool, state), so nothing of an earlier run or
    of another store leaks in; ``--workers 0``: the demo's few thousand spans need no
    decoding processes, and serve starts faster without them."""
    command = [
        sys.executable,
        "-m",
        "closedloop.cli",
        "serve",
        "--port",
        "0",
        "--store",
        store_url,
        "--prompts",
        str(prompts),
        "--workers",
        "0",
        "--rescue-every",
        "2s",
    ]
    environment = {**os.environ, "CLOSEDLOOP_HOME": str(home)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while (advert := find_serve(store_url)) is None:
        if process.poll() is not None:
            raise DemoError(f"closedloop serve exited with {process.returncode}: {_last_line(log)}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise DemoError(f"closedloop serve did not answer within {START_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
    return Serve(process, store_url, advert, ServeClient(advert))


def _dicts(result: SqlResult) -> list[dict[str, Any]]:
    names = [name for name, _ in result.columns]
    return [dict(zip(names, row, strict=True)) for row in result.rows]


def _last_line(log: Path) -> str:
    lines = log.read_text("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"
