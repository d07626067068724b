"""``POST /v1/feedback`` on a real Starlette app served by uvicorn: auth, tokens, CORS, limits,
field checks, and the span it hands to the pipeline."""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

import closedloop.feedback as fb
from closedloop.server._feedback import FEEDBACK_PATH, TOKEN_HEADER, feedback_routes
from closedloop.server._feedback_settings import FeedbackEndpointSettings, Rate, load_api_keys
from feedback.helpers import FakeClock, feedback_spans

API_KEY = "test-api-key-0123456789"
OTHER_API_KEY = "other-api-key-9876543210"
TOKEN_KEY = b"test-feedback-token-key"
NOW = 1_720_000_000.0  # 2024-07-03T09:46:40Z
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
OTHER_TRACE = "5b8efff798038103d269b633813fc60c"
OTHER_SPAN = "eee19b7ec3c1b174"
ORIGIN = "https://app.example.com"
THUMBS = {"trace_id": TRACE, "span_id": SPAN, "name": "thumbs", "value": 1, "label": "up"}
GENEROUS = Rate(per_second=1e6, burst=10**6)
STOP_TIMEOUT_S = 60
"""Only keeps a broken run from hanging; uvicorn stops within a tenth of a second."""


class Sink:
    """The pipeline's side of the endpoint: keeps what it takes, refuses while ``full``."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.full = False

    def __call__(self, spans: Sequence[ReadableSpan]) -> bool:
        if self.full:
            return False
        self.spans.extend(spans)
        return True


class Client:
    """HTTP to one running app; bodies are encoded here, so any JSON (NaN too) can be sent."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def post(
        self,
        body: Any = None,
        *,
        content: bytes | None = None,
        content_type: str = "application/json",
        **headers: str,
    ) -> requests.Response:
        data = json.dumps(body).encode() if content is None else content
        sent = {"Content-Type": content_type, **_header_names(headers)}
        return self.session.post(self.url + FEEDBACK_PATH, data=data, headers=sent)

    def options(self, **headers: str) -> requests.Response:
        return self.session.options(self.url + FEEDBACK_PATH, headers=_header_names(headers))


def _header_names(headers: dict[str, str]) -> dict[str, str]:
    """``x_closedloop_token=`` -> ``X-Closedloop-Token``."""
    return {key.replace("_", "-").title(): value for key, value in headers.items()}


@contextlib.contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """``app`` on uvicorn in a thread. The socket listens before uvicorn starts, so the
    first request queues in its backlog instead of racing the start-up."""
    listener = socket.create_server(("127.0.0.1", 0))
    # Accepted connections inherit it: without it, Nagle and delayed ACKs hold each
    # response's body back some 40 ms.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]})
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        listener.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def serve(tmp_path: Path, clock: FakeClock, sink: Sink) -> Iterator[Callable[..., Client]]:
    """Start a fresh app (a restarted server) on the same nonce file at each call."""
    with contextlib.ExitStack() as running:

        def start(**overrides: Any) -> Client:
            options: dict[str, Any] = {
                "nonce_file": tmp_path / "nonces",
                "api_keys": frozenset({API_KEY, OTHER_API_KEY}),
                "token_key": TOKEN_KEY,
                "cors_origins": frozenset({ORIGIN}),
                "key_rate": GENEROUS,
                "address_rate": GENEROUS,
                "clock": clock,
            }
            options.update(overrides)
            routes = feedback_routes(FeedbackEndpointSettings(**options), sink)
            client = Client(running.enter_context(serving(Starlette(routes=routes))))
            running.callback(client.session.close)
            return client

        yield start


@pytest.fixture
def client(serve: Callable[..., Client]) -> Client:
    return serve()


def bearer(key: str = API_KEY) -> str:
    return f"Bearer {key}"


def issue(
    target: str = f"{TRACE}:{SPAN}", names: Sequence[str] = ("thumbs",), ttl: float = 3600
) -> str:
    return fb.token(target, names, ttl, key=TOKEN_KEY, now=NOW)


def post_token(client: Client, token: str, body: dict[str, Any] = THUMBS) -> requests.Response:
    return client.post(body, x_closedloop_token=token)


