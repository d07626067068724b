"""Embeddings: request parameters, usage and vector size (no content is recorded).

A ``CreateEmbeddingResponse`` has no id, so the object itself is registered with its span:
feedback can be given with it like with any other response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from openai.types import CreateEmbeddingResponse
from opentelemetry.util.types import AttributeValue

from closedloop._cost import TokenUsage
from closedloop.instrumentation import _attributes as attr
from closedloop.instrumentation.openai._call import ApiType, LLMCall, OperationName
from closedloop.instrumentation.openai._chat import given, materialized, number
from closedloop.instrumentation.openai._content import ContentScrubber


class Embeddings:
    """``embeddings.create``; inputs are often documents, so they are never captured."""

    operation_name: OperationName = "embeddings"
    api_type: ApiType | None = None
    has_output_tokens = False

    def prepare(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        return materialized(kwargs, "input")

    response_type = CreateEmbeddingResponse
    stream_item_type = None

    def with_stream_usage(self, kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
        return None

    def request_attributes(self, kwargs: Mapping[str, Any]) -> dict[str, AttributeValue]:
        encoding = given(kwargs, "encoding_format")
        values: dict[str, Any] = {
            attr.REQUEST_ENCODING_FORMATS: [encoding] if isinstance(encoding, str) else None,
            attr.EMBEDDINGS_DIMENSION_COUNT: number(given(kwargs, "dimensions")),
        }
        return {key: value for key, value in values.items() if value is not None}

    def input_content(self, kwargs: Mapping[str, Any], scrubber: ContentScrubber) -> dict[str, Any]:
        return {}

    def record_response(self, call: LLMCall, response: Any) -> None:
        call.register(response)
        call.set({attr.RESPONSE_MODEL: response.model})
        if response.data:
            vector = response.data[0].embedding
            if isinstance(vector, list):
                call.set({attr.EMBEDDINGS_DIMENSION_COUNT: len(vector)})
        usage = _usage(response)
        if usage is not None:
            call.record_usage(usage, None, response.model)

    def measure(self, call: LLMCall, response: Any) -> None:
        call.register(response)
        call.measured(response.model, _usage(response))

    def stream_state(self, hide_usage_chunk: bool, recording: bool) -> NoReturn:
        raise TypeError("embeddings are never streamed")


def _usage(response: Any) -> TokenUsage | None:
    usage = response.usage
    return TokenUsage(usage.prompt_tokens or 0, 0, 0) if usage is not None else None
