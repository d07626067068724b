"""HTML for the web UI's pages: escaping, the page frame, and numbers as they are shown.

Everything rendered from data goes through :func:`esc` (content and attribute values
alike: prompt names, attributes and messages are user data). A shown number carries its
exact API value in ``data-value``, so a reader (and the UI tests) can tell the figure
from its rounding.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Final, Literal

Kind = Literal["count", "rate", "usd", "ms", "p", "number"]
NOTHING: Final = "\u2013"
"""What a missing value (``null``: no denominator, no data) shows."""
PAGES: Final = (
    ("/", "Overview"),
    ("/prompts", "Prompts"),
    ("/compare", "Compare"),
    ("/feedback", "Feedback"),
    ("/sampling", "Sampling"),
)
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""The pages run no script at all; user data can never become one."""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def shown(value: float | int | None, kind: Kind) -> str:
    """``value`` as a person reads it; :data:`NOTHING` for null."""
    if value is None:
        return NOTHING
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "rate":
        return f"{value * 100:.1f} %"
    if kind == "usd":  # LLM calls cost fractions of a cent: keep three significant digits
        return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.3g}"
    if kind == "ms":
        return f"{value:,.0f} ms"
    if kind == "p":
        return f"{value:.3g}"
    return f"{value:,.4g}"


def number(value: float | int | None, kind: Kind, tag: str = "td", **attributes: str) -> str:
    """A cell (or span) showing ``value``, with the exact value in ``data-value``."""
    extra = "".join(f' {name.replace("_", "-")}="{esc(v)}"' for name, v in attributes.items())
    return (
        f'<{tag} class="num" data-value="{esc(json.dumps(value))}"{extra}>'
        f"{esc(shown(value, kind))}</{tag}>"
    )


def table(headers: Sequence[str], rows: Iterable[str], *, caption: str = "", css: str = "") -> str:
    """A table; ``rows`` are ``<tr>`` markup, headers are escaped here."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="{esc(css)}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def api_links(urls: Iterable[str]) -> str:
    """Where the page's numbers come from: the API answers it read."""
    links = " ".join(f'<a class="api" href="{esc(url)}">{esc(url)}</a>' for url in urls)
    return f'<p class="source">Data: {links}</p>'


def error_box(message: str) -> str:
    return f'<p class="error" role="alert">{esc(message)}</p>'


def page(path: str, title: str, body: str) -> str:
    """The frame every page shares: navigation, a heading, the body."""
    current = ' aria-current="page"'
    nav = "".join(
        f'<li><a href="{href}"{current if href == path else ""}>{name}</a></li>'
        for href, name in PAGES
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} \u00b7 closedloop</title>"
        '<link rel="stylesheet" href="/static/closedloop.css"></head><body>'
        '<header><a class="brand" href="/">closedloop</a>'
        f'<nav aria-label="Pages"><ul>{nav}</ul></nav></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
