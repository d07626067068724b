"""When closedloop may ask a stream for its token usage, and which endpoints refused.

Streams carry usage only when asked (``stream_options.include_usage``). Asking changes the
request, so closedloop asks only where that is known to be safe: ``"auto"`` asks the
endpoints that document the option (OpenAI, Azure OpenAI), ``"always"`` asks every
endpoint, ``"never"`` asks none. Whatever the mode, an endpoint that refuses the option
(HTTP 400/422 naming ``stream_options``, as older Azure API versions do) gets the caller's
own request once more and is never asked again. Raw-response calls are never asked: the
caller reads the bytes, where the extra usage chunk could not be hidden.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import openai

from closedloop.instrumentation._settings import StreamUsage

_KNOWN_HOSTS = frozenset({"api.openai.com"})
_KNOWN_HOST_SUFFIXES = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
)
_RAW_RESPONSE_HEADER = "x-stainless-raw-response"
_MAX_REMEMBERED = 1_024


# Clients whose ``base_url`` property returns their ``_configured_base_url``, importing a
# module on every read to do it (about 3 µs a call). Others, such as the module-level
# client that ``openai.base_url`` overrides, are asked through the property.
_CONFIGURED_BASE_URL = frozenset(
    {openai.OpenAI, openai.AsyncOpenAI, openai.AzureOpenAI, openai.AsyncAzureOpenAI}
)


def base_url(client: Any) -> Any:
    """The client's ``base_url``, read directly where that is what the property returns."""
    if type(client) in _CONFIGURED_BASE_URL:
        url = getattr(client, "_configured_base_url", None)  # absent before openai 2.x
        if url is not None:
            return url
    return client.base_url


def endpoint_key(client: Any) -> str:
    """The base URL plus the API version, which decides what a server accepts."""
    version = (getattr(client, "default_query", None) or {}).get("api-version")
    base = str(base_url(client))
    return f"{base}?api-version={version}" if version else base


def _asks_for_raw_response(kwargs: Mapping[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    if not isinstance(headers, Mapping):
        return False
    return any(str(name).lower() == _RAW_RESPONSE_HEADER for name in headers)


def refuses_stream_options(error: BaseException) -> bool:
    """True for the provider's "unknown argument" answer to ``stream_options``."""
    if not isinstance(error, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return False
    return "stream_options" in f"{error.message} {error.body}"


class StreamUsagePolicy:
    """Decides per request; remembers (boundedly) the endpoints that refused."""

    def __init__(self, mode: StreamUsage) -> None:
        self.mode = mode
        self._refused: set[str] = set()
        self._lock = threading.Lock()

    def may_ask(self, host: str | None, key: str, kwargs: Mapping[str, Any]) -> bool:
        if self.mode == "never" or _asks_for_raw_response(kwargs):
            return False
        with self._lock:
            if key in self._refused:
                return False
        if self.mode == "always":
            return True
        return host is not None and (host in _KNOWN_HOSTS or host.endswith(_KNOWN_HOST_SUFFIXES))

    def refused(self, key: str) -> None:
        with self._lock:
            if len(self._refused) < _MAX_REMEMBERED:
                self._refused.add(key)
