"""``closedloop prompts``: check a prompt directory before it ships, and show what serves.

``validate`` is meant for CI on the app's repository: it exits 1 with one line per bad
file (file:line: field: problem; fix), so a broken prompt never reaches a running app.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from closedloop._extras import extra_needed
from closedloop.experiments._prompt_errors import PromptDirectoryError
from closedloop.experiments._routing import BUCKETS_PER_PERCENT

if TYPE_CHECKING:
    from closedloop.experiments._prompt_spec import PromptSpec, PromptVersion

with extra_needed("cli", "The closedloop command"):
    import typer
    from rich import box
    from rich.console import Console
    from rich.table import Table

prompts_app = typer.Typer(
    help="Prompt files: check them, list their versions and traffic shares.",
    no_args_is_help=True,
)
console = Console()

_DIRECTORY = typer.Argument(..., help="The directory of prompt files, e.g. prompts/.")


def _load(command: str, directory: Path) -> dict[str, PromptSpec]:
    """The directory's prompts, or each file's error on stderr and exit status 1."""
    # imported here: the YAML parser comes with the experiments extra, and the rest of
    # the command line must work without it
    from closedloop.experiments._prompt_dir import load_prompt_directory

    try:
        return load_prompt_directory(directory)
    except PromptDirectoryError as error:
        for file_error in error.errors:
            typer.echo(str(file_error), err=True)
        count = len(error.errors)
        typer.echo(f"closedloop prompts {command}: {count} bad file(s)", err=True)
        raise typer.Exit(1) from None


@prompts_app.command()
def validate(directory: Path = _DIRECTORY) -> None:
    """Check every prompt file; exit 1 with one line per bad file."""
    prompts = _load("validate", directory)
    versions = sum(len(spec.versions) for spec in prompts.values())
    testing = sorted(
        f"{spec.name} {version.name}"
        for spec in prompts.values()
        for version in spec.with_status("testing")
    )
    tests = f", in test: {', '.join(testing)}" if testing else ", none in test"
    console.print(f"{len(prompts)} prompt(s), {versions} version(s) OK{tests}")


def _share(version: PromptVersion) -> str:
    if version.buckets is None:
        return "-"
    return f"{len(version.buckets) / BUCKETS_PER_PERCENT:g} %"


def _buckets(version: PromptVersion) -> str:
    if not version.buckets:
        return "-"
    return f"{version.buckets.start}-{version.buckets.stop - 1}"


@prompts_app.command("list")
def list_prompts(directory: Path = _DIRECTORY) -> None:
    """Show every version: status, traffic share, buckets, model and experiment."""
    prompts = _load("list", directory)
    table = Table(
        "prompt",
        "version",
        "status",
        "share",
        "buckets",
        "model",
        "experiment",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),  # narrow enough for an 80-column terminal
        show_edge=False,
    )
    for name in sorted(prompts):
        spec = prompts[name]
        for index, version in enumerate(spec.versions):
            first = index == 0  # the prompt and its experiment once, on its first row
            table.add_row(
                name if first else "",
                version.name,
                version.status,
                _share(version),
                _buckets(version),
                version.model,
                spec.experiment if first else "",
            )
    console.print(table)