# --- API keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization", [bearer(), f"bearer {API_KEY}", f"Bearer   {OTHER_API_KEY}  "]
)
def test_an_api_key_records_the_feedback_span(client, sink, authorization):
    response = client.post(THUMBS, authorization=authorization)

    assert response.status_code == 200, response.text
    (span,) = sink.spans
    assert response.json() == {
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
    }
    assert span.attributes["closedloop.feedback.name"] == "thumbs"
    assert span.parent is not None
    assert (span.context.trace_id, span.parent.span_id) == (int(TRACE, 16), int(SPAN, 16))


@pytest.mark.parametrize(
    "authorization",
    [
        bearer("wrong-api-key-0123456789"),
        bearer(API_KEY[:-1]),
        bearer(API_KEY + "x"),
        f"Basic {API_KEY}",
        "Bearer",
        API_KEY,
    ],
)
def test_a_wrong_api_key_is_refused(client, sink, authorization):
    response = client.post(THUMBS, authorization=authorization)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "unknown API key" in response.json()["error"]
    assert sink.spans == []


def test_a_request_without_credentials_is_told_both_ways_in(client, sink):
    response = client.post(THUMBS)

    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["error"]
    assert TOKEN_HEADER in response.json()["error"]
    assert sink.spans == []


def test_keys_from_the_environment_and_a_file_both_work(serve, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# feedback callers\n{OTHER_API_KEY}\n")
    keys = load_api_keys(env={"CLOSEDLOOP_API_KEYS": f" {API_KEY} ,"}, file=key_file)
    client = serve(api_keys=keys)

    for key in (API_KEY, OTHER_API_KEY):
        assert client.post(THUMBS, authorization=bearer(key)).status_code == 200
    assert client.post(THUMBS, authorization=bearer("#" * 20)).status_code == 401


# --- browser tokens ------------------------------------------------------------------------


def test_a_token_records_feedback_on_the_span_it_names(client, sink):
    body = {"trace_id": TRACE, "name": "thumbs", "value": 0, "label": "down"}

    response = post_token(client, issue(), body)

    assert response.status_code == 200, response.text
    (span,) = sink.spans
    assert span.parent is not None
    assert span.parent.span_id == int(SPAN, 16)


def test_whitespace_around_a_token_is_ignored(client, sink):
    response = client.post({**THUMBS, "token": f"\n  {issue()} \r\n"})

    assert response.status_code == 200, response.text
    assert len(sink.spans) == 1


def test_a_forged_token_is_refused(client, sink):
    forged = fb.token(f"{TRACE}:{SPAN}", ["thumbs"], key=b"someone-elses-key", now=NOW)
    # payload.issued.signature; a payload that compresses well starts with a dot of its own.
    _, issued, signature = issue().rsplit(".", 2)
    other_payload = issue(f"{OTHER_TRACE}:{SPAN}").rsplit(".", 2)[0]

    for token in (forged, f"{other_payload}.{issued}.{signature}", "not-a-token"):
        response = post_token(client, token)
        assert response.status_code == 401, token
        assert response.json()["field"] == "token"
    assert "bad signature" in post_token(client, forged).json()["error"]
    assert sink.spans == []


def test_an_expired_token_is_refused(client, sink, clock):
    token = issue(ttl=60)
    clock.advance(60)

    response = post_token(client, token)

    assert response.status_code == 401
    assert "expired token" in response.json()["error"]
    assert "fresh token" in response.json()["error"]
    assert sink.spans == []


@pytest.mark.parametrize(
    ("target", "body", "field"),
    [
        (f"{TRACE}:{SPAN}", {**THUMBS, "trace_id": OTHER_TRACE}, "trace_id"),
        (f"{TRACE}:{SPAN}", {**THUMBS, "span_id": OTHER_SPAN}, "span_id"),
        (TRACE, THUMBS, "span_id"),
        (f"{TRACE}:{SPAN}", {**THUMBS, "name": "rating", "value": 5}, "name"),
    ],
    ids=["other trace", "other span", "span of a trace token", "other name"],
)
def test_a_token_gives_nothing_beyond_its_call_and_names(client, sink, target, body, field):
    response = post_token(client, issue(target), body)

    assert response.status_code == 403
    assert response.json()["field"] == field
    assert sink.spans == []


def test_a_token_sends_each_of_its_names_once(client, sink):
    token = issue(names=["thumbs", "comment"])
    comment = {"trace_id": TRACE, "name": "comment", "comment": "thanks"}

    assert post_token(client, token).status_code == 200
    assert post_token(client, token, comment).status_code == 200
    replayed = post_token(client, token)

    assert replayed.status_code == 409
    assert "already used for 'thumbs'" in replayed.json()["error"]
    assert post_token(client, token, comment).status_code == 409
    assert len(sink.spans) == 2


def test_a_replayed_token_is_refused_after_a_restart(client, serve, sink):
    token = issue()
    assert post_token(client, token).status_code == 200

    restarted = serve()

    assert post_token(restarted, token).status_code == 409
    assert post_token(restarted, issue()).status_code == 200
    assert len(sink.spans) == 2


def test_a_token_refused_by_a_full_pipeline_can_be_sent_again(client, serve, sink):
    token = issue()
    sink.full = True

    busy = post_token(client, token)

    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "1"
    sink.full = False
    assert post_token(serve(), token).status_code == 200  # the release survives a restart
    assert len(sink.spans) == 1


def test_a_full_nonce_store_refuses_new_tokens_until_one_expires(serve, sink, clock):
    client = serve(max_nonces=2)
    later = issue(ttl=3600)
    for _ in range(2):
        assert post_token(client, issue(ttl=60)).status_code == 200

    full = post_token(client, later)

    assert full.status_code == 503
    assert full.headers["Retry-After"] == "60"
    clock.advance(60)
    assert post_token(client, later).status_code == 200


def test_an_api_key_needs_no_token_and_tokens_must_agree(client, sink):
    with_key = client.post({**THUMBS, "token": "ignored"}, authorization=bearer())
    differ = client.post({**THUMBS, "token": issue()}, x_closedloop_token=issue())
    not_text = client.post({**THUMBS, "token": 7})

    assert with_key.status_code == 200
    assert (differ.status_code, differ.json()["field"]) == (400, "token")
    assert (not_text.status_code, not_text.json()["field"]) == (400, "token")
    assert len(sink.spans) == 1


# --- CORS -----------------------------------------------------------------------------------


def preflight(client: Client, origin: str, headers: str) -> requests.Response:
    return client.options(
        origin=origin,
        access_control_request_method="POST",
        access_control_request_headers=headers,
    )


def test_a_preflight_from_a_configured_origin_is_allowed(client):
    response = preflight(client, ORIGIN, "Content-Type, Authorization, X-Closedloop-Token")

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = response.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert sorted(allowed) == ["authorization", "content-type", "x-closedloop-token"]
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    ("origin", "headers"),
    [
        ("https://evil.example.com", "content-type"),
        ("http://app.example.com", "content-type"),
        (ORIGIN, "content-type, x-other"),
    ],
)
def test_a_preflight_from_another_origin_gets_no_cors_headers(client, origin, headers):
    response = preflight(client, origin, headers)

    assert response.status_code == 403
    assert not [name for name in response.headers if name.lower().startswith("access-control")]


