"""A page's data: the query API's own answer, asked in-process.

A page calls the API's endpoint function with a request built from the page's query
string and reads its JSON body, so the numbers it shows are the API's by construction
(and a page never needs a second code path that could drift from the API's).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from closedloop.server._query import Handler


@dataclass(frozen=True)
class Answer:
    """An API answer: its status, its JSON body and the URL that gives it over HTTP."""

    status: int
    body: Any
    url: str

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def error(self) -> str:
        return str(self.body.get("error", "")) if isinstance(self.body, dict) else ""


def ask(
    endpoint: Handler,
    path: str,
    query: Mapping[str, str | None] | None = None,
    path_params: Mapping[str, str] | None = None,
) -> Answer:
    """``endpoint``'s answer to ``GET path?query`` (``None`` values are left out)."""
    text = urlencode({k: v for k, v in (query or {}).items() if v is not None and v != ""})
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": text.encode("ascii"),
        "headers": [],
        "path_params": dict(path_params or {}),
    }
    response = endpoint(Request(scope))
    body = json.loads(bytes(response.body))
    return Answer(response.status_code, body, f"{path}?{text}" if text else path)
