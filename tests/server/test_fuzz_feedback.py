"""``POST /v1/feedback`` fuzzed on a real serve, with its real pipeline and chDB store.

Every body of a wrong shape gets a 4xx whose JSON ``error`` says why, and a bad field a
400 whose ``field`` names it; never a 5xx. What the endpoint accepts is stored as its
feedback span (read back once serve has stopped), and serve still takes feedback after
everything else. test_feedback_endpoint.py checks each message word for word on the
endpoint alone; this checks that no input, alone or in combination, gets past the checks
into the recorder, the pipeline or the store and breaks there.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.store._schema import SchemaSettings
from server.serving import Reply, Serve, running

FIELDS = (
    "trace_id",
    "span_id",
    "name",
    "value",
    "label",
    "comment",
    "timestamp",
    "kind",
    "source",
    "token",
)
"""The body's fields (docs/server.md, "Feedback endpoint")."""
KEYS = tuple(f"fuzz-key-{n:02d}-0123456789abcdef" for n in range(32))
"""Each key has its own rate bucket (burst 200): together they take every example, and the
many more a failing run sends while hypothesis shrinks it."""
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
VALID = {"trace_id": TRACE, "span_id": SPAN, "name": "thumbs", "value": 1, "label": "up"}
MAX_BODY_BYTES = 64 * 1024
HOUR_NS = 3600 * 10**9
NOW_NS = time.time_ns()
RETAINED_SINCE_NS = NOW_NS - (SchemaSettings().recent_ttl_days - 1) * 24 * HOUR_NS
"""Feedback older than the recent tier's retention is taken and then expired by its TTL."""
FUZZ = settings(max_examples=120, deadline=None)


def rfc3339(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ns % 10**9:09d}Z"


json_anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: json.dumps writes them, Python's parser reads them
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
near_now_ns = st.integers(NOW_NS - HOUR_NS, NOW_NS + HOUR_NS)


ABSENT = object()


@dataclass(frozen=True)
class Change:
    """A field set to ``value`` (``ABSENT``: left out), and the time it means if it is a
    timestamp the endpoint should take."""

    value: Any
    ns: int | None = None


MISSING = Change(ABSENT)
ids = st.sampled_from(
    [
        "",
        "0" * 32,
        "0" * 16,
        TRACE[:16],
        TRACE.upper(),
        f" {TRACE}",
        f"{TRACE}:{SPAN}",
        "g" * 32,
        SPAN,
        SPAN[:8],
        "\ud800" * 16,
    ]
)
timestamps = (
    near_now_ns.map(lambda ns: Change(ns, ns))
    | near_now_ns.map(lambda ns: Change(rfc3339(ns), ns))
    | st.sampled_from(
        [
            0,
            -1,
            2**63,
            2**64,
            NOW_NS // 10**9,
            NOW_NS // 10**6,
            NOW_NS // 10**3,
            1.7e18,
            NOW_NS + 48 * HOUR_NS,
            "yesterday",
            "2024-07-01T12:00:00",
            "2024-13-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "9999-12-31T23:59:59Z",
            "2024-07-01T12:00:00.1234567891Z",
            "2024-07-01T12:00:00+24:00",
            "2024-07-01 12:00:00Z",
            str(NOW_NS),
            True,
        ]
    ).map(Change)
)
texts = st.sampled_from(["", " ", "x" * 1000, "\x00", "\ud800", "up", "down", "explicit"])
VALUES: dict[str, st.SearchStrategy[Change]] = {
    "trace_id": (ids | json_anything).map(Change),
    "span_id": (ids | json_anything).map(Change),
    "name": (
        st.sampled_from(["thumbs", "rating", "edit_ratio", "safety", "", " ", "x" * 300, "a.b"])
        | texts
        | json_anything
    ).map(Change),
    "value": (
        st.sampled_from([0, 1, -1, 2, 5, 7, 3.5, 0.5, 1e308, -0.0, float("nan"), float("inf")])
        | st.sampled_from(["1", True, False, [1], {"score": 1}])
        | json_anything
    ).map(Change),
    "label": (texts | json_anything).map(Change),
    "comment": (texts | json_anything).map(Change),
    "kind": (st.sampled_from(["explicit", "implicit", "judgement", ""]) | json_anything).map(
        Change
    ),
    "source": (texts | json_anything).map(Change),
    "timestamp": timestamps | json_anything.map(Change),
}


changes = st.lists(
    st.sampled_from(sorted(VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), st.just(MISSING) | VALUES[name])
    ),
    min_size=1,
    max_size=3,
).map(dict)
"""One to three fields of a valid body changed or left out."""
unknown_fields = st.dictionaries(
    st.text(max_size=12).filter(lambda name: name not in FIELDS), json_anything, max_size=1
)


@dataclass
class Ledger:
    """What serve answered: the feedback it acknowledged, as (span id, name) that must be
    stored, and how many bodies it refused."""

    stored: set[tuple[str, str]] = field(default_factory=set)
    refused: int = 0


def feedback_time_ns(changes: dict[str, Change], body: dict[str, Any]) -> int:
    """When accepted feedback says it was given: the time a strategy made, else the int
    sent (``json_anything`` may hit a valid one), else now."""
    change = changes.get("timestamp")
    if change is not None and change.ns is not None:
        return change.ns
    sent = body.get("timestamp")
    return sent if isinstance(sent, int) and not isinstance(sent, bool) else NOW_NS


