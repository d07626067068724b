"""closedloop._pdata writes values exactly as the collector's Go code does.

``AsString``: a tiny Go program (tests/go/asstring) runs pdata's own ``Value.AsString`` —
pdata at the version the pinned contrib ClickHouse exporter uses — on the same typed
values. Enum numbers: the OTLP protobuf definitions, as the opentelemetry-proto package
generates them.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.trace import SpanKind, StatusCode

from _support.tools import require_go
from closedloop._pdata import (
    SPAN_KIND_NAMES,
    SPAN_KIND_NUMBERS,
    STATUS_CODE_NAMES,
    STATUS_CODE_NUMBERS,
    as_string,
    bool_value,
    format_float_fixed,
    int_value,
    ottl_string,
    str_value,
)

SOURCE = Path(__file__).with_name("go") / "asstring"


def typed(value: Any) -> dict[str, Any]:
    """The value with its OTLP type spelled out (floats by their exact bits)."""
    if isinstance(value, bool):
        return {"t": "b", "v": value}
    if isinstance(value, int):
        return {"t": "i", "v": value}
    if isinstance(value, float):
        return {"t": "d", "v": str(struct.unpack("<Q", struct.pack("<d", value))[0])}
    if isinstance(value, str):
        return {"t": "s", "v": value}
    if isinstance(value, bytes):
        return {"t": "bytes", "v": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {"t": "map", "v": {key: typed(item) for key, item in value.items()}}
    return {"t": "slice", "v": [typed(item) for item in value]}


def sample_values() -> list[Any]:
    rng = random.Random(4)
    fixed: list[Any] = [
        0.0, -0.0, 0.2, 1.0, 1e-7, 1.5e-7, 1e-6, 1e21, 1e20, 123456789.125, 5e-324,
        float("nan"), float("inf"), float("-inf"), 2**63 - 1, -(2**63), True, False, "",
        "plain", "<tag> & \u2028 \"quoted\" \\ \n\t\x01 emoji 🎉", b"\x00\xffbytes", b"",
        ["a", "<b>"], [1, 2.5, True], [1.0, float("nan")],
        {"b": 1, "a": ["x", {"c": 0.5}]}, [], {},
    ]  # fmt: skip
    floats = [rng.uniform(-1e30, 1e30) for _ in range(300)]
    floats += [rng.random() * 10 ** rng.randint(-30, 30) for _ in range(300)]
    floats += [
        struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(300)
    ]
    return fixed + floats + [[rng.random(), rng.randint(-5, 5), "s"] for _ in range(50)]


def test_as_string_matches_pdata(tmp_path: Path) -> None:
    require_go("run pdata's AsString")
    workdir = tmp_path / "asstring"
    shutil.copytree(SOURCE, workdir)
    subprocess.run(["go", "mod", "tidy"], cwd=workdir, check=True, capture_output=True, timeout=600)
    values = sample_values()
    result = subprocess.run(
        ["go", "run", "."],
        cwd=workdir,
        input=json.dumps([typed(v) for v in values]),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    expected = json.loads(result.stdout)
    mismatches = [
        (value, ours, theirs)
        for value, ours, theirs in zip(
            values, [as_string(v) for v in values], expected, strict=True
        )
        if ours != theirs
    ]
    assert len(expected) == len(values)
    assert mismatches == []


def test_enum_numbers_are_otlps() -> None:
    for code in StatusCode:
        assert STATUS_CODE_NUMBERS[code] == Status.StatusCode.Value(f"STATUS_CODE_{code.name}")
    for kind in SpanKind:
        assert SPAN_KIND_NUMBERS[kind] == Span.SpanKind.Value(f"SPAN_KIND_{kind.name}")


def test_enum_names_are_pdatas_spellings_for_every_sdk_value() -> None:
    assert [STATUS_CODE_NAMES[code] for code in StatusCode] == ["Unset", "Ok", "Error"]
    assert [SPAN_KIND_NAMES[kind] for kind in SpanKind] == [
        "Internal",
        "Server",
        "Client",
        "Producer",
        "Consumer",
    ]


@pytest.mark.parametrize(
    ("value", "as_int", "as_str", "as_bool"),
    [(5, 5, "", False), (5.0, 0, "", False), ("5", 0, "5", False), (True, 0, "", True)],
)
def test_typed_accessors_coerce_as_pdata_does(
    value: object, as_int: int, as_str: str, as_bool: bool
) -> None:
    assert (int_value(value), str_value(value), bool_value(value)) == (as_int, as_str, as_bool)


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.1, "0.1"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"), (-2.5, "-2.5"),
     (100.0, "100"), (5e-324, "0." + "0" * 323 + "5")],
)  # fmt: skip
def test_format_float_fixed_is_go_f_minus_one(value: float, text: str) -> None:
    assert format_float_fixed(value) == text


def test_ottl_string_converts_scalars_only() -> None:
    assert [ottl_string(v) for v in ("s", True, 3, 0.5)] == ["s", "true", "3", "0.5"]
    assert ottl_string(None) is None
    assert ottl_string((1, 2)) is None
