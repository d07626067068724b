"""Form controls for the pages' filters: plain GET forms, so a filtered page is a URL
that can be shared, reloaded and tested, with no script."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from closedloop.server._ui_html import esc


def text_input(name: str, label: str, values: Mapping[str, str], kind: str = "text") -> str:
    value = values.get(name, "")
    return (
        f'<label>{esc(label)} <input type="{kind}" name="{esc(name)}" value="{esc(value)}"></label>'
    )


def select(name: str, label: str, options: Iterable[tuple[str, str]], chosen: str | None) -> str:
    """A select of (value, text) options; ``chosen`` is selected."""
    items = "".join(
        f'<option value="{esc(value)}"{" selected" if value == chosen else ""}>{esc(text)}</option>'
        for value, text in options
    )
    return f'<label>{esc(label)} <select name="{esc(name)}">{items}</select></label>'


def form(action: str, controls: Iterable[str], submit: str = "Apply") -> str:
    return (
        f'<form class="filters" method="get" action="{esc(action)}">'
        f'{"".join(controls)}<button type="submit">{esc(submit)}</button></form>'
    )