def test_posts_from_a_configured_origin_can_read_every_answer(client, sink):
    token = issue()

    accepted = client.post(THUMBS, origin=ORIGIN, x_closedloop_token=token)
    replayed = client.post(THUMBS, origin=ORIGIN, x_closedloop_token=token)

    for response in (accepted, replayed):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert (accepted.status_code, replayed.status_code) == (200, 409)


def test_posts_from_another_origin_or_as_plain_text_are_refused(client, sink):
    other = client.post(THUMBS, origin="https://evil.example.com", x_closedloop_token=issue())
    # text/plain is what a page would use to skip the preflight
    plain = client.post(THUMBS, content_type="text/plain", authorization=bearer())

    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers
    assert plain.status_code == 415
    assert sink.spans == []


# --- rate limits ----------------------------------------------------------------------------


def test_each_api_key_has_its_own_bucket(serve, sink, clock):
    client = serve(key_rate=Rate(per_second=0.5, burst=2))
    for _ in range(2):
        assert client.post(THUMBS, authorization=bearer()).status_code == 200

    limited = client.post(THUMBS, authorization=bearer())

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert client.post(THUMBS, authorization=bearer(OTHER_API_KEY)).status_code == 200
    clock.advance(2)
    assert client.post(THUMBS, authorization=bearer()).status_code == 200
    assert len(sink.spans) == 4


