"""One ``closedloop serve`` for the UI tests, holding data made through the real path
(tests/ui/app_traffic.py: openai SDK -> local server -> instrument() -> OTLP -> serve),
with ``--prompts`` pointing at the experiment's prompt files; and one Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from _support.browser import chromium
from _support.waiting import wait_for
from server.serving import ROOT, Serve, running

TICKETS = 500
SCREENSHOTS = ROOT / ".build" / "screenshots"
PROMPT_FILE = """\
name: triage
experiment: triage-2025-06
variables: [ticket]
versions:
  v3:
    status: production
    model: gpt-4o-mini
    messages:
      - {role: system, content: "Route the ticket to billing, shipping or login."}
      - {role: user, content: "{ticket}"}
  v4:
    status: testing
    share: 50
    model: gpt-4o-mini
    messages:
      - {role: system, content: "Route the ticket; when unsure, ask which product it is about."}
      - {role: user, content: "{ticket}"}
  v2:
    status: retired
    model: gpt-4o-mini
    messages: [{role: user, content: "{ticket}"}]
"""


class Ui:
    """The running serve, what the app sent, and JSON from the query API."""

    def __init__(self, serve: Serve, sent: dict[str, int]) -> None:
        self.serve = serve
        self.sent = sent

    @property
    def url(self) -> str:
        return self.serve.url

    def api(self, path: str) -> Any:
        reply = self.serve.request("GET", path)
        assert reply.status == 200, (path, reply.body)
        return json.loads(reply.body)


def _settled(serve: Serve, sent: dict[str, int]) -> None:
    """Until every call and outcome is in the store and the sampler has decided all."""

    def stored() -> bool:
        rows = json.loads(serve.request("GET", "/api/versions").body)["rows"]
        return (
            sum(r["calls"] for r in rows) == sent["calls"]
            and sum(r["reopen_outcomes"] for r in rows) == sent["outcomes"]
        )

    wait_for(stored, 60, "the app's calls and outcomes did not all reach the store")

    def decided() -> bool:
        sampler = serve.health()["pipeline"]["sampler"]
        return sampler["traces_received"] == sum(sampler["traces_decided"].values())

    wait_for(decided, 30, "the sampler did not decide every trace")
    last: list[Any] = []

    def steady() -> bool:  # rescues done: two answers 1.5 s apart agree (but for the runs)
        time.sleep(1.5)
        body = json.loads(serve.request("GET", "/api/sampling").body)
        del body["since_start"]["rescued"]["runs"]
        same = bool(last) and last[-1] == body
        last.append(body)
        return same

    wait_for(steady, 30, "sampling counts kept changing")


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    tmp = tmp_path_factory.mktemp("ui")
    prompts = tmp / "prompts"
    prompts.mkdir()
    (prompts / "triage.yaml").write_text(PROMPT_FILE)
    policy = tmp / "policy.yaml"
    config = yaml.safe_load((ROOT / "collector" / "otel-collector.yaml").read_text())
    config["processors"]["tail_sampling"]["decision_wait"] = "1s"
    policy.write_text(yaml.safe_dump(config))
    options = (f"--prompts={prompts}", f"--policy={policy}", "--rescue-every=1s", "--workers=0")
    with running(tmp, *options) as serve:
        app = Path(__file__).with_name("app_traffic.py")
        done = subprocess.run(
            [sys.executable, str(app), serve.url, str(prompts), str(TICKETS)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        sent = json.loads(done.stdout.splitlines()[-1])
        _settled(serve, sent)
        yield Ui(serve, sent)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one module's tests. Not for the session: Playwright's sync API keeps an
    asyncio loop running in this thread until it stops, and every ``asyncio.run`` in the
    tests collected after these would fail."""
    with chromium() as running_browser:
        yield running_browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
