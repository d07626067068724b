"""Route a parsed request to its endpoint builder, applying error scenarios around it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from closedloop.testing import _chat, _embeddings, _responses, _scenarios
from closedloop.testing._quirks import Quirks
from closedloop.testing._replies import IdFactory, Reply, error_reply

Handler = Callable[[Mapping[str, Any], IdFactory], Reply]
Responder = Callable[[Mapping[str, Any]], str | None]
"""Decides what the model answers to a chat or responses request: its text, or None for
the echo. Lets a test or demo script behaviour per request (say, per prompt and input)."""
TextHandler = Callable[[Mapping[str, Any], IdFactory, str], Reply]

_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v1/chat/completions"): _chat.reply,
    ("POST", "/v1/responses"): _responses.reply,
    ("POST", "/v1/embeddings"): _embeddings.reply,
}
_TEXT_ROUTES: dict[tuple[str, str], TextHandler] = {
    ("POST", "/v1/chat/completions"): _chat.reply,
    ("POST", "/v1/responses"): _responses.reply,
}


def dispatch(
    method: str,
    path: str,
    request: object,
    ids: IdFactory,
    quirks: Quirks,
    *,
    responder: Responder | None = None,
) -> Reply:
    """Build the reply; ``request`` is the decoded JSON body, or None if it was not JSON."""
    handler = _ROUTES.get((method, path))
    if handler is None:
        return error_reply(404, f"Invalid URL ({method} {path})", "invalid_request_error")
    if not isinstance(request, Mapping):
        return error_reply(
            400, "We could not parse the JSON body of your request.", "invalid_request_error"
        )
    canned = quirks.refusal(request) or _scenarios.canned_reply(request)
    if canned is not None:
        return canned
    text_handler = _TEXT_ROUTES.get((method, path))
    try:
        text = responder(request) if responder and text_handler else None
    except Exception as exc:  # the responder is the caller's code: report, never crash
        return error_reply(500, f"responder raised {exc!r}", "server_error")
    try:
        if text is not None and text_handler is not None:
            reply = text_handler(quirks.request(path, request), ids, text)
        else:
            reply = handler(quirks.request(path, request), ids)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # A request the fake model cannot interpret is the caller's bug, not a server crash.
        return error_reply(400, f"Invalid request body: {exc!r}", "invalid_request_error")
    return quirks.reply(_scenarios.adjust(request, reply))
