"""closedloop's span -> row mapping stringifies attributes exactly as the collector does.

A tiny Go program (tests/go/asstring) runs pdata's own ``Value.AsString`` — pdata at the
version the pinned contrib ClickHouse exporter uses — on the same typed values.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from closedloop.store.rows import as_string

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


def test_as_string_matches_pdata(tmp_path):
    if shutil.which("go") is None:
        if os.environ.get("CLOSEDLOOP_REQUIRE_GO") == "1":
            pytest.fail("Go is required (CLOSEDLOOP_REQUIRE_GO=1) but `go` is not on PATH")
        pytest.skip("Go is not installed: cannot run pdata's AsString")
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
