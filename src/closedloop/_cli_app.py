"""What every ``closedloop`` command shares: one-line errors, ``--debug``, help examples.

A person at a shell wants the reason and the fix on one line, not a stack; a bug report
wants the stack. So every command runs inside :class:`CommandGroup`: a usage mistake is one
line (exit 2) pointing at the command's ``--help``, closedloop's own errors are their one
line (exit 1), and anything unexpected is one line that names ``--debug`` (exit 1), which
shows the traceback instead.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from closedloop._errors import ClosedloopError
from closedloop._extras import extra_needed
from closedloop._since import SinceError, since_moment

with extra_needed("cli", "The closedloop command"):
    import typer
    from typer.core import TyperGroup

DEBUG: Final = "closedloop.debug"
"""``ctx.meta`` key (the meta dict is shared by every context of one run)."""
# click's UsageError and ClickException, whichever click this typer uses (newer ones
# vendor their own): the bases of typer.BadParameter.
_USAGE_ERROR: Final[type[Exception]] = typer.BadParameter.__mro__[1]
_CLICK_ERROR: Final[type[Exception]] = typer.BadParameter.__mro__[2]


STORE_HELP: Final = (
    "Store URL (default: chdb://.closedloop/store, relative to the current directory). "
    "While closedloop serve holds a chDB store, the command goes through serve's API."
)
"""``--store`` of every command that reads the store, serve or not."""


def moment_option(option: str, text: str | None) -> datetime.datetime | None:
    """The moment an age or ISO time option names (``--since 7d``); None when not given."""
    try:
        return since_moment(text) if text else None
    except SinceError as error:
        raise ClosedloopError(f"{option}: {error}") from None


def examples(*lines: str) -> str:
    """A ``--help`` epilog: the command lines, each on its own line (rich keeps them)."""
    return "Examples:\n\n" + "\n\n".join(f"  $ {line}" for line in lines)


def _command_name(ctx: Any) -> str:
    """``closedloop prompts validate``, however the program was started (``python -m``)."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["closedloop", *reversed(names)])


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(error: Exception) -> str:
    """closedloop's own errors (and click's) say what to do; anything else is a bug or a
    surprise whose traceback ``--debug`` shows."""
    if isinstance(error, ClosedloopError):
        return _one_line(str(error))
    if isinstance(error, _CLICK_ERROR):
        return _one_line(getattr(error, "format_message")())  # noqa: B009 - typed as Exception
    return _one_line(f"{type(error).__name__}: {error}") + " (run with --debug for the traceback)"


class CommandGroup(TyperGroup):
    """A command group whose subcommands fail on one line (see the module's docstring)."""

    def invoke(self, ctx: Any) -> Any:  # click's Context: typer vendors its own click
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:
            if type(error).__name__ == "NoArgsIsHelpError":  # a group's help, not a mistake
                raise
            command = f"{_command_name(ctx)} {ctx.invoked_subcommand or ''}".rstrip()
            if isinstance(error, _USAGE_ERROR):
                message = getattr(error, "format_message")()  # noqa: B009 - typed as Exception
                typer.echo(
                    f"{command}: {_one_line(message)} (see {command} --help for usage and "
                    "examples)",
                    err=True,
                )
                raise typer.Exit(2) from None
            if isinstance(error, _CLICK_ERROR) or not ctx.meta.get(DEBUG):
                typer.echo(f"{command}: {_reason(error)}", err=True)
                raise typer.Exit(1) from None
            raise
