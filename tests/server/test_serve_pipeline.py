"""serve's pipeline beyond one request: kept traces forwarded with --forward-otlp, late
feedback for a dropped trace rescued on schedule, feedback during a pending decision left
to the sampler, and /api/sampling with what the running pipeline counted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _support.collector import PRODUCTION_CONFIG
from _support.waiting import wait_for
from closedloop.sampling import load
from sampling.support import reference_probabilistic
from server.serving import ROOT, SeededIds, kept_by, keys, running, traffic


def test_kept_traces_are_also_forwarded_to_another_otlp_backend(tmp_path: Path) -> None:
    spans = [span for trace_spans in traffic(seed=41) for span in trace_spans]
    kept = kept_by(load(), spans)
    with running(tmp_path, name="backend") as backend:
        with running(tmp_path, f"--forward-otlp={backend.url}", name="front") as front:
            front.export(spans)
            assert front.stop() == 0  # the drain decides every trace and forwards the kept
        assert backend.stop() == 0

    assert front.span_ids("otel_traces") == kept
    assert backend.span_ids("otel_traces_recent") == kept
    (stop,) = [event for event in front.log_events() if event.get("event") == "serve.stop"]
    assert stop["pipeline"]["forward"] == {"sent": len(kept), "failed": 0, "dropped": 0}


def feedback_for(root: ReadableSpan, seed: int = 52) -> ReadableSpan:
    """A Contract 2 feedback span on ``root``, as ``closedloop.feedback`` records it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=SeededIds(seed))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert root.context is not None
    parent = trace.set_span_in_context(trace.NonRecordingSpan(root.context))
    tracer = provider.get_tracer("closedloop")
    with tracer.start_as_current_span("closedloop.feedback", context=parent) as span:
        span.set_attributes(
            {"closedloop.feedback.kind": "explicit", "closedloop.feedback.name": "thumbs"}
        )
    (feedback,) = exporter.get_finished_spans()
    return feedback


def production_policy(tmp_path: Path, decision_wait: str) -> Path:
    """The production policy file, deciding after ``decision_wait`` (same rules and caches)."""
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config["processors"]["tail_sampling"]["decision_wait"] = decision_wait
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(config))
    return policy


def test_late_feedback_for_a_dropped_trace_is_rescued_on_schedule(tmp_path: Path) -> None:
    policy = production_policy(tmp_path, "1s")
    dropped = next(spans for spans in traffic(seed=51)[3:] if not kept_by(load(policy), spans))
    feedback = feedback_for(dropped[-1])
    with running(tmp_path, f"--policy={policy}", "--rescue-every=1s") as serve:
        serve.export(dropped)
        wait_for(lambda: serve.health()["pipeline"]["sampler"]["traces_decided"] != {})
        serve.export([feedback])  # late: the decision cache discards it
        wait_for(lambda: serve.health()["pipeline"]["rescue"]["traces"] == 1)
        pipeline = serve.health()["pipeline"]
        assert serve.stop() == 0

    assert pipeline["sampler"]["traces_decided"] == {"not_sampled": 1}
    assert pipeline["sampler"]["late_spans"] == {"discarded": 1}
    assert pipeline["rescue"]["spans"] == len(dropped) + 1
    assert serve.span_ids("otel_traces") == keys([*dropped, feedback])  # each once
    rescues = [event for event in serve.log_events() if event.get("event") == "serve.rescue"]
    assert [(event["traces"], event["spans"]) for event in rescues] == [(1, len(dropped) + 1)]


def test_feedback_during_a_pending_decision_is_left_to_the_sampler(tmp_path: Path) -> None:
    """Feedback that arrives while its trace still waits for its decision: the feedback rule
    keeps the trace, and the sampler writes it. A scheduled rescue running in that window
    (here many times over) must not copy it as well. Feedback after a trace was dropped is
    rescued once, as soon as no decision can still be pending for it."""
    policy = production_policy(tmp_path, "2s")
    traces = traffic(seed=53)[3:]
    dropped = next(spans for spans in traces if not kept_by(load(policy), spans))
    pending = next(spans for spans in traces if spans is not dropped)
    pending_feedback, late_feedback = feedback_for(pending[-1], 53), feedback_for(dropped[-1], 54)
    with running(tmp_path, f"--policy={policy}", "--rescue-every=200ms") as serve:
        serve.export(dropped)
        wait_for(lambda: serve.health()["pipeline"]["sampler"]["traces_decided"] != {})
        serve.export([*pending, pending_feedback])  # its decision is two seconds away
        serve.export([late_feedback])  # its trace was dropped: the decision cache discards it
        wait_for(lambda: serve.health()["pipeline"]["rescue"]["traces"] >= 1)
        wait_for(lambda: serve.health()["pipeline"]["sampler"]["traces_decided"].get("sampled"))
        pipeline = serve.health()["pipeline"]
        assert serve.stop() == 0

    assert pipeline["sampler"]["traces_decided"] == {"not_sampled": 1, "sampled": 1}
    assert pipeline["rescue"]["traces"] == 1
    assert pipeline["rescue"]["spans"] == len(dropped) + 1
    stored = serve.span_ids("otel_traces")  # duplicates kept
    assert stored == keys([*dropped, late_feedback, *pending, pending_feedback])