def test_tokens_and_bad_keys_are_limited_per_address(serve, sink, clock):
    client = serve(address_rate=Rate(per_second=1.0, burst=2))
    assert post_token(client, issue()).status_code == 200
    assert client.post(THUMBS, authorization=bearer("x" * 20)).status_code == 401

    limited = post_token(client, issue())

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert client.post(THUMBS, authorization=bearer()).status_code == 200
    clock.advance(1)
    assert post_token(client, issue()).status_code == 200
    assert len(sink.spans) == 3


# --- fields ---------------------------------------------------------------------------------

# (what the body changes, the field named, words of the fix)
FIELD_CASES = [
    ({"trace_id": None}, "trace_id", "trace_id is missing; send the call's trace id"),
    ({"trace_id": 12}, "trace_id", "is not a string; send the id as hex text"),
    ({"trace_id": "0af7651916cd43dd"}, "trace_id", "expected 32 hex characters"),
    ({"trace_id": "0" * 32}, "trace_id", "is not a trace id"),
    ({"span_id": "b7ad6b71"}, "span_id", "malformed span id 'b7ad6b71'"),
    ({"span_id": ["b7ad6b7169203331"]}, "span_id", "is not a string"),
    ({"timestamp": "yesterday"}, "timestamp", "is not an RFC 3339 time"),
    ({"timestamp": "2024-07-01T12:00:00"}, "timestamp", "is not an RFC 3339 time"),
    ({"timestamp": "2024-13-01T12:00:00Z"}, "timestamp", "is not an RFC 3339 time"),
    ({"timestamp": 1.7e18}, "timestamp", "is a float; pass nanoseconds since the epoch"),
    ({"timestamp": True}, "timestamp", "is a bool"),
    ({"timestamp": 1_719_835_200}, "timestamp", "Seconds? Multiply by 10**9."),
    ({"timestamp": 1_719_835_200_000}, "timestamp", "Milliseconds? Multiply by 10**6."),
    ({"timestamp": 1_719_835_200_000_000}, "timestamp", "Microseconds? Multiply by 10**3."),
    ({"timestamp": "1999-12-31T23:59:59Z"}, "timestamp", "is before 2000-01-01"),
    ({"timestamp": "2024-07-04T09:46:41Z"}, "timestamp", "in the future (after now + 1 day)"),
    ({"name": None}, "name", "name=None is a NoneType, not a str; pass the feedback name"),
    ({"vaule": 1}, "vaule", "unknown field 'vaule'; the fields are trace_id"),
    ({"comment": "\ud800"}, "comment", "unpaired surrogate"),
]


@pytest.mark.parametrize(("change", "field", "message"), FIELD_CASES)
def test_each_bad_field_is_named_with_its_fix(client, sink, change, field, message):
    body = {key: item for key, item in {**THUMBS, **change}.items() if item is not None}

    response = client.post(body, authorization=bearer())

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert message in response.json()["error"]
    assert sink.spans == []


def test_the_feedback_window_follows_the_servers_clock(client, clock, sink):
    late = {**THUMBS, "timestamp": "2024-07-04T09:46:41Z"}
    assert client.post(late, authorization=bearer()).status_code == 400

    clock.advance(1)

    assert client.post(late, authorization=bearer()).status_code == 200
    assert sink.spans[0].start_time == 1_720_086_401 * 10**9


# Signals record() refuses: the endpoint names the field and says exactly what record() says.
SIGNAL_CASES = [
    ({"name": ""}, "name"),
    ({"name": 3}, "name"),
    ({"kind": "judgement"}, "kind"),
    ({"kind": None}, "kind"),
    ({"value": "1"}, "value"),
    ({"value": [1]}, "value"),
    ({"value": float("inf")}, "value"),
    ({"value": float("nan")}, "value"),
    ({"name": "rating", "value": 7}, "value"),
    ({"name": "rating", "value": 3.5}, "value"),
    ({"name": "edit_ratio", "value": -0.5}, "value"),
    ({"name": "thumbs", "value": None, "label": None}, "value"),
    ({"label": 3}, "label"),
    ({"label": ""}, "label"),
    ({"name": "safety", "value": None, "label": "severe"}, "label"),
    ({"comment": ""}, "comment"),
    ({"source": ["web"]}, "source"),
]


