"""``closedloop serve``: the embedded backend's OTLP/HTTP receiver.

request = decode_request(body, request_format(content_type), content_encoding)
spans, rejected, error_message = readable_spans(request)
"""

from closedloop.server._otlp import (
    DEFAULT_MAX_BODY_BYTES,
    OtlpFormat,
    OtlpRequestError,
    decode_request,
    request_format,
)
from closedloop.server._spans import EARLIEST_NS, LATEST_NS, Conversion, readable_spans

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "EARLIEST_NS",
    "LATEST_NS",
    "Conversion",
    "OtlpFormat",
    "OtlpRequestError",
    "decode_request",
    "readable_spans",
    "request_format",
]
