"""The refusals serve's JSON APIs share: one wording for a missing key, one error shape."""

from __future__ import annotations

from typing import Final

from starlette.responses import JSONResponse

NEEDS_API_KEY: Final = (
    "needs an API key (Authorization: Bearer <key>) unless the server listens on loopback only"
)
"""Completed by what needs it: "this API needs ...", "/metrics needs ..."."""


def json_error(status: int, message: str, **extra: str) -> JSONResponse:
    """``{"error": message, **extra}``; a 401 also says which scheme to answer with."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)
