"""``GET /metrics``: serve's counts in the Prometheus format, checked against ``/healthz``
and the rows of the store; request latency by route template; the query API's credentials;
one registry per app. And the shutdown those counts end with: SIGTERM and SIGINT alike
decide every buffered trace and flush it to the store, and a second signal does not cut a
request in progress short."""

from __future__ import annotations

import http.client
import signal
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from _support.collector import PRODUCTION_CONFIG
from _support.waiting import wait_for
from closedloop.sampling import Decision, load
from closedloop.server import Pipeline, ServeConfig, create_app
from server.serving import PROTOBUF, Serve, kept_by, keys, running, traffic
from server.support import protobuf_request

API_KEY = "m" * 8 + "0123456789abcdef"
DURATION = "closedloop_http_request_duration_seconds"
Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    return scraped[(name, frozenset(labels.items()))]


def scrape(serve: Serve) -> Samples:
    reply = serve.request("GET", "/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/plain")
    return samples(reply.body.decode())


def request_counts(scraped: Samples) -> Counter[tuple[str, str, str]]:
    """The latency histogram's request count by (route, method, status)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for (name, labels), count in scraped.items():
        if name == f"{DURATION}_count":
            by = dict(labels)
            counts[by["route"], by["method"], by["status"]] = int(count)
    return counts


def fast_policy(tmp_path: Path) -> Path:
    """The production policy deciding after 1 s, so a test sees every decision made."""
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    config["processors"]["tail_sampling"]["decision_wait"] = "1s"
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(config))
    return policy


def test_metrics_agree_with_healthz_and_the_store(tmp_path: Path) -> None:
    policy = fast_policy(tmp_path)
    traces = traffic(seed=61)
    spans = [span for trace in traces for span in trace]
    kept = kept_by(load(policy), spans)
    with running(tmp_path, f"--policy={policy}", "--rescue-every=1h") as serve:
        serve.export(spans)
        assert serve.post(b"not protobuf").status == 400

        def settled() -> bool:
            pipeline = serve.health()["pipeline"]
            store = pipeline["store"]
            return (
                sum(pipeline["sampler"]["traces_decided"].values()) == len(traces)
                and store["exported_spans"] == len(spans) + len(kept)
                and store["queued_spans"] == store["spool_spans"] == 0
            )

        wait_for(settled, 60, "the sampler did not decide every trace, or the store lags")
        health = serve.health()
        scraped = scrape(serve)
        assert serve.stop() == 0

    pipeline = health["pipeline"]
    sampler, store = pipeline["sampler"], pipeline["store"]
    assert value(scraped, "closedloop_spans_accepted_total") == len(spans)
    assert value(scraped, "closedloop_spans_kept_total") == len(kept) > 0
    for metric, counted in [
        ("closedloop_spans_accepted_total", pipeline["spans_accepted"]),
        ("closedloop_spans_refused_total", pipeline["spans_refused"]),
        ("closedloop_spans_kept_total", pipeline["spans_kept"]),
        ("closedloop_rescue_runs_total", pipeline["rescue"]["runs"]),
        ("closedloop_rescue_failures_total", pipeline["rescue"]["failures"]),
        ("closedloop_rescue_traces_total", pipeline["rescue"]["traces"]),
        ("closedloop_rescue_spans_total", pipeline["rescue"]["spans"]),
        ("closedloop_sampler_traces_received_total", sampler["traces_received"]),
        ("closedloop_sampler_traces_evicted_undecided_total", sampler["traces_evicted_undecided"]),
        ("closedloop_store_insert_failures_total", store["failed_inserts"]),
        ("closedloop_store_queued_spans", store["queued_spans"]),
        ("closedloop_store_spool_spans", store["spool_spans"]),
        ("closedloop_store_spool_bytes", store["spool_bytes"]),
        ("closedloop_otlp_requests_in_flight", health["requests_in_flight"]),
    ]:
        assert value(scraped, metric) == counted, metric
    decided, late = sampler["traces_decided"], sampler["late_spans"]
    for decision in (decision.value for decision in Decision):
        found = value(scraped, "closedloop_sampler_traces_decided_total", decision=decision)
        assert found == decided.get(decision, 0), decision
    for outcome in ("forwarded", "discarded"):
        found = value(scraped, "closedloop_sampler_late_spans_total", outcome=outcome)
        assert found == late.get(outcome, 0), outcome
    for outcome, field in [
        ("exported", "exported_spans"),
        ("spooled", "spooled_spans_total"),
        ("adopted", "adopted_spans"),
        ("rejected", "rejected_spans"),
        ("dropped", "dropped_spans"),
    ]:
        assert value(scraped, "closedloop_store_spans_total", outcome=outcome) == store[field]
    responses = {
        dict(labels)["status"]: count
        for (name, labels), count in scraped.items()
        if name == "closedloop_otlp_responses_total"
    }
    assert responses == health["responses"] == {"200": 1, "400": 1}
    assert not any(name.startswith("closedloop_forward") for name, _ in scraped)
    assert value(scraped, "process_resident_memory_bytes") > 0

    # the store holds what the counters say
    assert len(serve.rows("otel_traces_recent")) == len(spans)
    assert serve.span_ids("otel_traces") == kept
    exported = value(scraped, "closedloop_store_spans_total", outcome="exported")
    assert exported == len(spans) + len(kept)  # a row per span in each tier it went to


def test_request_latency_is_counted_by_route_template_not_by_path(tmp_path: Path) -> None:
    missing = ["0af7651916cd43dd8448eb211c80319c", "5b8efff798038103d269b633813fc60c"]
    with running(tmp_path) as serve:
        before = scrape(serve)
        serve.export(traffic(seed=62, plain_traces=1)[0])
        for _ in range(3):
            serve.health()
        for trace_id in missing:
            assert serve.request("GET", f"/api/traces/{trace_id}").status == 404
        assert serve.request("GET", "/api/traces/not-hex").status == 400
        assert serve.request("GET", "/v1/traces").status == 405
        assert serve.request("GET", "/no/such/page").status == 404
        reply = serve.request("GET", "/metrics")
        after = samples(reply.body.decode())

    made = request_counts(after) - request_counts(before)
    assert made == {
        ("/v1/traces", "POST", "200"): 1,
        ("/healthz", "GET", "200"): 3,
        ("/api/traces/{trace_id}", "GET", "404"): 2,
        ("/api/traces/{trace_id}", "GET", "400"): 1,
        ("/v1/traces", "GET", "405"): 1,
        ("unmatched", "GET", "404"): 1,
        ("/metrics", "GET", "200"): 1,  # the first scrape; a scrape is counted once answered
    }
    text = reply.body.decode()
    assert all(path not in text for path in [*missing, "not-hex", "/no/such"])


def test_metrics_beyond_loopback_need_an_api_key_and_speak_openmetrics(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(API_KEY + "\n")
    with running(tmp_path, "--host=0.0.0.0", f"--api-key-file={tmp_path / 'keys'}") as serve:
        refused = serve.request("GET", "/metrics")
        wrong = serve.request("GET", "/metrics", None, {"Authorization": f"Bearer {'x' * 24}"})
        text = serve.request("GET", "/metrics", None, {"Authorization": f"Bearer {API_KEY}"})
        openmetrics = serve.request(
            "GET",
            "/metrics",
            None,
            {
                "Authorization": f"Bearer {API_KEY}",
                "Accept": "application/openmetrics-text; version=1.0.0",
            },
        )

    for reply in (refused, wrong):
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == "Bearer"
        assert b"API key" in reply.body
        assert b"closedloop_" not in reply.body
    assert text.status == 200
    assert text.headers["content-type"].startswith("text/plain; version=")
    assert value(samples(text.body.decode()), "closedloop_spans_accepted_total") == 0
    assert openmetrics.status == 200
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics_families(openmetrics.body.decode())}
    assert families["closedloop_spans_accepted"].type == "counter"
    assert families[DURATION].type == "histogram"
    assert families["closedloop_store_spool_bytes"].unit == "bytes"


def test_each_app_has_its_own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOSEDLOOP_FEEDBACK_TOKEN_KEY", "metrics-test-token-key")
    config = ServeConfig(store_url=f"chdb://{tmp_path}/store", state_dir=tmp_path / "state")
    pipeline = Pipeline(config)
    try:
        first, second = create_app(pipeline, config), create_app(pipeline, config)
        with TestClient(first) as one, TestClient(second) as other:
            for _ in range(2):
                assert one.get("/healthz").status_code == 200
            first_counts = request_counts(samples(one.get("/metrics").text))
            second_counts = request_counts(samples(other.get("/metrics").text))
    finally:
        pipeline.close()
    assert first_counts == {("/healthz", "GET", "200"): 2}
    assert second_counts == {}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_decides_every_buffered_trace_and_flushes_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    traces = traffic(seed=63)
    spans = [span for trace in traces for span in trace]
    with running(tmp_path) as serve:  # the packaged policy: decisions wait 10 s
        serve.export(spans)
        assert serve.stop(sig) == 0

    assert serve.span_ids("otel_traces_recent") == keys(spans)
    assert serve.span_ids("otel_traces") == kept_by(load(), spans)
    (stop,) = [event for event in serve.log_events() if event.get("event") == "serve.stop"]
    assert sum(stop["pipeline"]["sampler"]["traces_decided"].values()) == len(traces)
    assert (
        stop["pipeline"]["store"]["queued_spans"] == stop["pipeline"]["store"]["spool_spans"] == 0
    )


def answers(serve: Serve) -> bool:
    try:
        serve.request("GET", "/healthz")
    except ConnectionError:
        return False
    return True


def test_a_second_sigint_lets_a_request_in_progress_finish(tmp_path: Path) -> None:
    spans = traffic(seed=64, plain_traces=0)[0]
    body = protobuf_request(spans).SerializeToString()
    with running(tmp_path) as serve:
        connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=60)
        try:
            connection.putrequest("POST", "/v1/traces")
            connection.putheader("Content-Type", PROTOBUF)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body[:10])
            wait_for(lambda: serve.health()["requests_in_flight"] == 1)
            serve.process.send_signal(signal.SIGINT)
            wait_for(lambda: not answers(serve), message="serve kept listening after SIGINT")
            serve.process.send_signal(signal.SIGINT)
            wait_for(lambda: "serve.stop.repeated" in serve.log.read_text())
            connection.send(body[10:])
            assert connection.getresponse().status == 200
        finally:
            connection.close()
        assert serve.stop() == 0

    assert serve.span_ids("otel_traces_recent") == keys(spans)
    (stop,) = [event for event in serve.log_events() if event.get("event") == "serve.stop"]
    assert stop["responses"] == {"200": 1}
