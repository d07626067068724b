"""``closedloop compare``: the comparison ``compare`` makes, as a rich table or JSON.

The lead registers ``compare_command`` on the CLI's app. The store is opened as every
command opens it (``store_access``): directly when free, through the ``closedloop serve``
that holds it otherwise (its read-only SQL route, the query's parameters written into
the statement as quoted literals).
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from closedloop._cli_app import STORE_HELP, moment_option
from closedloop._errors import ClosedloopError
from closedloop._extras import extra_needed

with extra_needed("cli", "The closedloop command"):
    import typer
    from rich.console import Console
    from rich.table import Table

from closedloop.experiments._compare_metrics import METRIC_NAMES
from closedloop.store._schema import SchemaSettings

if TYPE_CHECKING:  # the statistics load scipy: only ``compare`` itself pays for that
    from closedloop.experiments._compare import CompareResult, MetricResult, Unit

_PARAMETER = re.compile(r"\{(\w+):(\w+)\}")
_COLOURS = {  # by Verdict value
    "better": "green",
    "worse": "red",
    "no detectable difference": "white",
    "not enough data": "yellow",
    "not trustworthy: sample ratio mismatch": "red",
}


def compare_command(
    *,
    prompt: str = typer.Option(..., "--prompt", help="The prompt's name, e.g. triage."),
    baseline: str = typer.Option(..., "--baseline", help="The version in production, e.g. v3."),
    candidate: str = typer.Option(..., "--candidate", help="The version tested, e.g. v4."),
    since: str = typer.Option(
        None, help="Experiment start: an age (14d, 12h) or ISO time; default: all data."
    ),
    until: str = typer.Option(None, help="Experiment end: an age or ISO time; default: now."),
    unit: str = typer.Option("user", help="What routing randomises: user or call."),
    shares: str = typer.Option(
        None,
        help="Configured traffic of baseline/candidate, e.g. 80/20, for the sample ratio "
        "check; default: from --prompts, else 50/50.",
    ),
    prompts: str = typer.Option(
        None,
        "--prompts",
        help="The prompt directory: the sample ratio check expects the two versions' shares "
        "as its files configure them.",
    ),
    primary: str = typer.Option(
        None,
        help=f"The metric that decides; the others are guardrails ({', '.join(METRIC_NAMES)}).",
    ),
    alpha: float = typer.Option(0.05, help="Significance level."),
    sequential: bool = typer.Option(
        False, "--sequential", help="Verdicts from always-valid p-values (safe to check daily)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    store_url: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Compare a candidate prompt version with the baseline on every metric."""
    from closedloop._cli_store import _Direct, store_access
    from closedloop.experiments._compare import compare
    from closedloop.store import DEFAULT_URL
    from closedloop.store._connect import location

    url = store_url or DEFAULT_URL
    try:
        start = moment_option("--since", since)
        end = moment_option("--until", until)
        weights = _configured_shares(shares, prompts, prompt, (baseline, candidate))
        if unit not in ("user", "call"):
            raise ClosedloopError(f"--unit {unit!r}: pass user or call")
        with store_access(url, migrate=False) as access:
            store = (
                access.store
                if isinstance(access, _Direct)
                else _ThroughServe(access, SchemaSettings(database=location(url)[1]))
            )
            result = compare(
                store,
                prompt=prompt,
                baseline=baseline,
                candidate=candidate,
                since=start,
                until=end,
                unit=_unit(unit),
                primary=primary,
                alpha=alpha,
                shares=weights,
                sequential=sequential,
            )
    except (ClosedloopError, ValueError) as error:
        # one line: a store's error can span several (a server's HTML page, a stack)
        typer.echo(f"closedloop compare: {' '.join(str(error).split())}", err=True)
        raise typer.Exit(1) from None
    if json_output:
        sys.stdout.write(json.dumps(result.as_json(), indent=2) + "\n")
    else:
        write_table(result, Console())


def _unit(text: str) -> Unit:
    return "user" if text == "user" else "call"


def _configured_shares(
    shares: str | None, prompts: str | None, prompt: str, versions: tuple[str, str]
) -> tuple[float, float]:
    """What the sample ratio check expects: ``--shares``, or the registry's buckets of the
    two versions (an 80/20 test checked against 50/50 would cry mismatch), or 50/50."""
    if shares is not None and prompts is not None:
        raise ClosedloopError("pass --shares or --prompts, not both")
    if shares is not None:
        return _shares(shares)
    if prompts is None:
        return 1.0, 1.0
    from closedloop.experiments._prompt_dir import load_prompt_directory

    spec = load_prompt_directory(Path(prompts)).get(prompt)
    if spec is None:
        raise ClosedloopError(f"--prompts {prompts}: no prompt named {prompt!r} there")
    buckets = {version.name: version.buckets for version in spec.versions}
    weights = []
    for name in versions:
        served = buckets.get(name)
        if not served:
            raise ClosedloopError(
                f"--prompts {prompts}: {prompt} {name} serves no traffic there (no such "
                "version, or shadow or retired); pass --shares for a finished experiment"
            )
        weights.append(float(len(served)))
    return weights[0], weights[1]


