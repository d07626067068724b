"""The case study end to end, on a simulated clock.

Spans carry real timestamps; days are simulated. Each simulated day the bot routes that
day's tickets (real ``openai`` calls to the local server, traced by closedloop, sent over
OTLP to ``closedloop serve``), and the helpdesk reports the outcomes that happen that day.
A day is therefore an order of events, not a stretch of time, and outcomes reach the
store after the calls of later days, as they would in production.

Timeline: days 1-7, week 0, v3 alone; days 8-12 route nothing (v3 keeps serving, the demo
skips it) while week 0's outcomes arrive; day 12, the review; days 13-26, the A/B test;
then the clock runs on until the last outcome is in, and the decision.
"""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import openai
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import closedloop
from closedloop.demo import _output
from closedloop.demo._bot import PROMPT, SupportBot
from closedloop.demo._helpdesk import REOPEN_WINDOW_DAYS, Helpdesk
from closedloop.demo._scenario import ScriptedModel, Ticket, tickets
from closedloop.demo._serve import DemoError, Serve, sql_file, start
from closedloop.experiments import CompareResult, PromptRegistry, compare
from closedloop.experiments._cli_compare import _configured_shares, _ThroughServe
from closedloop.store._connect import location
from closedloop.store._schema import SchemaSettings
from closedloop.testing import OpenAICompatibleServer

WEEK0 = (1, 7)
REVIEW_DAY = WEEK0[1] + REOPEN_WINDOW_DAYS
AB = (REVIEW_DAY + 1, REVIEW_DAY + 14)
BASELINE, CANDIDATE = "v3", "v4"
MARKER = ".closedloop-demo"
"""Marks a directory the demo made, so it never replaces one it did not."""
TOPIC_QUERY = "reopen_by_topic"


@dataclass(frozen=True)
class Paths:
    """Where one run keeps everything, replaced on each run."""

    directory: Path

    @property
    def store_url(self) -> str:
        return f"chdb://{self.directory / 'store'}"

    @property
    def prompts(self) -> Path:
        return self.directory / "prompts"

    @property
    def topic_query(self) -> Path:
        return self.directory / f"{TOPIC_QUERY}.sql"