@pytest.mark.parametrize(("change", "field"), SIGNAL_CASES)
def test_signal_rules_are_the_recorders_own(client, sink, change, field):
    signal = {"name": "thumbs", "value": 1, "label": "up", **change}
    with pytest.raises((TypeError, ValueError)) as raised:
        fb.record(TRACE, **signal)

    response = client.post({"trace_id": TRACE, **signal}, authorization=bearer())

    assert response.status_code == 400
    assert response.json() == {"error": str(raised.value), "field": field}
    assert sink.spans == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", "the body is not JSON"),
        (b"\xff\xfe{}", "the body is not JSON"),
        (b"[" * 5000 + b"]" * 5000, "the body is not JSON"),
        (b'["thumbs"]', "the body must be a JSON object"),
        (b'{"name": "thumbs", "name": "rating"}', "'name' appears twice"),
    ],
)
def test_a_body_that_is_no_feedback_object_is_refused(client, content, message):
    response = client.post(content=content, authorization=bearer())

    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_body_over_the_limit_is_refused(serve, sink):
    client = serve(max_body_bytes=1024)

    response = client.post({**THUMBS, "comment": "x" * 1024}, authorization=bearer())

    assert response.status_code == 413
    assert sink.spans == []


FUZZ_FIELDS = [*THUMBS, "comment", "timestamp", "kind", "source", "x"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.dictionaries(
        st.sampled_from(FUZZ_FIELDS),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda children: st.lists(children) | st.dictionaries(st.text(), children),
            max_leaves=5,
        ),
    )
)
def test_every_shape_of_body_gets_a_reason_never_a_crash(client, body):
    response = client.post({**THUMBS, **body}, authorization=bearer())

    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]
        assert response.json()["field"] in FUZZ_FIELDS


# --- the span ----------------------------------------------------------------------------


def comparable(span: ReadableSpan) -> dict[str, Any]:
    """Everything Contract 2 fixes about a feedback span (not its own random span id)."""
    assert span.parent is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "trace_id": span.context.trace_id,
        "parent": (span.parent.trace_id, span.parent.span_id, span.parent.trace_flags),
        "attributes": dict(span.attributes or {}),
        "events": [(e.name, dict(e.attributes or {}), e.timestamp) for e in span.events],
        "times": (span.start_time, span.end_time),
        "scope": span.instrumentation_scope,
        "status": span.status.status_code,
    }


@pytest.mark.parametrize("target", [f"{TRACE}:{SPAN}", TRACE])
def test_the_span_is_the_one_record_makes(
    instrument, exporter: InMemorySpanExporter, client, sink, target
):
    instrument(capture_content=True)
    when = datetime.datetime(2024, 7, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    comment = "Wrong again, mail me at jane.doe@example.com"
    fb.record(
        target, "rating", 2, label="poor", comment=comment, kind="explicit", source="web",
        timestamp=when,
    )  # fmt: skip
    trace_id, _, span_id = target.partition(":")
    body = {
        "trace_id": trace_id, "name": "rating", "value": 2, "label": "poor", "comment": comment,
        "kind": "explicit", "source": "web", "timestamp": "2024-07-01T12:00:00.123456Z",
    }  # fmt: skip

    response = client.post(body | ({"span_id": span_id} if span_id else {}), authorization=bearer())

    assert response.status_code == 200, response.text
    (recorded,) = feedback_spans(exporter)
    (received,) = sink.spans
    assert comparable(received) == comparable(recorded)
    (event,) = received.events
    assert event.attributes["gen_ai.evaluation.score.value"] == 2.0
    assert "jane.doe@example.com" not in event.attributes["gen_ai.evaluation.explanation"]


def test_a_token_makes_the_same_span_as_a_key(client, sink):
    body = {**THUMBS, "timestamp": 1_719_835_200_123_456_789}

    assert client.post(body, authorization=bearer()).status_code == 200
    assert post_token(client, issue(), body).status_code == 200

    by_key, by_token = sink.spans
    assert comparable(by_token) == comparable(by_key)
    assert by_key.start_time == 1_719_835_200_123_456_789
    assert by_key.resource.attributes["service.name"] == "closedloop-serve"