def _shares(text: str) -> tuple[float, float]:
    """``80/20`` as (80.0, 20.0)."""
    parts = text.split("/")
    try:
        values = tuple(float(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 2 or not all(value > 0 for value in values):
        raise ClosedloopError(f"--shares {text!r}: pass baseline/candidate traffic, e.g. 80/20")
    return values[0], values[1]


class _ThroughServe:
    """``compare``'s store, when serve holds it: the statement with its parameters written in
    as literals, run by serve's read-only SQL route (which refuses anything but reading)."""

    def __init__(self, access: Any, settings: SchemaSettings) -> None:
        self._access = access
        self.settings = settings

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        values = parameters or {}
        text = _PARAMETER.sub(lambda match: _literal(values[match.group(1)], match.group(2)), sql)
        result = self._access.sql(text)
        names = [name for name, _ in result.columns]
        return [dict(zip(names, row, strict=True)) for row in result.rows]


def _literal(value: Any, kind: str) -> str:
    """A ClickHouse literal of ``kind``: strings quoted and escaped, numbers as ints."""
    if kind == "String":
        escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    return str(int(value))


def write_table(result: CompareResult, console: Console) -> None:
    """The sample ratio check first, then one row per metric."""
    srm = result.srm
    if srm is None:
        console.print("[yellow]No units in either version: nothing to compare.[/]")
    elif srm.mismatch:
        console.print(
            f"[bold red]SAMPLE RATIO MISMATCH[/] (chi-square p = {srm.p_value:.2g} < "
            f"{srm.threshold}): units {srm.observed[0]:,} / {srm.observed[1]:,}, expected "
            f"{srm.expected[0]:,.0f} / {srm.expected[1]:,.0f}. Assignment or logging is "
            "broken; no verdict below can be trusted."
        )
    else:
        console.print(
            f"[green]Sample ratio OK[/] (chi-square p = {srm.p_value:.3g}): units "
            f"{srm.observed[0]:,} / {srm.observed[1]:,}, shares "
            f"{srm.shares[0]:.0%} / {srm.shares[1]:.0%}."
        )
    console.print(
        f"{result.prompt}: {result.candidate} (candidate) against {result.baseline} "
        f"(baseline), unit = {result.unit}, alpha = {result.alpha}"
    )
    for note in result.notes:
        console.print(f"  {note}", style="dim")
    if result.excluded_units:
        console.print(f"  {result.excluded_units} users saw both versions and are left out")
    if result.calls_without_user:
        console.print(f"  {result.calls_without_user} calls carry no user hash and are left out")
    table = Table()
    for column in (
        "metric",
        result.baseline,
        result.candidate,
        "difference",
        "interval",
        "lift",
        "p",
        "verdict",
    ):
        table.add_column(column, justify="left" if column in ("metric", "verdict") else "right")
    for metric in result.metrics:
        table.add_row(*_row(metric))
    console.print(table)


def _row(metric: MetricResult) -> list[str]:
    name = metric.label + (" (primary)" if metric.role == "primary" else "")
    verdict = f"[{_COLOURS[metric.verdict.value]}]{metric.summary}[/]"
    c = metric.comparison
    if c is None:
        return [name, "-", "-", "-", "-", "-", "-", verdict]
    arms = [
        f"{_fmt(arm.value)} [{_fmt(arm.interval.low)}, {_fmt(arm.interval.high)}]"
        for arm in (c.baseline, c.candidate)
    ]
    lift = f"{c.relative_lift:+.1%}" if c.relative_lift is not None else "-"
    p = metric.p_value_adjusted if metric.p_value_adjusted is not None else c.p_value
    shown_p = "-" if p is None or math.isnan(p) else f"{p:.3g}"  # NaN: no spread to test
    return [
        name,
        *arms,
        f"{c.difference:+.4g}",
        f"[{_fmt(c.interval.low)}, {_fmt(c.interval.high)}]",
        lift,
        shown_p,
        verdict,
    ]


def _fmt(value: float) -> str:
    return f"{value:.4g}"
