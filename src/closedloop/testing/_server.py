"""A local, deterministic OpenAI-compatible HTTP server for tests, examples and benchmarks.

It speaks real HTTP/1.1 with keep-alive (stdlib ``http.server`` only), so the ``openai``
client is exercised end to end through ``base_url``. Endpoints, all under ``/v1``:
``POST chat/completions``, ``POST responses``, ``POST embeddings``; anything else is a 404
JSON error and a body that is not a JSON object is a 400 JSON error. Every response has
``x-request-id: req_<n>`` and ``openai-processing-ms`` headers.

Model rules (the "tokenizer" is whitespace-separated words):

- Output text is ``"Echo: " + <text of the last user message>``; list content parts are
  joined with spaces. The response ``model`` gets ``-2024-07-18`` appended unless it already
  ends in a ``-YYYY-MM-DD`` date. ``created`` is fixed; ids count up per server
  (``chatcmpl-1``, ``resp_1``, ``msg_1``, ``fc_1``, ``call_1``).
- Prompt / input tokens: words of every message's text + 4 per message. For Responses,
  ``instructions`` and each input item (function outputs included) count as a message.
- Cached tokens: ``prompt_tokens // 2`` if the request has ``prompt_cache_key``, else 0.
- Reasoning tokens: 8 for models matching ``o<digit>`` (o1, o3, o4-mini...), else 0;
  they are included in completion / output tokens.
- Completion tokens: words of the output text (or of the tool-call arguments JSON) plus
  reasoning tokens; in chat these are summed over the ``n`` choices.
- Chat ``max_completion_tokens`` (or ``max_tokens``) below the output word count truncates
  the text to that many words with ``finish_reason="length"``.
- Tools: with a function tool and ``tool_choice != "none"``, the model calls the first
  function tool with arguments ``{"query": <last user text>}`` unless the last message is
  a tool result (chat role ``tool`` / Responses ``function_call_output``); then it answers.
- Streams send one delta per word (pieces concatenate to the full text). ``first_chunk_delay``
  is slept before the first content-bearing event, ``chunk_delay`` before every later event.
- Embeddings: a unit vector of ``dimensions`` (default 8) floats derived from a hash of the
  input; ``encoding_format="base64"`` (the SDK's default) returns little-endian float32.

Error scenarios, selected by the request's ``model`` and mapped by openai 3.x to:

- ``"error-429"``: HTTP 429 ``rate_limit_exceeded`` with ``retry-after: 0`` (plus
  ``retry-after-ms: 1`` so default-retry clients back off briefly) -> ``openai.RateLimitError``.
- ``"error-500"``: HTTP 500 ``server_error`` -> ``openai.InternalServerError``.
- ``"error-malformed"``: HTTP 200 ``application/json`` with a truncated JSON body (or one
  truncated SSE event when streaming). The SDK does not wrap this: it raises the plain
  ``json.JSONDecodeError`` (a ``ValueError``), not an ``openai.OpenAIError``.
- ``"error-midstream"`` with ``stream=True``: two content events, then an in-band
  ``{"error": ...}`` event -> ``openai.APIError`` while iterating. Without streaming it
  behaves like a normal model.

Provider quirks (``refuse_arguments``, ``stream_quirks``): see ``closedloop.testing._quirks``.

Scripted answers: ``responder(request)`` (the decoded JSON body of a chat completions or
responses request) returns the text the model answers instead of the echo, or None to
echo. Every rule above (tokens, ``max_tokens``, streams, tools, errors) still applies; a
responder that raises gets the client an HTTP 500 naming the exception.

The SDK retries 429 and 5xx (``max_retries=2`` by default); every attempt is answered and
recorded the same way, so pass ``max_retries=0`` for single-request assertions.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from closedloop.testing._dispatch import Responder, dispatch
from closedloop.testing._quirks import Quirks
from closedloop.testing._replies import IdFactory, JSONReply, StreamReply

__all__ = ["OpenAICompatibleServer", "RecordedRequest"]

_POLL_INTERVAL = 0.05
_THREAD_JOIN_TIMEOUT = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received; ``json`` is the decoded body, or None if it was not JSON."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


class _State:
    """Everything handler threads share, guarded by one lock."""

    def __init__(
        self,
        first_chunk_delay: float,
        chunk_delay: float,
        quirks: Quirks,
        responder: Responder | None,
    ) -> None:
        self.quirks = quirks
        self.responder = responder
        self.first_chunk_delay = first_chunk_delay
        self.chunk_delay = chunk_delay
        self.ids = IdFactory()
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.connections_accepted = 0
        self.open_connections: set[socket.socket] = set()
        self.handler_threads: set[threading.Thread] = set()

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)


class _HTTPServer(ThreadingHTTPServer):
    """Tracks connections and handler threads so ``stop()`` can end them promptly."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], state: _State) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can take seconds.
        TCPServer.server_bind(self)
        host, self.server_port = self.server_address[:2]
        self.server_name = str(host)  # an AF_INET/AF_INET6 socket's host is always a str

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        # Without this, Nagle + delayed ACK adds ~40 ms to small keep-alive round trips.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.state.lock:
            self.state.connections_accepted += 1
            self.state.open_connections.add(connection)
        return connection, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        thread = threading.current_thread()
        with self.state.lock:
            self.state.handler_threads.add(thread)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.state.lock:
                self.state.handler_threads.discard(thread)

    def shutdown_request(self, request: Any) -> None:
        with self.state.lock:
            self.state.open_connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    """Decodes, records and dispatches each request, then writes the reply."""

    protocol_version = "HTTP/1.1"
    server_version = "closedloop-testing"
    sys_version = ""
    server: _HTTPServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # Other verbs get the same JSON 404 as the real API instead of http.server's HTML 501.
    do_DELETE = do_PATCH = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: per-request stderr lines would drown test and benchmark output."""

    def _handle(self) -> None:
        started = time.perf_counter()
        state = self.server.state
        path = urlsplit(self.path).path
        payload = _decode_json(self.rfile.read(int(self.headers.get("content-length") or 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        state.record(RecordedRequest(self.command, path, headers, payload))
        reply = dispatch(
            self.command, path, payload, state.ids, state.quirks, responder=state.responder
        )
        common = (
            ("x-request-id", state.ids.new("req_")),
            ("openai-processing-ms", str(round((time.perf_counter() - started) * 1000))),
            ("openai-version", "2020-10-01"),
        )
        try:
            if isinstance(reply, StreamReply):
                self._write_stream(reply, common)
            else:
                self._write_json(reply, common)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away mid-reply (e.g. closed a stream early): drop the connection.
            self.close_connection = True

    def _write_json(self, reply: JSONReply, common: tuple[tuple[str, str], ...]) -> None:
        self.send_response(reply.status)
        for name, value in (*common, *reply.headers):
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _write_stream(self, reply: StreamReply, common: tuple[tuple[str, str], ...]) -> None:
        self.send_response(200)
        for name, value in common:
            self.send_header(name, value)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        state = self.server.state
        delays = _stream_delays(reply, state.first_chunk_delay, state.chunk_delay)
        last = len(reply.events) - 1
        for index, (event, delay) in enumerate(zip(reply.events, delays, strict=True)):
            if delay > 0:
                time.sleep(delay)
            data = event.encode()
            chunk = b"%x\r\n%s\r\n" % (len(data), data)
            # Send the terminating chunk with the last event so clients see the end at once.
            self.wfile.write(chunk + b"0\r\n\r\n" if index == last else chunk)


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _stream_delays(reply: StreamReply, first_chunk_delay: float, chunk_delay: float) -> list[float]:
    """Seconds to sleep before each event: ``chunk_delay`` between events, plus TTFT once."""
    first_content = next((i for i, e in enumerate(reply.events) if e.carries_content), None)
    return [
        (first_chunk_delay if index == first_content else 0.0) + (chunk_delay if index else 0.0)
        for index in range(len(reply.events))
    ]


class OpenAICompatibleServer:
    """An in-process fake OpenAI API on a background daemon thread.

    Use as a context manager, or call ``start()`` / ``stop()`` yourself. ``port=0`` picks a
    free port; read it back from ``port`` or ``base_url`` after starting.
    ``refuse_arguments`` and ``stream_quirks`` imitate other providers (see ``_quirks``).
    ``responder`` scripts the model's answer per request (see the module docstring); it
    runs on the server's handler threads, so it must be thread-safe.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        first_chunk_delay: float = 0.0,
        chunk_delay: float = 0.0,
        refuse_arguments: Collection[str] = (),
        stream_quirks: Collection[str] = (),
        responder: Responder | None = None,
    ) -> None:
        self._address = (host, port)
        quirks = Quirks.of(refuse_arguments, stream_quirks)
        self._state = _State(first_chunk_delay, chunk_delay, quirks, responder)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OpenAICompatibleServer:
        """Bind and start serving; returns ``self`` so ``server = ....start()`` works."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._httpd = _HTTPServer(self._address, self._state)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"openai-compatible-server:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close idle keep-alive connections and join all threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()
        with self._state.lock:
            connections = list(self._state.open_connections)
            handlers = list(self._state.handler_threads)
        for connection in connections:
            # Wakes handlers blocked reading the next keep-alive request; they see EOF.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for handler in handlers:
            handler.join(_THREAD_JOIN_TIMEOUT)
        httpd.server_close()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> OpenAICompatibleServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to pass as ``OpenAI(base_url=...)``, including the ``/v1`` prefix."""
        host = self._address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far; lets tests assert that keep-alive reuses them."""
        with self._state.lock:
            return self._state.connections_accepted

    def clear(self) -> None:
        """Forget recorded requests (counters and ids keep increasing)."""
        with self._state.lock:
            self._state.requests.clear()
