"""``closedloop serve`` under thousands of malformed requests: each is refused with a 4xx and
a reason, serve stays up with flat memory, and every span it acknowledged is stored.

serve is started as a user starts it (``python -m closedloop.cli serve --port=0`` on a fresh
chDB store in a temporary directory, with API keys for ``/v1/feedback``). Then ``--count``
malformed payloads, drawn by weighted category in a ``--seed``-ed order, go to
``/v1/traces`` (bit-flipped and truncated protobuf, corrupt and truncated gzip, a gzip bomb,
broken JSON, OTLP JSON with values of the wrong type, ids that are not hex, timestamps no
uint64 holds, wrong media types and encodings, bodies over the limit) and to
``/v1/feedback`` (bodies that are no JSON object, each field with a wrong value, missing
and unknown fields, repeated keys, wrong media type, too large, bad credentials). A
payload only counts as malformed if the official decoders refuse it too (``gzip``,
``ExportTraceServiceRequest.ParseFromString``, ``json`` and ``json_format``): a mutation
they still read is drawn again.

In between go requests that are valid but odd, which serve must take: every
``--valid-every`` malformed ones a batch of real SDK spans (protobuf, JSON or gzip, in
turn) and a feedback signal on it, and every ``--odd-every`` one request of an odd kind
(spans with absurd timestamps next to good ones, which partial success must name; 10 MiB
attribute values, in the first half only; times between 2106 and 2200; one request spanning
101 days). serve's VmRSS and VmHWM are sampled throughout. At the end serve is stopped with
SIGTERM and the recent tier read: every acknowledged span must be there, and no span
partial success rejected. The exit code is 1 if any check failed: a 2xx or 5xx for a
malformed payload, a refusal without a reason, serve dying, a span acknowledged and not
stored, or the lowest VmRSS rising more than ``--max-rss-growth-mib`` over the second half
(the first warms the store, caches and heap; the lowest, because each large request lifts
RSS for a moment, while a leak lifts the floor).

Run: ``.venv/bin/python benchmarks/serve_fuzz.py [--count 10000 --seed 1]``
(``--skip CATEGORY`` leaves a category out, e.g. a known defect while it is being fixed).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gzip
import http.client
import itertools
import json
import random
import signal
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from rich.console import Console
from rich.table import Table

from closedloop.server import DEFAULT_MAX_BODY_BYTES, EARLIEST_NS, LATEST_NS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# the tests' process helpers, SDK traffic and OTLP encodings, not copies of them
from server.serving import JSON, PROTOBUF, Reply, Serve, start, traffic  # noqa: E402
from server.support import otlp_json, protobuf_request, spans_of  # noqa: E402

TRACES = "/v1/traces"
FEEDBACK = "/v1/feedback"
FEEDBACK_MAX_BYTES = 64 * 1024
DAY_NS = 86_400 * 10**9
KEYS = tuple(f"serve-fuzz-key-{n:02d}-0123456789abcdef" for n in range(32))
"""Each key has its own rate bucket (50/s, burst 200): between them they take every body."""
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
FEEDBACK_BODY = {"trace_id": TRACE, "span_id": SPAN, "name": "thumbs", "value": 1, "label": "up"}
NOW_NS = time.time_ns()
# Values each field must refuse with a 400 naming it (docs/server.md, "Feedback endpoint").
BAD_FIELD_VALUES: dict[str, list[Any]] = {
    "trace_id": [12, 1.5, True, "", "0af7651916cd43dd", "0" * 32, "g" * 32, [TRACE], {}],
    "span_id": [0, True, "b7ad6b71", "0" * 16, "zz" * 8, [SPAN], {"id": SPAN}],
    "name": ["", 3, True, ["thumbs"], {"name": "thumbs"}],
    "value": ["1", [1], {"v": 1}, float("nan"), float("inf"), -float("inf"), 1e308],
    "label": [3, "", ["up"], {"label": "up"}],
    "comment": ["", 3, ["text"], {"text": "x"}, "\ud800"],
    "timestamp": [
        "yesterday",
        "2024-07-01T12:00:00",
        "2024-13-01T12:00:00Z",
        "1999-12-31T23:59:59Z",
        "2024-07-01T12:00:00.1234567891Z",
        1.7e18,
        True,
        [NOW_NS],
        {"ns": NOW_NS},
        NOW_NS // 10**9,
        NOW_NS // 10**6,
        NOW_NS // 10**3,
        NOW_NS + 3 * DAY_NS,
        -1,
        2**64,
    ],
    "kind": ["judgement", None, "", 3, ["explicit"]],
    "source": [["web"], 3, {"from": "web"}],
}
NOT_UINT64: list[Any] = [-1, "-1", -(2**63), 2**64, str(2**64), 1.5, "1.5", "abc", "", True, []]
"""JSON values no ``*TimeUnixNano`` (uint64) can hold: the proto3 JSON mapping refuses each."""
ABSURD_NS = (0, 1, 1_700_000_000, 1_700_000_000_000, EARLIEST_NS - 1, LATEST_NS, 2**63, 2**64 - 1)
"""Times the receiver rejects span by span: before 2000 (zero, a time in s or ms), at or after
its ``LATEST_NS``, up to uint64's end."""
AFTER_2106_NS = (2**32 * 10**9, 7_258_032_000 * 10**9)
"""From the end of ClickHouse's DateTime (2106-02-07T06:28:16Z) to 2199-12-31."""
HUGE_BYTES = 10 * 2**20
HUGE = "10 MiB attribute values"
"""Sent in the first half only: the heap they leave is the allocator's, and the second half
then shows whether serve's memory keeps growing (see ``Memory``)."""