def documented_sampling_answer() -> dict[str, Any]:
    """The example answer of docs/server.md's ``GET /api/sampling`` section."""
    text = (ROOT / "docs" / "server.md").read_text()
    section = text[text.index("### `GET /api/sampling") :]
    found = re.search(r"```json\n(.*?)```", section, re.S)
    assert found is not None
    example: dict[str, Any] = json.loads(found.group(1))
    return example


def keys_at_every_level(value: Any) -> Any:
    """The nested keys of a JSON answer, its values left out."""
    if isinstance(value, dict):
        return {key: keys_at_every_level(item) for key, item in value.items()}
    return None


def test_api_sampling_on_serve_counts_since_start_by_rule_and_rescued(tmp_path: Path) -> None:
    """serve gives its query API the pipeline's counts: since_start has the traces decided,
    each rule's own decisions on the traffic (found here independently of the sampler),
    the spans refused and spooled, and what the scheduled rescue copied; the window counts,
    rescued included, come from the store. The documented example has the same shape."""
    policy = production_policy(tmp_path, "1s")
    traces = traffic(seed=57)  # one with an error, one with feedback, one new user, 60 plain
    spans = [span for spans in traces for span in spans]
    kept = kept_by(load(policy), spans)
    dropped = next(spans for spans in traces[3:] if not kept_by(load(policy), spans))
    late_feedback = feedback_for(dropped[-1], 57)
    with running(tmp_path, f"--policy={policy}", "--rescue-every=200ms") as serve:
        serve.export(spans)

        def decided() -> int:
            return sum(serve.health()["pipeline"]["sampler"]["traces_decided"].values())

        wait_for(lambda: decided() == len(traces))
        serve.export([late_feedback])
        wait_for(lambda: serve.health()["pipeline"]["rescue"]["traces"] == 1)
        reply = serve.request("GET", "/api/sampling")
        assert serve.stop() == 0

    assert reply.status == 200, reply.body
    answer = json.loads(reply.body)
    baseline_sampled = sum(
        reference_probabilistic(spans[0].context.trace_id, 15, "default-hash-seed")
        for spans in traces
    )
    sampled = {"errors": 1, "feedback": 1, "new-users": 1, "baseline": baseline_sampled}
    kept_traces = len({trace_id for trace_id, _ in kept})
    assert 3 < kept_traces < len(traces)
    runs = answer["since_start"]["rescued"]["runs"]
    assert runs >= 1
    assert answer["since_start"] == {
        "spans": {"accepted": len(spans) + 1, "refused": 0, "kept": len(kept), "spooled": 0},
        "traces_decided": {
            "sampled": kept_traces,
            "not_sampled": len(traces) - kept_traces,
            "dropped": 0,
            "error": 0,
        },
        "by_rule": {
            rule: {"sampled": n, "not_sampled": len(traces) - n, "dropped": 0, "errors": 0}
            for rule, n in sampled.items()
        },
        "rescued": {"runs": runs, "failures": 0, "traces": 1, "spans": len(dropped) + 1},
    }
    received, stored = len(spans) + 1, len(kept) + len(dropped) + 1
    assert answer["spans"] == {
        "received": received,
        "kept": stored,
        "dropped": received - stored,
        "rescued": len(dropped) + 1,
    }
    assert answer["traces"] == {
        "received": len(traces),
        "kept": kept_traces + 1,
        "dropped": len(traces) - kept_traces - 1,
        "rescued": 1,
    }
    assert list(answer["not_available"]) == ["by_rule"]
    assert keys_at_every_level(answer) == keys_at_every_level(documented_sampling_answer())
