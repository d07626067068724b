"""Malformed OTLP bodies: whatever arrives, the receiver either refuses the request with an
``OtlpRequestError`` (400/413/415 and a reason) or yields spans the store and the sampler
take. Anything else raised, here or downstream, fails the test; so would a hang, since
every example must finish for the test to."""

from __future__ import annotations

import copy
import functools
import gzip
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.sampling import SpanView
from closedloop.server import OtlpFormat, OtlpRequestError, decode_request, readable_spans
from closedloop.store._rows import encode_rows, span_rows
from server.support import otlp_json, protobuf_request, sdk_spans

LIMIT = 64 * 1024
FUZZ = settings(max_examples=200, deadline=None)


@functools.cache
def valid_protobuf() -> bytes:
    return protobuf_request(sdk_spans()).SerializeToString()


@functools.cache
def valid_json() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(otlp_json(protobuf_request(sdk_spans())))
    return document


def paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every place in a JSON document a value sits."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


def replaced(
    document: dict[str, Any], path: tuple[str | int, ...], value: object
) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


OTLP_KEYS = sorted(
    {str(step) for path in paths(valid_json()) for step in path if isinstance(step, str)}
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        ["", "00" * 16, "ff" * 8, "NaN", "-1", str(2**64), "AAAA", "SPAN_KIND_SERVER"]
    )
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(OTLP_KEYS) | st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def accepted_or_refused(body: bytes, fmt: OtlpFormat, encoding: str | None = None) -> None:
    try:
        request = decode_request(body, fmt, encoding, max_bytes=LIMIT)
    except OtlpRequestError as error:
        assert error.status in (400, 413, 415)
        assert error.reason
        return
    conversion = readable_spans(request)
    assert (conversion.rejected == 0) == (conversion.error_message == "")
    encode_rows(span_rows(conversion.spans))  # what the store's exporter does with them
    for span in conversion.spans:
        SpanView.of(span)  # what the tail sampler does with them


@FUZZ
@given(st.binary(max_size=4096), st.sampled_from(list(OtlpFormat)), st.sampled_from([None, "gzip"]))
def test_arbitrary_bytes(body: bytes, fmt: OtlpFormat, encoding: str | None) -> None:
    accepted_or_refused(body, fmt, encoding)


@FUZZ
@given(st.data())
def test_bit_flipped_and_truncated_protobuf(data: st.DataObject) -> None:
    body = bytearray(valid_protobuf())
    for bit in data.draw(st.lists(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=8)):
        body[bit // 8] ^= 1 << (bit % 8)
    cut = data.draw(st.none() | st.integers(0, len(body)))
    accepted_or_refused(bytes(body[:cut]), OtlpFormat.PROTOBUF)


@FUZZ
@given(st.data())
def test_bit_flipped_gzip(data: st.DataObject) -> None:
    body = bytearray(gzip.compress(valid_protobuf()))
    for bit in data.draw(st.lists(st.integers(0, len(body) * 8 - 1), min_size=1, max_size=4)):
        body[bit // 8] ^= 1 << (bit % 8)
    accepted_or_refused(bytes(body), OtlpFormat.PROTOBUF, "gzip")


@FUZZ
@given(json_values)
def test_random_json(document: object) -> None:
    accepted_or_refused(json.dumps(document).encode(), OtlpFormat.JSON)


@FUZZ
@given(st.data())
def test_otlp_json_with_values_of_the_wrong_type(data: st.DataObject) -> None:
    document = valid_json()
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths(document)[1:]))  # [0]: the whole body
        document = replaced(document, path, data.draw(json_values))
    accepted_or_refused(json.dumps(document).encode(), OtlpFormat.JSON)