# --- the valid material payloads are made from ---------------------------------------------


def key(span: Span) -> tuple[str, str]:
    return span.trace_id.hex(), span.span_id.hex()


class Material:
    """Real SDK traces (calls with tools, an error, feedback), renumbered for each use so
    every span sent has ids of its own."""

    def __init__(self, seed: int) -> None:
        self._request = protobuf_request([s for t in traffic(seed, plain_traces=4) for s in t])
        self._uses = itertools.count(1)
        self.protobuf = self._request.SerializeToString()
        self.gzip = gzip.compress(self.protobuf)
        self.json = otlp_json(self._request)
        self.bomb = gzip.compress(bytes(DEFAULT_MAX_BODY_BYTES + 1))
        self.oversize = bytes(DEFAULT_MAX_BODY_BYTES + 1)

    def fresh(self) -> ExportTraceServiceRequest:
        request = ExportTraceServiceRequest()
        request.CopyFrom(self._request)
        n = next(self._uses)
        traces: dict[bytes, bytes] = {}
        spans: dict[bytes, bytes] = {}
        for span in spans_of(request):
            traces.setdefault(
                span.trace_id, (0xBE << 120 | n << 16 | len(traces)).to_bytes(16, "big")
            )
            spans.setdefault(span.span_id, (n << 24 | len(spans) + 1).to_bytes(8, "big"))
        for span in spans_of(request):
            span.trace_id = traces[span.trace_id]
            span.span_id = spans[span.span_id]
            if span.parent_span_id in spans:
                span.parent_span_id = spans[span.parent_span_id]
        return request

    def new_span_id(self) -> bytes:
        return (next(self._uses) << 24 | 0xFFFFFF).to_bytes(8, "big")


# --- what the official decoders make of a body ----------------------------------------------


def protobuf_refused(payload: bytes) -> bool:
    try:
        ExportTraceServiceRequest.FromString(payload)
    except DecodeError:
        return True
    return False


def gzip_refused(payload: bytes) -> bool:
    try:
        inflated = gzip.decompress(payload)
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        return True
    return protobuf_refused(inflated)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def otlp_json_refused(payload: bytes) -> bool:
    """Whether ``payload`` is no OTLP JSON request: not UTF-8 JSON (NaN is no JSON), not an
    object, an id that is not hex (OTLP's one deviation from protobuf's JSON mapping), or
    something ``json_format`` cannot read into ``ExportTraceServiceRequest``."""
    try:
        document = json.loads(payload.decode("utf-8"), parse_constant=_no_constants)
        if not isinstance(document, dict):
            return True
        for resource_spans in _children(document, "resourceSpans", "resource_spans"):
            for scope_spans in _children(resource_spans, "scopeSpans", "scope_spans"):
                for span in _children(scope_spans, "spans"):
                    _ids_to_base64(span)
                    for link in _children(span, "links"):
                        _ids_to_base64(link)
        json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except Exception:  # whatever the reason, the decoders refuse it
        return True
    return False


def _children(parent: object, *keys: str) -> list[Any]:
    if isinstance(parent, dict):
        for name in keys:
            if isinstance(parent.get(name), list):
                return [child for child in parent[name] if isinstance(child, dict)]
    return []


