"""Errors of the prompt registry: each one says where (file, line, field), what and the fix.

A prompt file is edited by people who do not read closedloop's code, often in a pull
request; the message is all they get, so it points at the line and says how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from closedloop._errors import ClosedloopError


class PromptFileError(ClosedloopError, ValueError):
    """One prompt file (or the directory) cannot be used as it is."""

    def __init__(
        self, path: Path, line: int | None, field: str | None, problem: str, fix: str
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        self.fix = fix
        where = f"{path}:{line}" if line is not None else str(path)
        what = f"{field}: {problem}" if field else problem
        super().__init__(f"{where}: {what}; {fix}")


class PromptDirectoryError(ClosedloopError, ValueError):
    """A prompt directory with at least one bad file; ``errors`` has one per bad file."""

    def __init__(self, errors: Sequence[PromptFileError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class UnknownPromptError(ClosedloopError, LookupError):
    """``select`` named a prompt that no file in the directory defines."""


class PromptVariablesError(ClosedloopError, ValueError):
    """``select`` got other variables than the prompt file declares."""
