"""What a checked prompt file holds: the prompt, its versions, and their bucket ranges.

Frozen values, built only by the loader after every check passed, so the router and the
CLI can trust them without checking again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["production", "testing", "shadow", "retired"]
STATUSES: tuple[Status, ...] = ("production", "testing", "shadow", "retired")
ROLES = ("system", "developer", "user", "assistant")


@dataclass(frozen=True)
class MessageTemplate:
    """One message of a version: its role and its ``{placeholder}`` template."""

    role: str
    template: str


@dataclass(frozen=True)
class PromptVersion:
    """One version of a prompt, as its file states it."""

    prompt: str
    experiment: str
    name: str
    status: Status
    model: str
    parameters: Mapping[str, object]  # read-only
    messages: tuple[MessageTemplate, ...]
    share: float | None  # percent of units; testing versions only
    buckets: range | None  # the buckets it serves; None when it serves none (shadow, retired)
    line: int  # where the version starts in its file


@dataclass(frozen=True)
class PromptSpec:
    """A checked prompt file."""

    name: str
    path: Path
    experiment: str
    variables: tuple[str, ...]
    versions: tuple[PromptVersion, ...]  # in file order

    @property
    def production(self) -> PromptVersion:
        return next(version for version in self.versions if version.status == "production")

    def with_status(self, status: Status) -> tuple[PromptVersion, ...]:
        return tuple(version for version in self.versions if version.status == status)