def _ids_to_base64(message: dict[str, Any]) -> None:
    for name in ("traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"):
        if isinstance(message.get(name), str):
            message[name] = base64.b64encode(binascii.unhexlify(message[name])).decode()


# --- payloads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    path: str
    body: bytes
    headers: dict[str, str]


def _otlp(body: bytes, content_type: str = PROTOBUF, encoding: str | None = None) -> Payload:
    headers = {"Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return Payload(TRACES, body, headers)


def _until(make: Callable[[], bytes], refused: Callable[[bytes], bool]) -> bytes:
    """Draw ``make()`` until the decoders refuse it (most mutations are refused at once)."""
    while True:
        body = make()
        if refused(body):
            return body


def _flipped(data: bytes, rng: random.Random, most: int) -> bytes:
    body = bytearray(data)
    for _ in range(rng.randint(1, most)):
        bit = rng.randrange(len(body) * 8)
        body[bit // 8] ^= 1 << (bit % 8)
    return bytes(body)


def _wrong_type(value: object, rng: random.Random) -> object:
    """A JSON value of another type than ``value`` (a number for a string, and so on)."""
    options: list[object] = [{"value": 1}, [1, "a"], True, "not a number", 12345, -1.5]
    return rng.choice([option for option in options if type(option) is not type(value)])


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for name, child in node.items():
            yield from _paths(child, (*prefix, name))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*prefix, index))


def _replaced(document: Any, path: tuple[str | int, ...], value: object) -> bytes:
    copied = json.loads(json.dumps(document))
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return json.dumps(copied).encode()


def _feedback(body: bytes, content_type: str = JSON, authorization: str | None = None) -> Payload:
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    return Payload(FEEDBACK, body, headers)


