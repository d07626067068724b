"""Message templates: ``{name}`` placeholders, checked once at load, filled by ``format_map``.

Templates use Python's format syntax restricted to plain names, so a checked template
renders with ``str.format_map`` (C speed, no parsing on the request path) and can never
reach into an object (``{user.__class__}``) or depend on argument order (``{0}``).
Literal braces are written ``{{`` and ``}}``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

_FORMATTER = string.Formatter()
_PLAIN_NAME_FIX = (
    "placeholders are plain names such as {ticket}; write {{ and }} for a literal brace"
)


@dataclass(frozen=True)
class Placeholder:
    """A ``{name}`` in a template, and how many lines into the template it sits."""

    name: str
    line_offset: int


class TemplateError(ValueError):
    """A template that is not plain ``{name}`` placeholders; ``line_offset`` locates it."""

    def __init__(self, problem: str, fix: str, line_offset: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.line_offset = line_offset


def placeholders(template: str) -> list[Placeholder]:
    """The placeholders of ``template`` in order, or a :class:`TemplateError`."""
    found: list[Placeholder] = []
    newlines = 0
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as error:  # an unmatched brace
        raise TemplateError(f"{error} in the template", _PLAIN_NAME_FIX, 0) from None
    for literal, field, spec, conversion in parsed:
        newlines += literal.count("\n")  # escaping changes braces only, never newlines
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            shown = (
                "{"
                + field
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise TemplateError(f"{shown} is not a plain placeholder", _PLAIN_NAME_FIX, newlines)
        found.append(Placeholder(field, newlines))
    return found
