"""``closedloop report``: the metrics of each prompt version, as a rich table or JSON.

The numbers are ``prompt_version_metrics`` summed over the chosen days (``sql/report.sql``
says how rates and quantiles are combined). The statement runs as read-only SQL, so the
command reads the store directly when it is free and through the ``closedloop serve`` that
holds it otherwise, with the same answer either way.
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from importlib import resources
from typing import Any, Final

from closedloop._cli_app import STORE_HELP, examples, moment_option
from closedloop._errors import ClosedloopError
from closedloop._extras import extra_needed

with extra_needed("cli", "The closedloop command"):
    import typer
    from rich import box
    from rich.console import Console
    from rich.table import Table

_FILTER: Final = re.compile(r"\{(since|prompt|version)\}")
_EPOCH: Final = "1970-01-01"

EPILOG: Final = examples(
    "closedloop report",
    "closedloop report --prompt triage --since 14d",
    "closedloop report --prompt triage --version v4 --json",
)


def report_command(
    *,
    prompt: str = typer.Option(None, "--prompt", help="Only this prompt, e.g. triage."),
    version: str = typer.Option(None, "--version", help="Only this prompt version, e.g. v4."),
    since: str = typer.Option(
        None,
        help="From the UTC day of this moment on: an age (7d, 12h) or ISO time; default: all.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON rows, for programs."),
    store_url: str = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Metrics per prompt version: calls, errors, latency, cost and the feedback rates.

    Rates are over the whole period: error and escalation rates per call; task success,
    reopen and thumbs-up rates per call that got that signal. Definitions: docs/metrics.md."""
    from closedloop._cli_store import store_access
    from closedloop.store import DEFAULT_URL

    try:
        statement = report_statement(prompt=prompt, version=version, since=_day(since))
        with store_access(store_url or DEFAULT_URL, migrate=False) as store:
            result = store.sql(statement)
    except (ClosedloopError, ValueError) as error:
        typer.echo(f"closedloop report: {' '.join(str(error).split())}", err=True)
        raise typer.Exit(1) from None
    names = [name for name, _ in result.columns]
    rows = [dict(zip(names, row, strict=True)) for row in result.rows]
    if json_output:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif rows:
        Console().print(_table(rows))
    else:
        typer.echo(f"no calls{_filters(prompt, version, since)}", err=True)


def report_statement(*, prompt: str | None, version: str | None, since: str | None) -> str:
    """``sql/report.sql`` with the filters written in as literals."""
    text = resources.files("closedloop").joinpath("sql", "report.sql").read_text("utf-8")
    values = {"since": since or _EPOCH, "prompt": prompt or "", "version": version or ""}
    return _FILTER.sub(lambda match: _quoted(values[match.group(1)]), text)


def _quoted(value: str) -> str:
    """A ClickHouse string literal: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _day(since: str | None) -> str | None:
    """The UTC date ``--since`` names: the view has one row per day."""
    moment = moment_option("--since", since)
    return moment.astimezone(datetime.timezone.utc).date().isoformat() if moment else None


def _filters(prompt: str | None, version: str | None, since: str | None) -> str:
    """What the empty answer was about, e.g. `` for prompt 'triage' since 7d``."""
    parts = [
        f"{label} {value!r}"
        for label, value in (("for prompt", prompt), ("version", version))
        if value
    ]
    if since:
        parts.append(f"since {since}")
    return (" " + " ".join(parts) if parts else "") + " in the store"


def _table(rows: list[dict[str, Any]]) -> Table:
    """One line per version; a rate with no signal behind it is a dash, not 0 %."""
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    for column in ("prompt", "version"):
        table.add_column(column)
    table.add_column("days", no_wrap=True)
    for column in ("calls", "errors", "p95 ms", "cost $", "success", "reopen", "escalated"):
        table.add_column(column, justify="right")
    table.add_column("thumbs up", justify="right")
    for row in rows:
        days = f"{row['first_day']}..{row['last_day']}"
        table.add_row(
            row["prompt_name"],
            row["prompt_version"],
            row["first_day"] if row["first_day"] == row["last_day"] else days,
            f"{row['calls']:,}",
            _percent(row["error_rate"]),
            _number(row["latency_p95_ms"], "{:,.0f}"),
            _number(row["total_cost_usd"], "{:,.4f}"),
            _percent(row["task_success_rate"], row["task_outcomes"]),
            _percent(row["reopen_rate"], row["reopen_outcomes"]),
            _percent(row["escalation_rate"]),
            _percent(row["thumbs_up_rate"], row["thumbs_votes"]),
        )
    return table


def _percent(rate: float | None, of: int | None = None) -> str:
    """``12.5 %``, with the signals behind it (``of 96``) for a rate over some calls only."""
    if rate is None:
        return "-"
    return f"{rate:.1%}" + (f" of {of:,}" if of is not None else "")


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)