class Malformed:
    """One maker per category of malformed payload."""

    def __init__(self, material: Material, rng: random.Random) -> None:
        self.m = material
        self.rng = rng
        self.document = json.loads(material.json)
        self.json_paths = list(_paths(self.document))
        self.time_paths = [p for p in self.json_paths if str(p[-1]).endswith("UnixNano")]
        self.id_paths = [p for p in self.json_paths if str(p[-1]) in ("traceId", "spanId")]
        self.keys = itertools.cycle(KEYS)

    def authorized(self, body: bytes, content_type: str = JSON) -> Payload:
        return _feedback(body, content_type, f"Bearer {next(self.keys)}")

    def makers(self) -> dict[str, tuple[float, Callable[[], Payload]]]:
        """Category -> (weight, maker)."""
        rng, m = self.rng, self.m
        valid_feedback = json.dumps(FEEDBACK_BODY).encode()
        return {
            "protobuf, bits flipped": (
                8,
                lambda: _otlp(_until(lambda: _flipped(m.protobuf, rng, 16), protobuf_refused)),
            ),
            "protobuf, truncated": (
                6,
                lambda: _otlp(
                    _until(
                        lambda: m.protobuf[: rng.randrange(1, len(m.protobuf))], protobuf_refused
                    )
                ),
            ),
            "protobuf, random bytes": (
                4,
                lambda: _otlp(
                    _until(lambda: rng.randbytes(rng.randint(1, 2048)), protobuf_refused)
                ),
            ),
            "gzip, bits flipped": (
                6,
                lambda: _otlp(
                    _until(lambda: _flipped(m.gzip, rng, 4), gzip_refused), encoding="gzip"
                ),
            ),
            "gzip, truncated": (
                4,
                lambda: _otlp(
                    _until(lambda: m.gzip[: rng.randrange(0, len(m.gzip))], gzip_refused),
                    encoding="gzip",
                ),
            ),
            "gzip bomb (inflates past the limit)": (
                0.5,
                lambda: _otlp(m.bomb, encoding="gzip"),
            ),
            "JSON, broken syntax": (6, self.broken_json),
            "OTLP JSON, a value of the wrong type": (10, self.wrong_type_json),
            "OTLP JSON, an id that is not hex": (3, self.bad_hex_json),
            "OTLP JSON, a timestamp no uint64 holds": (4, self.bad_time_json),
            "unsupported media type": (
                2,
                lambda: _otlp(
                    m.protobuf,
                    rng.choice(["text/plain", "application/protobuf", "application/xml", ""]),
                ),
            ),
            "unsupported Content-Encoding": (
                2,
                lambda: _otlp(m.gzip, encoding=rng.choice(["br", "deflate", "zstd", "gzip, br"])),
            ),
            "body over the 20 MiB limit": (0.2, lambda: _otlp(m.oversize)),
            "feedback: not JSON": (5, self.feedback_not_json),
            "feedback: JSON but no object": (
                3,
                lambda: self.authorized(
                    json.dumps(rng.choice([[FEEDBACK_BODY], "thumbs", 1, None, True, []])).encode()
                ),
            ),
            "feedback: a key twice": (
                2,
                lambda: self.authorized(
                    valid_feedback[:-1] + f', "{rng.choice(sorted(FEEDBACK_BODY))}": 0}}'.encode()
                ),
            ),
            "feedback: a field with a bad value": (14, self.feedback_bad_field),
            "feedback: a required field missing": (3, self.feedback_missing_field),
            "feedback: an unknown field": (3, self.feedback_unknown_field),
            "feedback: wrong media type": (
                2,
                lambda: self.authorized(
                    valid_feedback, rng.choice(["text/plain", "application/x-www-form-urlencoded"])
                ),
            ),
            "feedback: body over 64 KiB": (
                1,
                lambda: self.authorized(
                    json.dumps({**FEEDBACK_BODY, "comment": "x" * FEEDBACK_MAX_BYTES}).encode()
                ),
            ),
            "feedback: bad credentials": (
                1,
                lambda: _feedback(
                    valid_feedback,
                    authorization=rng.choice(
                        [None, "", "Bearer", f"Bearer {KEYS[0]}x", f"Basic {KEYS[0]}"]
                    ),
                ),
            ),
        }

    def broken_json(self) -> Payload:
        rng, text = self.rng, self.m.json

        def make() -> bytes:
            kind = rng.randrange(5)
            if kind == 0:
                return text[: rng.randrange(len(text))]
            if kind == 1:
                return rng.randbytes(rng.randint(0, 512))
            if kind == 2:
                return text.replace(b'"1', b"NaN", 1)  # first quoted number: a NaN token
            if kind == 3:
                return b"[" * rng.randint(1000, 100_000)
            return json.dumps(rng.choice([[], "resourceSpans", 0, None])).encode()

        return _otlp(_until(make, otlp_json_refused), JSON)

    def wrong_type_json(self) -> Payload:
        def make() -> bytes:
            path = self.rng.choice(self.json_paths)
            parent = self.document
            for step in path:
                parent = parent[step]
            return _replaced(self.document, path, _wrong_type(parent, self.rng))

        return _otlp(_until(make, otlp_json_refused), JSON)

    def bad_hex_json(self) -> Payload:
        path = self.rng.choice(self.id_paths)
        bad = self.rng.choice(["zz" * 8, "0af7651916cd43dd8448eb211c80319", " " * 32, "0x1234"])
        return _otlp(_until(lambda: _replaced(self.document, path, bad), otlp_json_refused), JSON)

    def bad_time_json(self) -> Payload:
        def make() -> bytes:
            path = self.rng.choice(self.time_paths)
            return _replaced(self.document, path, self.rng.choice(NOT_UINT64))

        return _otlp(_until(make, otlp_json_refused), JSON)

    def feedback_not_json(self) -> Payload:
        rng, text = self.rng, json.dumps(FEEDBACK_BODY).encode()
        kind = rng.randrange(4)
        if kind == 0:
            body = text[: rng.randrange(len(text))]
        elif kind == 1:
            body = b"\xff" + rng.randbytes(rng.randint(0, 200))
        elif kind == 2:
            body = b"[" * rng.randint(1000, 60_000)
        else:
            body = b'{"name": "thumbs", "comment": "\xc3"}'
        return self.authorized(body)

    def feedback_bad_field(self) -> Payload:
        name = self.rng.choice(sorted(BAD_FIELD_VALUES))
        body = {**FEEDBACK_BODY, name: self.rng.choice(BAD_FIELD_VALUES[name])}
        return self.authorized(json.dumps(body).encode())

    def feedback_missing_field(self) -> Payload:
        body = dict(FEEDBACK_BODY)
        for name in self.rng.choice([("trace_id",), ("name",), ("value", "label")]):
            del body[name]
        return self.authorized(json.dumps(body).encode())

    def feedback_unknown_field(self) -> Payload:
        name = self.rng.choice(["vaule", "traceId", "score", "", "Name", "x" * 100])
        body = {**FEEDBACK_BODY, name: self.rng.choice([1, "x", None, [], {}])}
        return self.authorized(json.dumps(body).encode())


