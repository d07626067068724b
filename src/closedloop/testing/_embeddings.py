"""``POST /v1/embeddings``: deterministic unit vectors derived from a hash of each input."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from collections.abc import Mapping
from typing import Any, TypeAlias

from closedloop.testing import _rules
from closedloop.testing._replies import IdFactory, Reply, error_reply, json_reply

DEFAULT_DIMENSIONS = 8

EmbeddingInput: TypeAlias = str | list[int]


def reply(request: Mapping[str, Any], ids: IdFactory) -> Reply:
    inputs = _inputs(request.get("input"))
    if not inputs:
        return error_reply(
            400, "'input' must be a non-empty string or array.", "invalid_request_error"
        )
    dimensions = int(request.get("dimensions") or DEFAULT_DIMENSIONS)
    as_base64 = request.get("encoding_format") == "base64"
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encode(vector(_hash_key(value), dimensions), as_base64),
        }
        for index, value in enumerate(inputs)
    ]
    tokens = sum(_token_count(value) for value in inputs)
    return json_reply(
        {
            "object": "list",
            "data": data,
            "model": request.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def vector(text: str, dimensions: int) -> list[float]:
    """A unit-length vector seeded by SHAKE-256 of ``text``.

    Values are rounded to float32 so the float and base64 encodings decode to identical lists.
    """
    words = struct.unpack(
        f"<{dimensions}I", hashlib.shake_256(text.encode()).digest(4 * dimensions)
    )
    raw = [word / 0xFFFFFFFF * 2 - 1 for word in words]
    norm = math.sqrt(sum(value * value for value in raw)) or 1.0
    packed = struct.pack(f"<{dimensions}f", *(value / norm for value in raw))
    return list(struct.unpack(f"<{dimensions}f", packed))


def _inputs(raw: object) -> list[EmbeddingInput]:
    """Normalise the four accepted shapes: string, strings, token array, token arrays."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, int) for item in raw):
        return [raw]
    if isinstance(raw, list):
        return raw
    return []


def _hash_key(value: EmbeddingInput) -> str:
    return value if isinstance(value, str) else " ".join(map(str, value))


def _token_count(value: EmbeddingInput) -> int:
    return _rules.count_words(value) if isinstance(value, str) else len(value)


def _encode(values: list[float], as_base64: bool) -> list[float] | str:
    """``base64`` is little-endian float32, which is what the SDK decodes by default."""
    if not as_base64:
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
