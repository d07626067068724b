"""``closedloop demo``: the command; the lead registers ``demo_command`` on the CLI's app."""

from __future__ import annotations

from pathlib import Path

from closedloop._errors import ClosedloopError
from closedloop._extras import extra_needed

with extra_needed("all", "closedloop demo"):
    import typer
    from rich.console import Console

DEFAULT_DIRECTORY = ".closedloop/demo"


def demo_command(
    *,
    tickets: int = typer.Option(
        2000, "--tickets", min=50, help="Tickets in the two A/B weeks (week 0 gets half as many)."
    ),
    seed: int = typer.Option(7, "--seed", help="Seed of the simulation: same seed, same numbers."),
    directory: str = typer.Option(
        DEFAULT_DIRECTORY,
        "--directory",
        help="Where the demo keeps its store, prompts and serve's log; replaced on each run.",
    ),
) -> None:
    """Run the support-triage case study end to end: week 0 with prompt v3, the feedback
    table's analysis, an A/B test of v4 at 20 %, and the decision by compare."""
    from closedloop.demo._run import run

    try:
        run(tickets_in_test=tickets, seed=seed, directory=Path(directory), console=Console())
    except (ClosedloopError, OSError) as error:
        typer.echo(f"closedloop demo: {error}", err=True)
        raise typer.Exit(1) from None