FIELD_CATEGORIES = frozenset(
    {
        "feedback: a field with a bad value",
        "feedback: a required field missing",
        "feedback: an unknown field",
    }
)
"""Refusals that must name the field (``{"error", "field"}``)."""


# --- valid requests serve must take ---------------------------------------------------------


@dataclass
class Odd:
    """A valid request of an odd kind, and which of its spans partial success must name."""

    payload: Payload
    spans: list[tuple[str, str]]
    rejected: set[int]


OddMaker = Callable[[], Odd]


def acceptable(span: Span) -> bool:
    """The receiver's documented rule: every time in [``EARLIEST_NS``, ``LATEST_NS``), the
    end not before the start."""
    times = (
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        *(event.time_unix_nano for event in span.events),
    )
    in_window = all(EARLIEST_NS <= t < LATEST_NS for t in times)
    return in_window and span.end_time_unix_nano >= span.start_time_unix_nano


def _odd(request: ExportTraceServiceRequest, as_json: bool = False) -> Odd:
    spans = spans_of(request)
    rejected = {k for k, span in enumerate(spans) if not acceptable(span)}
    payload = _otlp(otlp_json(request), JSON) if as_json else _otlp(request.SerializeToString())
    return Odd(payload, [key(span) for span in spans], rejected)


def absurd_timestamps(material: Material, rng: random.Random, as_json: bool) -> Odd:
    request = material.fresh()
    for span in spans_of(request):
        kind = rng.randrange(6)
        if kind == 0:
            span.start_time_unix_nano = rng.choice(ABSURD_NS)
        elif kind == 1:
            span.end_time_unix_nano = rng.choice(ABSURD_NS)
        elif kind == 2:
            span.end_time_unix_nano = span.start_time_unix_nano - rng.randint(1, 10**12)
        elif kind == 3 and span.events:
            span.events[0].time_unix_nano = rng.choice(ABSURD_NS)
    return _odd(request, as_json)


def after_2106(material: Material, rng: random.Random) -> Odd:
    request = material.fresh()
    for span in spans_of(request):
        if rng.random() < 0.5:
            moment = rng.randrange(*AFTER_2106_NS)
            span.start_time_unix_nano = span.end_time_unix_nano = moment
            for event in span.events:
                event.time_unix_nano = moment
    return _odd(request)


def over_101_days(material: Material) -> Odd:
    request = material.fresh()
    scope_spans = request.resource_spans[0].scope_spans[0]
    template = scope_spans.spans[0]
    for day in range(1, 102):
        span = scope_spans.spans.add()
        span.CopyFrom(template)
        span.span_id = material.new_span_id()
        span.start_time_unix_nano = span.end_time_unix_nano = NOW_NS + day * DAY_NS
    return _odd(request)


