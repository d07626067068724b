"""The feedback endpoint and the query API as serve mounts them: a real serve process,
real HTTP, the feedback stored as the Contract 2 span and readable through ``/api/``."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry import trace

from _support.waiting import wait_for
from server.serving import running, traffic

API_KEY = "k" * 8 + "0123456789abcdef"


def test_feedback_with_an_api_key_is_stored_and_queryable(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(f"# serve's keys\n{API_KEY}\n")
    spans = traffic(seed=5, plain_traces=0)[0]
    call = next(span for span in spans if span.name.startswith("chat"))
    trace_id = trace.format_trace_id(call.context.trace_id)
    span_id = trace.format_span_id(call.context.span_id)
    with running(tmp_path, f"--api-key-file={tmp_path / 'keys'}", "--state-dir=state") as serve:
        serve.export(spans)
        body = json.dumps(
            {"trace_id": trace_id, "span_id": span_id, "name": "thumbs", "value": 0}
        ).encode()
        refused = serve.request("POST", "/v1/feedback", body, {"Content-Type": "application/json"})
        assert refused.status == 401
        accepted = serve.request(
            "POST",
            "/v1/feedback",
            body,
            {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"},
        )
        assert accepted.status == 200, accepted.body
        assert json.loads(accepted.body)["trace_id"] == trace_id

        def span_names() -> set[str]:
            found = serve.request("GET", f"/api/traces/{trace_id}")
            if found.status == 404:  # not inserted yet
                return set()
            assert found.status == 200, found.body
            return {span["name"] for span in json.loads(found.body)["spans"]}

        # acknowledged spans are in the spool; the exporter's writer inserts them within
        # a second
        wait_for(lambda: "closedloop.feedback" in span_names())
        assert serve.stop() == 0
    assert (tmp_path / "state" / "feedback-nonces").exists()
    stored = serve.rows("otel_traces_recent", "SpanName")
    assert sum(row["SpanName"] == "closedloop.feedback" for row in stored) == 1


def test_the_query_api_beyond_loopback_needs_a_key(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(API_KEY + "\n")
    with running(tmp_path, "--host=0.0.0.0", f"--api-key-file={tmp_path / 'keys'}") as serve:
        assert serve.request("GET", "/api/prompts").status == 401
        authorized = serve.request(
            "GET", "/api/prompts", None, {"Authorization": f"Bearer {API_KEY}"}
        )
        assert authorized.status == 200, authorized.body
