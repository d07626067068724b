"""Raw responses: the span follows what the caller does with the HTTP response.

``with_raw_response`` returns a response whose body is already read: it is parsed once
(the SDK caches the result) and traced. ``with_streaming_response`` returns one whose body
is not read yet: a proxy traces whichever way the caller reads it (``parse()``, ``read()``,
``text()``, ``json()``, or the ``iter_*`` methods, whose bytes are decoded alongside) and
ends the span when the body is done, the response is closed, or it is garbage collected.
The caller gets every byte and object exactly as the SDK produced them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar

import openai
import wrapt
from openai._models import construct_type
from openai._streaming import SSEDecoder

from closedloop import _health as health
from closedloop._runtime import current
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation.openai._call import LLMCall
from closedloop.instrumentation.openai._streams import StreamTracer, traced_stream

# A complete (non-streamed) body read through ``iter_*`` is decoded at its end, a stream's
# lines as they end; a body or line larger than this is not kept for the span (the caller
# still gets every byte).
_MAX_BODY_BYTES = 8 * 1024 * 1024


def finish_legacy(call: LLMCall, raw: Any, is_async: bool) -> Any:
    """``with_raw_response``: parse once (the SDK caches it) and trace the parsed value.

    A raw stream's parsed object is replaced in the SDK's parse cache by our proxy, so the
    caller's ``raw.parse()`` returns the traced stream.
    """
    try:
        parsed = raw.parse()
    except Exception as error:
        call.mark_done()
        call.record_error(error)
        call.end()
        return raw
    call.set({attr.PROVIDER_REQUEST_ID: raw.request_id})
    call.register(raw)
    if isinstance(parsed, (openai.Stream, openai.AsyncStream)):
        state = call.stream_state(False)
        raw._parsed_by_type[raw._cast_to] = traced_stream(parsed, call, state, is_async)
        return raw
    call.mark_done()
    call.record_response(parsed)
    call.end()
    return raw


class _BodyTracer:
    """Turns the body the caller reads into span attributes; every step is guarded."""

    def __init__(self, call: LLMCall, streaming: bool) -> None:
        self.call = call
        self.state = call.stream_state(False) if streaming else None
        self.body = bytearray()
        self.pending = bytearray()
        self.decoder = SSEDecoder()
        self.parsed_proxy: Any = None
        self.parsed_stream: StreamTracer | None = None

    def feed(self, data: bytes) -> None:
        try:
            if self.state is None:
                if len(self.body) + len(data) <= _MAX_BODY_BYTES:
                    self.body += data
                return
            start = 0
            while (end := data.find(b"\n", start)) >= 0:  # only new bytes are searched
                self.pending += data[start:end]
                line, self.pending = bytes(self.pending), bytearray()
                self._line(line.rstrip(b"\r").decode("utf-8", "replace"))
                start = end + 1
            if len(self.pending) + len(data) - start <= _MAX_BODY_BYTES:
                self.pending += data[start:]
        except Exception as error:
            health.record_failure("raw_response.read", error)

    def _line(self, line: str) -> None:
        assert self.state is not None
        event = self.decoder.decode(line)
        if event is None or event.data.startswith("[DONE]"):
            return
        data = json.loads(event.data)
        if isinstance(data, dict) and data.get("error"):
            error = data["error"]
            message = error.get("message") if isinstance(error, dict) else None
            self.call.mark_failed("APIError", message if isinstance(message, str) else None)
            return
        started = self.state.content_started
        self.state.observe(construct_type(type_=self.call.operation.stream_item_type, value=data))
        if not started and self.state.content_started:
            self.call.first_chunk()

    def parsed(self, value: Any, is_async: bool) -> Any:
        """What ``parse()`` returns to the caller: a traced stream, or the value itself."""
        if isinstance(value, (openai.Stream, openai.AsyncStream)):
            if self.parsed_proxy is None:
                state = self.call.stream_state(False)
                self.parsed_proxy = traced_stream(value, self.call, state, is_async)
                self.parsed_stream = self.parsed_proxy.stream_tracer
            return self.parsed_proxy
        if not self.call.ended:
            self.call.mark_done()
            if isinstance(value, self.call.operation.response_type):
                self.call.record_response(value)
            self.call.end()
        return value

    def finish(self, error: BaseException | None = None) -> None:
        """The body is done (or abandoned): record what it said and end the span."""
        call = self.call
        if call.ended:
            return
        if self.parsed_stream is not None:  # the response closed under a parsed stream
            self.parsed_stream.finish(error)
            return
        call.mark_done()
        try:
            if self.state is not None:
                self.feed(b"\n\n")
                self.state.finish(call)
            elif self.body:
                response = construct_type(
                    type_=call.operation.response_type, value=json.loads(bytes(self.body))
                )
                call.record_response(response)
        except Exception as failure:
            health.record_failure("raw_response.finish", failure)
        if error is not None:
            call.record_error(error)
        call.end()


def _streaming(kwargs: dict[str, Any]) -> bool:
    return kwargs.get("stream") is True


def _as_bytes(chunk: bytes) -> bytes:
    return chunk


def _text_bytes(text: str) -> bytes:
    return text.encode()


def _line_bytes(line: str) -> bytes:
    return line.encode() + b"\n"  # iter_lines strips the line ends SSE needs


class _TracedBody(wrapt.ObjectProxy[Any]):
    """What the sync and async response proxies share: the tracer and the ``iter_*`` taps
    (each subclass's ``_tap`` reads its own kind of iterator)."""

    _tap: ClassVar[Callable[[Any, Any, Callable[[Any], bytes]], Any]]

    def __init__(self, response: Any, call: LLMCall, streaming: bool) -> None:
        super().__init__(response)
        self._self_tracer = _BodyTracer(call, streaming)

    def _read_whole(self, body: bytes) -> None:
        self._self_tracer.feed(body)
        self._self_tracer.finish()

    def iter_bytes(self, chunk_size: int | None = None) -> Any:
        return self._tap(self.__wrapped__.iter_bytes(chunk_size), _as_bytes)

    def iter_text(self, chunk_size: int | None = None) -> Any:
        return self._tap(self.__wrapped__.iter_text(chunk_size), _text_bytes)

    def iter_lines(self) -> Any:
        return self._tap(self.__wrapped__.iter_lines(), _line_bytes)

    def __del__(self) -> None:
        tracer = getattr(self, "_self_tracer", None)
        if tracer is not None and not tracer.call.ended:
            current().deferred.defer(lambda: _end_collected(tracer))


class TracedAPIResponse(_TracedBody):
    """Proxy for ``openai.APIResponse`` from ``with_streaming_response``."""

    def parse(self, *, to: type[Any] | None = None) -> Any:
        try:
            value = self.__wrapped__.parse(to=to)
        except BaseException as error:
            self._self_tracer.finish(error)
            raise
        return self._self_tracer.parsed(value, is_async=False)

    def read(self) -> bytes:
        body: bytes = self.__wrapped__.read()
        self._read_whole(body)
        return body

    def text(self) -> str:
        text: str = self.__wrapped__.text()
        self._read_whole(self.__wrapped__.read())
        return text

    def json(self) -> object:
        value = self.__wrapped__.json()
        self._read_whole(self.__wrapped__.read())
        return value

    def _tap(self, pieces: Iterator[Any], to_bytes: Callable[[Any], bytes]) -> Iterator[Any]:
        tracer = self._self_tracer
        try:
            for piece in pieces:
                tracer.feed(to_bytes(piece))
                yield piece
        except GeneratorExit:  # the caller stopped reading: not a failure of the call
            tracer.finish()
            raise
        except BaseException as error:
            tracer.finish(error)
            raise
        tracer.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tracer.finish()


class AsyncTracedAPIResponse(_TracedBody):
    """Proxy for ``openai.AsyncAPIResponse`` from ``with_streaming_response``."""

    async def parse(self, *, to: type[Any] | None = None) -> Any:
        try:
            value = await self.__wrapped__.parse(to=to)
        except BaseException as error:
            self._self_tracer.finish(error)
            raise
        return self._self_tracer.parsed(value, is_async=True)

    async def read(self) -> bytes:
        body: bytes = await self.__wrapped__.read()
        self._read_whole(body)
        return body

    async def text(self) -> str:
        text: str = await self.__wrapped__.text()
        self._read_whole(await self.__wrapped__.read())
        return text

    async def json(self) -> object:
        value = await self.__wrapped__.json()
        self._read_whole(await self.__wrapped__.read())
        return value

    async def _tap(
        self, pieces: AsyncIterator[Any], to_bytes: Callable[[Any], bytes]
    ) -> AsyncIterator[Any]:
        tracer = self._self_tracer
        try:
            async for piece in pieces:
                tracer.feed(to_bytes(piece))
                yield piece
        except GeneratorExit:  # the caller stopped reading: not a failure of the call
            tracer.finish()
            raise
        except BaseException as error:
            tracer.finish(error)
            raise
        tracer.finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_tracer.finish()


def _end_collected(tracer: _BodyTracer) -> None:
    """A response collected before its body was done (runs off the collecting thread)."""
    if not tracer.call.ended:
        health.count("raw_response.ended_by_gc")
        tracer.finish()


def traced_api_response(
    response: Any, call: LLMCall, kwargs: dict[str, Any]
) -> TracedAPIResponse | AsyncTracedAPIResponse:
    """The proxy the caller gets instead of a ``with_streaming_response`` response."""
    call.set({attr.PROVIDER_REQUEST_ID: response.headers.get("x-request-id")})
    proxy: TracedAPIResponse | AsyncTracedAPIResponse
    if isinstance(response, openai.AsyncAPIResponse):
        proxy = AsyncTracedAPIResponse(response, call, _streaming(kwargs))
    else:
        proxy = TracedAPIResponse(response, call, _streaming(kwargs))
    call.register(proxy)
    return proxy