def huge_value(material: Material, rng: random.Random) -> Odd:
    request = material.fresh()
    span = rng.choice(spans_of(request))
    place = rng.randrange(4)
    if place == 0:
        span.attributes.add(key="huge").value.string_value = "x" * HUGE_BYTES
    elif place == 1:
        span.attributes.add(key="huge").value.bytes_value = rng.randbytes(HUGE_BYTES)
    elif place == 2:
        for n in range(HUGE_BYTES // 100):
            span.attributes.add(key=f"attribute.{n}").value.int_value = n
    else:
        span.name = "n" * HUGE_BYTES
    return _odd(request)


# --- running it -----------------------------------------------------------------------------


@dataclass
class Tally:
    endpoint: str
    valid: bool = False
    """A request serve must take, not a malformed one."""
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    with_reason: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.failures.append(why)

    def record(self, reply: Reply) -> None:
        self.sent += 1
        self.statuses[reply.status] += 1


def reason(reply: Reply) -> str:
    """The refusal's reason: a ``google.rpc.Status`` message (``/v1/traces``) or the JSON
    ``error`` (``/v1/feedback``), with the named field; "" when there is none."""
    try:
        if reply.headers.get("content-type") == JSON and reply.body.startswith(b'{"error"'):
            content = json.loads(reply.body)
            named = f" [field {content['field']}]" if "field" in content else ""
            return str(content.get("error", "")).strip() + named
        return str(reply.status_message().message).strip()
    except Exception:  # a body that is neither is a missing reason
        return ""


class Memory:
    """serve's VmRSS and VmHWM (its peak RSS so far, kept by the kernel), in kB, sampled on
    a thread every ``SAMPLE_S`` with the number of malformed payloads sent by then: a 10 MiB
    request lifts RSS for a moment, a leak lifts its floor."""

    SAMPLE_S = 0.05

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self.sent = 0
        self.samples: list[tuple[int, int, int]] = []
        """(malformed sent, VmRSS, VmHWM)"""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.SAMPLE_S):
            try:
                status = self._status.read_text()
            except OSError:  # serve has exited
                return
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rss, hwm = (int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM"))
            self.samples.append((self.sent, rss, hwm))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def by_tenth(self, count: int) -> list[tuple[int, int, int, int]]:
        """Per tenth of the run: (malformed sent at its end, lowest and highest VmRSS,
        VmHWM at its end)."""
        tenths = []
        for tenth in range(1, 11):
            window = [
                s for s in self.samples if (tenth - 1) * count / 10 <= s[0] < tenth * count / 10
            ]
            if tenth == 10:
                window += [s for s in self.samples if s[0] >= count]
            if window:
                rss = [sample[1] for sample in window]
                tenths.append((tenth * count // 10, min(rss), max(rss), window[-1][2]))
        return tenths


@dataclass
class Run:
    tallies: dict[str, Tally] = field(default_factory=dict)
    acknowledged: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    rejected: set[tuple[str, str]] = field(default_factory=set)
    feedback_acknowledged: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def tally(self, category: str, endpoint: str, *, valid: bool = False) -> Tally:
        return self.tallies.setdefault(category, Tally(endpoint, valid))


def send(serve: Serve, payload: Payload) -> Reply:
    return serve.request("POST", payload.path, payload.body, payload.headers)


def check_malformed(run: Run, category: str, reply: Reply) -> None:
    tally = run.tally(category, reply_endpoint(category))
    tally.record(reply)
    why = reason(reply)
    if why:
        tally.with_reason += 1
    if not 400 <= reply.status < 500:
        tally.fail(f"{reply.status}: {reply.body[:200]!r}")
    elif not why:
        tally.fail(f"{reply.status} without a reason: {reply.body[:200]!r}")
    elif category in FIELD_CATEGORIES and "[field " not in why:
        tally.fail(f"{reply.status} names no field: {why}")


def reply_endpoint(category: str) -> str:
    return FEEDBACK if category.startswith("feedback") else TRACES


def check_odd(run: Run, category: str, odd: Odd, reply: Reply) -> None:
    tally = run.tally(category, TRACES, valid=True)
    tally.record(reply)
    if reply.status != 200:
        tally.fail(f"{reply.status}: {reason(reply) or reply.body[:200]!r}")
        return
    response = ExportTraceServiceResponse()
    if reply.headers.get("content-type") == JSON:
        json_format.Parse(reply.body, response)
    else:
        response.ParseFromString(reply.body)
    message = response.partial_success.error_message
    if message:
        tally.with_reason += 1
    if response.partial_success.rejected_spans != len(odd.rejected):
        tally.fail(
            f"partial success rejected {response.partial_success.rejected_spans} spans, "
            f"not {len(odd.rejected)}: {message[:200]}"
        )
    elif odd.rejected and "timeunixnano" not in message.lower():
        tally.fail(f"the rejection names no time: {message[:200]}")
    acknowledged = run.acknowledged.setdefault(category, set())
    for k, span in enumerate(odd.spans):
        (run.rejected if k in odd.rejected else acknowledged).add(span)


def send_valid(serve: Serve, run: Run, material: Material, turn: int) -> None:
    """A batch of real spans (protobuf, JSON, gzip in turn) and feedback on its first call."""
    request = material.fresh()
    spans = spans_of(request)
    encoding = ("protobuf", "JSON", "gzip")[turn % 3]
    if encoding == "JSON":
        payload = _otlp(otlp_json(request), JSON)
    elif encoding == "gzip":
        payload = _otlp(gzip.compress(request.SerializeToString()), encoding="gzip")
    else:
        payload = _otlp(request.SerializeToString())
    if post_valid(serve, run.tally(f"valid batch ({encoding})", TRACES, valid=True), payload):
        run.acknowledged.setdefault("valid batches", set()).update(key(s) for s in spans)
    body = {"trace_id": spans[0].trace_id.hex(), "name": "thumbs", "value": turn % 2}
    feedback = _feedback(json.dumps(body).encode(), authorization=f"Bearer {KEYS[turn % 32]}")
    reply = post_valid(serve, run.tally("valid feedback", FEEDBACK, valid=True), feedback)
    if reply is not None:
        run.feedback_acknowledged.add(json.loads(reply.body)["span_id"])


def post_valid(serve: Serve, tally: Tally, payload: Payload) -> Reply | None:
    """Send a request serve must take; its reply when it took it (200), else None and the
    failure in ``tally``."""
    reply = send(serve, payload)
    tally.record(reply)
    if reply.status == 200:
        return reply
    tally.fail(f"{reply.status}: {reason(reply)}")
    return None


def odd_makers(material: Material, rng: random.Random) -> dict[str, tuple[float, OddMaker]]:
    """Category -> (weight, maker) of the valid but odd requests."""
    return {
        "absurd timestamps (protobuf)": (4, lambda: absurd_timestamps(material, rng, False)),
        "absurd timestamps (JSON)": (4, lambda: absurd_timestamps(material, rng, True)),
        "times between 2106 and 2200": (2, lambda: after_2106(material, rng)),
        HUGE: (1, lambda: huge_value(material, rng)),
        "one request over 101 days": (0.5, lambda: over_101_days(material)),
    }


def fuzz(serve: Serve, args: argparse.Namespace, run: Run, memory: Memory) -> None:
    """Send everything, checking each answer; stops early only if serve stops answering."""
    rng = random.Random(args.seed)
    material = Material(args.seed)
    makers = Malformed(material, rng).makers()
    names = [name for name in makers if name not in args.skip]
    weights = [makers[name][0] for name in names]
    odd = odd_makers(material, rng)
    odd_names = [name for name in odd if name not in args.skip]
    odd_weights = [odd[name][0] for name in odd_names]
    try:
        for n in range(args.count):
            memory.sent = n
            if n % args.valid_every == 0:
                send_valid(serve, run, material, n // args.valid_every)
            if odd_names and n % args.odd_every == 0:
                category = rng.choices(odd_names, odd_weights)[0]
                if category != HUGE or n < args.count // 2:
                    request = odd[category][1]()
                    check_odd(run, category, request, send(serve, request.payload))
            category = rng.choices(names, weights)[0]
            check_malformed(run, category, send(serve, makers[category][1]()))
        memory.sent = args.count
        send_valid(serve, run, material, args.count)  # and serve still takes spans afterwards
    except (OSError, http.client.HTTPException) as error:
        state = serve.process.poll()
        run.errors.append(
            f"serve stopped answering ({error!r}); "
            + ("it is still running" if state is None else f"it exited with {state}")
        )


# --- the report -----------------------------------------------------------------------------


def statuses(counts: Counter[int]) -> str:
    return ", ".join(f"{code} x {n:,}" for code, n in sorted(counts.items()))


def report(
    run: Run, stored: set[tuple[str, str]], memory: Memory, args: argparse.Namespace
) -> bool:
    """Print the tables; whether every check passed."""
    console = Console(width=150)
    table = Table(title=f"serve fuzzed: {args.count:,} malformed payloads, seed {args.seed}")
    for column in ("category", "endpoint", "sent", "status codes", "with a reason", "failures"):
        table.add_column(
            column, justify="left" if column in ("category", "status codes") else "right"
        )
    malformed = Tally("")
    order = sorted(run.tallies.items(), key=lambda item: (item[1].valid, item[1].endpoint))
    for category, tally in order:
        if not tally.valid:
            malformed.sent += tally.sent
            malformed.statuses.update(tally.statuses)
            malformed.with_reason += tally.with_reason
            malformed.failures += tally.failures
        table.add_row(
            category,
            tally.endpoint,
            f"{tally.sent:,}",
            statuses(tally.statuses),
            f"{tally.with_reason:,}",
            f"{len(tally.failures):,}",
            style="cyan" if tally.valid else None,
        )
    table.add_section()
    table.add_row(
        "all malformed",
        "",
        f"{malformed.sent:,}",
        statuses(malformed.statuses),
        f"{malformed.with_reason:,}",
        f"{len(malformed.failures):,}",
        style="bold",
    )
    console.print(table)
    console.print(
        "[cyan]cyan[/]: valid requests serve must take (200; partial success names "
        "the spans it rejects, with the reason)"
    )

    tenths = memory.by_tenth(args.count)
    memory_table = Table(
        title=f"serve's memory, {len(memory.samples):,} samples of /proc/PID/status"
    )
    for column in ("malformed sent by", "VmRSS lowest MiB", "VmRSS highest MiB", "VmHWM MiB"):
        memory_table.add_column(column, justify="right")
    for sent, low, high, hwm in tenths:
        memory_table.add_row(f"{sent:,}", *(f"{kb / 1024:,.0f}" for kb in (low, high, hwm)))
    console.print(memory_table)
    if len(tenths) == 10:  # the first half warms caches, the store and the heap
        growth_mib = (tenths[-1][1] - tenths[4][1]) / 1024
        if growth_mib > args.max_rss_growth_mib:
            run.errors.append(
                f"the lowest VmRSS grew {growth_mib:.0f} MiB over the second half "
                f"(> --max-rss-growth-mib {args.max_rss_growth_mib:g})"
            )

    spans = Table(title="acknowledged vs stored (otel_traces_recent, read after SIGTERM)")
    for column in ("spans", "sent", "stored", "missing"):
        spans.add_column(column, justify="right")
    for source, acknowledged in run.acknowledged.items():
        missing = len(acknowledged - stored)
        spans.add_row(
            f"acknowledged: {source}",
            f"{len(acknowledged):,}",
            f"{len(acknowledged & stored):,}",
            f"{missing:,}",
        )
        if missing:
            run.errors.append(f"{source}: {missing:,} acknowledged spans not stored")
    stored_span_ids = {span_id for _, span_id in stored}
    missing_feedback = len(run.feedback_acknowledged - stored_span_ids)
    spans.add_row(
        "acknowledged: feedback spans",
        f"{len(run.feedback_acknowledged):,}",
        f"{len(run.feedback_acknowledged & stored_span_ids):,}",
        f"{missing_feedback:,}",
    )
    if missing_feedback:
        run.errors.append(f"{missing_feedback:,} acknowledged feedback spans not stored")
    wrongly_stored = len(run.rejected & stored)
    spans.add_row(
        "rejected by partial success", f"{len(run.rejected):,}", f"{wrongly_stored:,}", ""
    )
    if wrongly_stored:
        run.errors.append(f"{wrongly_stored:,} spans rejected by partial success were stored")
    console.print(spans)

    if malformed.sent < args.count:
        run.errors.append(f"only {malformed.sent:,} malformed payloads were sent")
    for category, tally in run.tallies.items():
        for failure in tally.failures[:3]:
            console.print(f"[red]FAIL[/] {category}: {failure}")
        if len(tally.failures) > 3:
            console.print(f"[red]FAIL[/] {category}: ... {len(tally.failures) - 3:,} more")
    for error in run.errors:
        console.print(f"[red]FAIL[/] {error}")
    ok = not run.errors and not malformed.failures
    ok = ok and not any(tally.failures for tally in run.tallies.values())
    console.print("[bold green]all checks passed[/]" if ok else "[bold red]checks failed[/]")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000, help="malformed payloads to send")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--valid-every", type=int, default=25, help="a valid batch every N")
    parser.add_argument("--odd-every", type=int, default=50, help="an odd valid request every N")
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0)
    parser.add_argument("--skip", action="append", default=[], metavar="CATEGORY")
    args = parser.parse_args()
    material = Material(args.seed)
    known = {*Malformed(material, random.Random()).makers(), *odd_makers(material, random.Random())}
    for category in args.skip:
        if category not in known:
            parser.error(f"--skip {category!r}: the categories are {', '.join(sorted(known))}")
    run = Run()
    with tempfile.TemporaryDirectory(prefix="closedloop-serve-fuzz-") as workdir:
        tmp = Path(workdir)
        (tmp / "keys").write_text("\n".join(KEYS) + "\n")
        serve = start(tmp, f"--api-key-file={tmp / 'keys'}", "--state-dir=state")
        memory = Memory(serve.process.pid)
        started = time.monotonic()
        try:
            fuzz(serve, args, run, memory)
            answers = serve.health()["responses"] if serve.process.poll() is None else "none"
        except BaseException:
            serve.stop(signal.SIGKILL)
            raise
        finally:
            memory.stop()
        seconds = time.monotonic() - started
        exit_code = serve.stop()
        if exit_code != 0:
            run.errors.append(f"serve exited with {exit_code} after SIGTERM")
        stored = set(serve.span_ids("otel_traces_recent"))
        requests = sum(tally.sent for tally in run.tallies.values())
        Console(width=150).print(
            f"{requests:,} requests in {seconds:.1f} s ({requests / seconds:,.0f}/s); serve's "
            f"/healthz at the end, responses by status: {answers}; exit code after SIGTERM: "
            f"{exit_code}"
        )
        ok = report(run, stored, memory, args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