def post(serve: Serve, body: bytes, headers: dict[str, str]) -> Reply:
    return serve.request(
        "POST", "/v1/feedback", body, {"Content-Type": "application/json", **headers}
    )


def answer(reply: Reply) -> dict[str, Any]:
    """The reply's JSON; a refusal must say why."""
    assert reply.status < 500, reply
    assert reply.headers.get("content-type") == "application/json", reply
    content: dict[str, Any] = json.loads(reply.body)
    if reply.status >= 400:
        assert isinstance(content.get("error"), str) and content["error"].strip(), reply
    return content


def started(tmp_path: Path) -> contextlib.AbstractContextManager[Serve]:
    """serve with ``KEYS`` for ``/v1/feedback``."""
    (tmp_path / "keys").write_text("\n".join(KEYS) + "\n")
    return running(tmp_path, f"--api-key-file={tmp_path / 'keys'}", "--state-dir=state")


def test_every_field_value_is_taken_and_stored_or_refused_by_name(tmp_path: Path) -> None:
    ledger = Ledger()
    authorizations = itertools.cycle(f"Bearer {key}" for key in KEYS)
    with started(tmp_path) as serve:

        @FUZZ
        @given(changes, unknown_fields)
        def send(changes: dict[str, Change], unknown: dict[str, Any]) -> None:
            body = {**VALID, **{name: change.value for name, change in changes.items()}}
            body = {name: value for name, value in body.items() if value is not ABSENT}
            body.update(unknown)
            reply = post(serve, json.dumps(body).encode(), {"Authorization": next(authorizations)})
            content = answer(reply)
            if reply.status == 400:
                assert content["field"] in set(body) | {"trace_id", "name", "value"}, content
                assert content["field"] in FIELDS or content["field"] in unknown, content
                ledger.refused += 1
                return
            assert reply.status == 200, reply
            assert not unknown
            assert content["trace_id"] == body["trace_id"].strip().lower()[:32]
            if feedback_time_ns(changes, body) >= RETAINED_SINCE_NS:  # else its TTL expires it
                ledger.stored.add((content["span_id"], body["name"]))

        send()
        last = post(serve, json.dumps(VALID).encode(), {"Authorization": f"Bearer {KEYS[0]}"})
        assert last.status == 200, last
        ledger.stored.add((answer(last)["span_id"], "thumbs"))
        assert serve.stop() == 0
    assert ledger.refused > 0 and ledger.stored  # the strategies reach both sides
    columns = "SpanId, SpanAttributes['closedloop.feedback.name'] AS name"
    stored = {(row["SpanId"], row["name"]) for row in serve.rows("otel_traces_recent", columns)}
    assert ledger.stored <= stored


not_an_object = json_anything.filter(lambda value: not isinstance(value, dict))


def test_bodies_that_are_no_feedback_object_are_refused_with_a_reason(tmp_path: Path) -> None:
    authorizations = itertools.cycle(f"Bearer {key}" for key in KEYS)
    valid = json.dumps(VALID).encode()
    with started(tmp_path) as serve:

        def refused(body: bytes, status: int, headers: dict[str, str] | None = None) -> None:
            """``body`` refused with ``status`` and a reason (by default with a good key)."""
            reply = post(serve, body, headers or {"Authorization": next(authorizations)})
            assert reply.status == status, reply
            answer(reply)

        @FUZZ
        @given(
            st.one_of(
                st.binary(max_size=200).filter(lambda body: not body.strip().startswith(b"{")),
                not_an_object.map(lambda value: json.dumps(value).encode()),
                st.integers(0, len(valid) - 1).map(lambda cut: valid[:cut]),
                st.sampled_from(sorted(VALID)).map(
                    lambda name: valid[:-1] + f", {json.dumps(name)}: 1}}".encode()
                ),  # a field twice
                st.sampled_from(
                    [b"\xff\xfe{}", b"[" * 60_000, b'{"a": ' * 10_000, b'{"name": "\xc3"}', b"{}"]
                ),
            )
        )
        def malformed(body: bytes) -> None:
            refused(body, 400)

        @settings(max_examples=30, deadline=None)
        @given(
            st.sampled_from(
                [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "application/jsonx",
                    "application/x-protobuf",
                    "json",
                    "",
                ]
            )
        )
        def wrong_media_type(content_type: str) -> None:
            refused(
                valid, 415, {"Content-Type": content_type, "Authorization": f"Bearer {KEYS[1]}"}
            )

        @settings(max_examples=10, deadline=None)
        @given(st.integers(MAX_BODY_BYTES + 1, 4 * MAX_BODY_BYTES))
        def too_large(size: int) -> None:
            body = json.dumps({**VALID, "comment": "x" * size}).encode()
            refused(body, 413)

        malformed()
        wrong_media_type()
        too_large()
        # without a key the address bucket (burst 30) applies: a few of each credential
        for authorization in ("", "Bearer", f"Bearer {KEYS[0]}x", f"Basic {KEYS[0]}"):
            refused(valid, 401, {"Authorization": authorization})
        refused(valid, 401, {"X-Closedloop-Token": "forged.token"})
        last = post(serve, valid, {"Authorization": f"Bearer {KEYS[0]}"})
        assert last.status == 200, last
        span_id = answer(last)["span_id"]
        assert serve.stop() == 0
    assert span_id in {row["SpanId"] for row in serve.rows("otel_traces_recent", "SpanId")}