def run(*, tickets_in_test: int, seed: int, directory: Path, console: Console) -> None:
    """Week 0, the review, the A/B test and the decision; ``tickets_in_test`` tickets in the
    A/B weeks and half as many in week 0."""
    began = time.monotonic()
    paths = Paths(directory)
    customers = max(10, tickets_in_test * 3 // 4)
    week0 = tickets(
        seed,
        first_id=1,
        count=tickets_in_test // 2,
        first_day=WEEK0[0],
        days=WEEK0[1] - WEEK0[0] + 1,
        customers=customers,
    )
    test = tickets(
        seed,
        first_id=len(week0) + 1,
        count=tickets_in_test,
        first_day=AB[0],
        days=AB[1] - AB[0] + 1,
        customers=customers,
    )
    _replace(paths)
    _write_prompts(paths, "week0")
    _output.intro(console, week0=len(week0), test=len(test), customers=customers, seed=seed)
    serve = start(
        paths.store_url, paths.prompts, paths.directory / "home", paths.directory / "serve.log"
    )
    try:
        since = _loop(serve, paths, seed, (week0, test), console)
    finally:
        serve.stop()
    _output.next_steps(console, paths.directory, paths.store_url, since, time.monotonic() - began)


def _loop(
    serve: Serve,
    paths: Paths,
    seed: int,
    phases: tuple[Sequence[Ticket], Sequence[Ticket]],
    console: Console,
) -> datetime.datetime:
    """Everything that needs serve and the local model; returns the A/B test's start."""
    week0, test = phases
    with OpenAICompatibleServer(responder=ScriptedModel(seed, [*week0, *test])) as model:
        provider = closedloop.instrument(
            service_name="support-triage", endpoint=serve.url, user_hash_key=f"demo-{seed}"
        )
        client = openai.OpenAI(base_url=model.base_url, api_key="demo", max_retries=0)
        registry = PromptRegistry(paths.prompts, poll_interval_s=None)
        clock = _Clock(SupportBot(client, registry), Helpdesk(seed), serve, provider, console)
        clock.simulate("week 0", week0, WEEK0[0], REVIEW_DAY)
        _output.week0(console, serve.rows(sql_file("reopen_by_version")), REVIEW_DAY)
        paths.topic_query.write_text(sql_file(TOPIC_QUERY), encoding="utf-8")
        _output.analysis(console, serve.rows(sql_file(TOPIC_QUERY)))

        _write_prompts(paths, "ab")
        registry.reload()
        _output.test_start(console, registry.prompts[PROMPT], AB)
        since = datetime.datetime.now(datetime.timezone.utc)
        clock.simulate("A/B test", test, AB[0], AB[1])
        _output.decision(console, _compare(serve, paths, since))
    return since


def _compare(serve: Serve, paths: Paths, since: datetime.datetime) -> CompareResult:
    """``compare`` through serve's read-only SQL route, as ``closedloop compare`` does while
    serve holds the store: the decision is made on the live backend, with no need to stop
    it first. The sample ratio check expects the shares the prompt files configure."""
    shares = _configured_shares(None, str(paths.prompts), PROMPT, (BASELINE, CANDIDATE))
    store = _ThroughServe(serve.client, SchemaSettings(database=location(paths.store_url)[1]))
    return compare(
        store,
        prompt=PROMPT,
        baseline=BASELINE,
        candidate=CANDIDATE,
        since=since,
        primary="reopen_rate",
        shares=shares,
    )


@dataclass
class _Clock:
    """The simulated clock: the bot, the helpdesk and the backend they report to."""

    bot: SupportBot
    desk: Helpdesk
    serve: Serve
    provider: trace.TracerProvider
    console: Console
    calls: int = 0

    def simulate(self, phase: str, batch: Sequence[Ticket], first_day: int, last_day: int) -> None:
        """Route ``batch`` day by day through ``last_day``, and on until every outcome is
        reported; then wait until the store holds all of it, so that what is printed next
        counts everything."""
        by_day: dict[int, list[Ticket]] = {}
        for ticket in batch:
            by_day.setdefault(ticket.day, []).append(ticket)
        with _progress(self.console) as progress:
            task = progress.add_task(phase, total=len(batch))
            day = first_day
            while day <= last_day or self.desk.pending:
                progress.update(task, description=f"{phase}: day {day}")
                for ticket in by_day.get(day, ()):
                    team, trace_id = self.bot.triage(ticket)
                    self.desk.routed(ticket, team, trace_id)
                    self.calls += 1
                    progress.advance(task)
                self.desk.advance(day)
                day += 1
        if isinstance(self.provider, TracerProvider):
            self.provider.force_flush()
        self.serve.settle(self.calls, self.desk.signals_sent)


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tickets"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield progress


def _replace(paths: Paths) -> None:
    """Empty the demo's directory for this run: only one the demo made itself, and never
    while a serve holds its store."""
    directory = paths.directory
    if directory.exists():
        if any(directory.iterdir()) and not (directory / MARKER).exists():
            raise DemoError(
                f"{directory} is not empty and was not made by closedloop demo; pass "
                "--directory with a new or empty directory"
            )
        from closedloop._serve_discovery import find_serve

        running = find_serve(paths.store_url)
        if running is not None:
            raise DemoError(
                f"closedloop serve (pid {running.pid}) holds {paths.store_url}; stop it, "
                "then run the demo again"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by closedloop demo; replaced on each run\n")


def _write_prompts(paths: Paths, stage: str) -> None:
    """The app's prompt file at this stage (a data file of the package, as it would be
    committed to the app's repository)."""
    paths.prompts.mkdir(exist_ok=True)
    source = resources.files("closedloop.demo").joinpath("prompts", stage, f"{PROMPT}.yaml")
    (paths.prompts / f"{PROMPT}.yaml").write_text(source.read_text("utf-8"), encoding="utf-8")
