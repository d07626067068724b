"""An OTLP/HTTP trace request body -> ``ExportTraceServiceRequest``, or the 4xx that says why not.

The receiver must take what any standard exporter sends (the Python SDK's protobuf, the
collector's ``otlphttp``, a browser's JSON) and refuse everything else with a reason the
sender can act on, without ever spending more memory than the body limit allows: a gzip
body is inflated in bounded steps, so a bomb costs at most ``max_bytes``. Decoding uses
the official ``opentelemetry-proto`` messages and ``google.protobuf.json_format``; the one
OTLP deviation from protobuf's JSON mapping (trace and span ids as hex, not base64) is
fixed up on the parsed JSON before ``json_format`` sees it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import zlib
from typing import Any, Final, NoReturn

from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from closedloop._errors import ClosedloopError

DEFAULT_MAX_BODY_BYTES: Final = 20 * 1024 * 1024
"""The collector's ``confighttp`` default ``max_request_body_size`` (20 MiB), applied to the
body as sent and again to it decompressed."""

_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_INFLATE_STEP: Final = 64 * 1024
_GZIP_CODINGS: Final = frozenset({"gzip", "x-gzip"})  # RFC 9110 8.4.1.3: x-gzip is gzip
_IDENTITY_CODINGS: Final = frozenset({"", "identity"})


class OtlpRequestError(ClosedloopError, ValueError):
    """A request the receiver refuses as a whole: ``status`` is the HTTP status to answer
    (400 malformed, 413 too large, 415 unsupported type or encoding), ``reason`` the text
    for the response's ``Status.message``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __reduce__(self) -> tuple[type[OtlpRequestError], tuple[int, str]]:
        """Pickled with both arguments: mapping workers raise it in serve's process."""
        return (OtlpRequestError, (self.status, self.reason))


class OtlpFormat(enum.Enum):
    """The request's encoding; its value is the Content-Type the response must carry,
    since OTLP/HTTP answers in the encoding it was sent."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


def request_format(content_type: str | None) -> OtlpFormat:
    """The encoding a ``Content-Type`` header names (parameters such as ``charset`` are
    ignored); 415 for any other media type, so the endpoint can refuse before reading."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    for fmt in OtlpFormat:
        if media_type == fmt.value:
            return fmt
    named = repr(media_type) if media_type else "no Content-Type"
    raise OtlpRequestError(
        415, f"unsupported media type {named}: send application/x-protobuf or application/json"
    )


def decode_request(
    body: bytes,
    fmt: OtlpFormat,
    content_encoding: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ExportTraceServiceRequest:
    """The request a body holds, after undoing its ``Content-Encoding``.

    Raises ``OtlpRequestError``: 415 for an encoding other than gzip or identity, 413 when
    the body or its decompressed form is over ``max_bytes``, 400 for bad gzip or a payload
    that is not a valid ``ExportTraceServiceRequest``.
    """
    gzipped = _is_gzip(content_encoding)
    if len(body) > max_bytes:
        raise OtlpRequestError(413, f"request body is over the {max_bytes}-byte limit")
    payload = _gunzip(body, max_bytes) if gzipped else body
    if fmt is OtlpFormat.JSON:
        return _parse_json(payload)
    return _parse_protobuf(payload)


def _is_gzip(content_encoding: str | None) -> bool:
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    applied = [c for c in codings if c not in _IDENTITY_CODINGS]
    if not applied:
        return False
    if len(applied) == 1 and applied[0] in _GZIP_CODINGS:
        return True
    raise OtlpRequestError(
        415, f"unsupported Content-Encoding {content_encoding!r}: send gzip or identity"
    )


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    """Inflate every gzip member (Go's reader, and so the collector, reads concatenated
    members too) in steps of at most ``_INFLATE_STEP`` bytes, stopping one byte past
    ``max_bytes``: a bomb costs the limit, not what it would expand to."""
    out = bytearray()
    inflater = zlib.decompressobj(_GZIP_WBITS)
    pending = body
    while True:
        step = min(_INFLATE_STEP, max_bytes + 1 - len(out))  # >= 1: 0 would mean unbounded
        try:
            chunk = inflater.decompress(pending, step)
        except zlib.error as error:
            raise OtlpRequestError(400, f"bad gzip body: {error}") from None
        out += chunk
        if len(out) > max_bytes:
            raise OtlpRequestError(413, f"decompressed body is over the {max_bytes}-byte limit")
        if inflater.eof:
            if not inflater.unused_data:
                return bytes(out)
            pending = inflater.unused_data
            inflater = zlib.decompressobj(_GZIP_WBITS)
        else:
            pending = inflater.unconsumed_tail
            if not pending and not chunk:
                raise OtlpRequestError(400, "bad gzip body: truncated (no end of stream)")


def _parse_protobuf(payload: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(payload)
    except DecodeError as error:  # upb says what: "Wire format was corrupt", "bad UTF-8"
        raise OtlpRequestError(400, f"malformed protobuf: {error}") from None
    return request


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _parse_json(payload: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(payload.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as error:
        raise OtlpRequestError(400, f"JSON body is not UTF-8: {error}") from None
    except RecursionError:
        raise OtlpRequestError(400, "malformed JSON: nested too deeply") from None
    except ValueError as error:  # json.JSONDecodeError, or NaN/Infinity
        raise OtlpRequestError(400, f"malformed JSON: {error}") from None
    if not isinstance(document, dict):
        raise OtlpRequestError(
            400, f"malformed OTLP JSON: the body is a JSON {type(document).__name__}, not an object"
        )
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise OtlpRequestError(400, f"malformed OTLP JSON: {error}") from None
    return request


# OTLP JSON spells ids as hex where protobuf's JSON mapping has base64. Keys in both
# spellings, as json_format accepts both (and so does the collector's decoder).
_LINK_ID_KEYS: Final = ("traceId", "trace_id", "spanId", "span_id")
_SPAN_ID_KEYS: Final = (*_LINK_ID_KEYS, "parentSpanId", "parent_span_id")


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite each span's and link's hex ids as base64, in place. Anything not shaped as
    OTLP is left alone for ``json_format`` to reject with its own message."""
    for i, resource_spans in _items(document, "resourceSpans", "resource_spans"):
        for j, scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for k, span in _items(scope_spans, "spans"):
                where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                _convert_ids(span, _SPAN_ID_KEYS, where)
                for n, link in _items(span, "links"):
                    _convert_ids(link, _LINK_ID_KEYS, f"{where}.links[{n}]")


def _items(parent: object, *keys: str) -> list[tuple[int, dict[str, Any]]]:
    if not isinstance(parent, dict):
        return []
    for key in keys:
        children = parent.get(key)
        if isinstance(children, list):
            return [(i, child) for i, child in enumerate(children) if isinstance(child, dict)]
    return []


def _convert_ids(message: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        value = message.get(key)
        if isinstance(value, str):
            try:
                raw = binascii.unhexlify(value)
            except (binascii.Error, ValueError):
                raise OtlpRequestError(
                    400, f"malformed OTLP JSON: {where}.{key} {value[:40]!r} is not a hex string"
                ) from None
            message[key] = base64.b64encode(raw).decode("ascii")


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "OtlpFormat",
    "OtlpRequestError",
    "decode_request",
    "request_format",
]
