"""``closedloop serve``: the embedded backend — an OTLP/HTTP receiver, the tail sampler and
the two-tier store in one process.

closedloop.server.serve(ServeConfig(port=4318))  # what `closedloop serve` runs
app = create_app(Pipeline(config), config)        # or the ASGI app on a server of your own

request = decode_request(body, request_format(content_type), content_encoding)
spans, rejected, error_message = readable_spans(request)
"""

from closedloop.server._app import create_app
from closedloop.server._config import ServeConfig, ServeConfigError
from closedloop.server._otlp import (
    DEFAULT_MAX_BODY_BYTES,
    OtlpFormat,
    OtlpRequestError,
    decode_request,
    request_format,
)
from closedloop.server._pipeline import Acceptance, Pipeline, PipelineStats
from closedloop.server._run import ServeError, serve
from closedloop.server._spans import EARLIEST_NS, LATEST_NS, Conversion, readable_spans

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "EARLIEST_NS",
    "LATEST_NS",
    "Acceptance",
    "Conversion",
    "OtlpFormat",
    "OtlpRequestError",
    "Pipeline",
    "PipelineStats",
    "ServeConfig",
    "ServeConfigError",
    "ServeError",
    "create_app",
    "decode_request",
    "readable_spans",
    "request_format",
    "serve",
]
