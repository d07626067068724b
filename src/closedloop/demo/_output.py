"""What the demo prints. Every number here arrives as an argument: rows the store's views
answered through serve, or the result ``compare`` computed from them."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from closedloop.experiments import CompareResult, MetricResult, PromptSpec
from closedloop.experiments.stats import Interval

_VERDICT_COLOURS = {
    "better": "green",
    "worse": "red",
    "no detectable difference": "white",
    "not enough data": "yellow",
    "not trustworthy: sample ratio mismatch": "red",
}
# metric name -> label, scale, format of a value (differences of rates in points)
_SHOWN: dict[str, tuple[str, float, str]] = {
    "reopen_rate": ("reopened (primary)", 100.0, "{:.1f} %"),
    "latency_p95_ms": ("p95 latency, ms", 1.0, "{:.1f}"),
    "cost_per_call_usd": ("cost/call, µUSD", 1e6, "{:.2f}"),
    "escalation_rate": ("escalated", 100.0, "{:.1f} %"),
}


def intro(console: Console, *, week0: int, test: int, customers: int, seed: int) -> None:
    console.rule("[bold]closedloop demo: the support-triage case study")
    console.print(
        f"A support bot routes tickets to billing, accounts, technical or shipping with prompt "
        f"[bold]triage[/]. {customers:,} customers send {week0:,} tickets in week 0 and "
        f"{test:,} in the two A/B weeks (seed {seed}).\n"
        "Real path: the openai SDK calls a local OpenAI-compatible server (its answers "
        "scripted per ticket kind and prompt text), closedloop.instrument() traces each call "
        "and sends it over OTLP to a `closedloop serve` this demo started, which tail-samples "
        "and stores into chDB; every number below is read back from the store's views.\n"
        "[bold]The clock is simulated.[/] Spans carry real timestamps, and the run takes "
        "seconds; a 'day' is the order in which things happen. Each day the bot routes that "
        "day's tickets, and the ticket system reports the outcomes that happen that day: a "
        "misrouted ticket is reopened 1-3 days after routing, a ticket still closed after 5 "
        "days is reported as not reopened. So outcomes reach the store after the calls of "
        "later days, as they do in production."
    )


def week0(console: Console, rows: Sequence[Mapping[str, Any]], review_day: int) -> None:
    console.rule(
        f"[bold]1. Week 0: triage v3 in production (days 1-7, reviewed on day {review_day})"
    )
    for row in rows:
        console.print(
            f"triage {row['prompt_version']}: {row['calls']:,} tickets routed, "
            f"{row['outcomes']:,} outcomes reported, {row['reopened']:,} reopened: "
            f"reopen rate [bold]{_percent(row['reopen_rate'])}[/], escalated "
            f"{_percent(row['escalation_rate'])}  (prompt_version_metrics)"
        )


def analysis(console: Console, rows: Sequence[Mapping[str, Any]]) -> None:
    console.rule("[bold]2. Analysis: which tickets are misrouted?")
    table = Table(title="week 0 feedback table: ticket_reopened by topic")
    for column in ("topic", "tickets", "reopened", "reopen rate"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for row in rows:
        table.add_row(
            str(row["topic"]),
            f"{row['tickets']:,}",
            f"{row['reopened']:,}",
            _percent(row["reopen_rate"]),
        )
    console.print(table)
    worst = " and ".join(f"{row['topic']} ({_percent(row['reopen_rate'])})" for row in rows[:2])
    console.print(
        f"Reopened most: {worst}. The team writes triage v4, which states the routing rule "
        "for the two kinds."
    )


def test_start(console: Console, spec: PromptSpec, days: tuple[int, int]) -> None:
    console.rule(f"[bold]3. A/B test: days {days[0]}-{days[1]}, sticky by customer")
    shares = ", ".join(
        f"{version.name} {version.status} {len(version.buckets) / 100:g} %"
        for version in spec.versions
        if version.buckets
    )
    console.print(
        f"prompts/triage.yaml now serves {shares} (registry.select(..., unit=customer_id)); "
        "outcomes keep arriving days after each ticket."
    )


def decision(console: Console, result: CompareResult) -> None:
    console.rule("[bold]4. Decision: closedloop compare (through serve's read-only SQL)")
    srm = result.srm
    if srm is None:
        console.print("[yellow]No customers in either version: nothing to compare.[/]")
        return
    status = "[bold red]MISMATCH[/]" if srm.mismatch else "[green]OK[/]"
    console.print(
        f"Sample ratio {status}: customers {srm.observed[0]:,} ({result.baseline}) / "
        f"{srm.observed[1]:,} ({result.candidate}), expected {srm.shares[0]:.0%} / "
        f"{srm.shares[1]:.0%} from the prompt file, chi-square p = {srm.p_value:.3g}"
    )
    table = Table(
        title=f"triage {result.candidate} against {result.baseline}: primary metric and "
        "guardrails, per customer",
        box=box.SIMPLE_HEAD,
    )
    for column in ("metric", result.baseline, result.candidate, "difference", "p", "verdict"):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for name, (label, scale, form) in _SHOWN.items():
        table.add_row(label, *_cells(result.metric(name), scale, form))
    console.print(table)
    console.print(
        "95 % intervals; statistics per customer (ratio of per-customer sums); the "
        "primary metric at alpha = 0.05, guardrails Holm-corrected. Latency is wall time "
        "measured on this machine: it changes from run to run, and with it the other "
        "guardrails' Holm-corrected p and whether the verdict names latency.",
        style="dim",
    )
    for name in _SHOWN:
        metric = result.metric(name)
        if metric.more_units_needed and metric.verdict.value == "not enough data":
            console.print(f"{metric.label}: {metric.summary}", style="dim")
    console.print(_headline(result.metric("reopen_rate"), result))
    console.print(_conclusion(result))


def next_steps(
    console: Console, directory: Path, store_url: str, since: datetime.datetime, seconds: float
) -> None:
    console.rule("[bold]5. Explore")
    store = f"--store {store_url}"
    prompts = directory / "prompts"
    since_text = since.isoformat().replace("+00:00", "Z")
    console.print(
        f"Finished in {seconds:.1f} s. Everything is in {directory}/ (replaced on the next "
        "run).\nOpen the UI:\n"
        f"  closedloop serve {store} --prompts {prompts}\n"
        "  then http://127.0.0.1:4318/\n"
        "Explore further:\n"
        f"  closedloop compare {store} --prompts {prompts} --prompt triage --baseline v3 "
        f"--candidate v4 --since {since_text} --primary reopen_rate\n"
        f"  closedloop sql {store} --file {directory / 'reopen_by_topic.sql'}\n"
        f'  closedloop sql {store} "SELECT prompt_version, sum(calls) AS calls, '
        'sum(reopen_outcomes) AS outcomes FROM prompt_version_metrics GROUP BY prompt_version"\n'
        f"  closedloop prompts list {prompts}",
        soft_wrap=True,
    )


def _cells(metric: MetricResult, scale: float, form: str) -> list[str]:
    """Each value over its interval, the p-value, the verdict in its colour."""
    colour = _VERDICT_COLOURS[metric.verdict.value]
    verdict = f"[{colour}]{metric.verdict.value}[/]"
    c = metric.comparison
    if c is None:
        return ["-", "-", "-", "-", verdict]
    difference = form.replace("{:", "{:+").replace(" %", " pp")
    return [
        _over_interval(c.baseline.value, c.baseline.interval, scale, form),
        _over_interval(c.candidate.value, c.candidate.interval, scale, form),
        _over_interval(c.difference, c.interval, scale, difference),
        _p(metric),
        verdict,
    ]


def _over_interval(value: float, interval: Interval, scale: float, form: str) -> str:
    number = form.split(" ", maxsplit=1)[0]
    low, high = (number.format(bound * scale) for bound in (interval.low, interval.high))
    return f"{form.format(value * scale)}\n[{low}, {high}]"


def _p(metric: MetricResult) -> str:
    c = metric.comparison
    if c is None:
        return "-"
    p = metric.p_value_adjusted if metric.p_value_adjusted is not None else c.p_value
    return "< 0.0001" if p < 0.0001 else f"{p:.2g}"


def _headline(metric: MetricResult, result: CompareResult) -> str:
    """The primary metric in one line: both rates, the difference, its interval, p."""
    c = metric.comparison
    if c is None:
        return f"Reopen rate: {metric.summary}"
    p = _p(metric)
    return (
        f"Reopen rate: {result.baseline} {_percent(c.baseline.value)} -> {result.candidate} "
        f"{_percent(c.candidate.value)}, difference {c.difference * 100:+.1f} pp "
        f"(95 % interval {c.interval.low * 100:+.1f} to {c.interval.high * 100:+.1f}), "
        f"p {p if p.startswith('<') else '= ' + p}"
    )


def _conclusion(result: CompareResult) -> str:
    """The verdicts in one sentence; the promotion itself is a person's call."""
    primary = result.metric("reopen_rate")
    worse = [
        result.metric(name).label
        for name in _SHOWN
        if name != "reopen_rate" and result.metric(name).verdict.value == "worse"
    ]
    head = f"Verdict on the reopen rate: [bold]{primary.summary}[/]"
    if not worse:
        return f"{head}; no guardrail got worse. Promote {result.candidate} once a person approves."
    return (
        f"{head}; worse on {', '.join(worse)}: a person weighs that against the reopen rate "
        f"before promoting {result.candidate}."
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"
