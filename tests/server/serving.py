"""``closedloop serve`` as a real subprocess for tests, and plain HTTP to talk to it.

serve is started exactly as a user starts it (``python -m closedloop.cli serve``) on a free
port it picks itself (``--port 0``, read back from its ``serve.start`` log line), with its
store in the test's tmp directory; a test stops it with SIGTERM, checks it exits 0, and
only then opens the store, since chDB lets one process hold it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.rpc.error_details_pb2 import RetryInfo
from google.rpc.status_pb2 import Status
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

import closedloop.store
from _support.waiting import wait_for
from closedloop.sampling import SamplerConfig, SpanView, TailSampler

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
STOP_TIMEOUT_S = 120
"""Only keeps a broken run from hanging; a clean stop takes a second or two."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def status_message(self) -> Status:
        """The ``google.rpc.Status`` of an error reply, in whichever encoding it came."""
        status = Status()
        if self.headers.get("content-type") == JSON:
            json_format.Parse(self.body, status)
        else:
            status.ParseFromString(self.body)
        return status

    def retry_delay_s(self) -> int:
        """The ``RetryInfo`` detail's delay in seconds."""
        (detail,) = self.status_message().details
        info = RetryInfo()
        assert detail.Unpack(info)
        return int(info.retry_delay.seconds)


@dataclass
class Serve:
    process: subprocess.Popen[bytes]
    log: Path
    store_url: str
    port: int = 0
    exit_code: int | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request on a fresh connection; an iterable body goes chunked."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(
                method,
                path,
                body=body,
                headers=headers or {},
                encode_chunked=body is not None and not isinstance(body, bytes),
            )
            response = connection.getresponse()
            return Reply(
                response.status,
                {key.lower(): value for key, value in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def post(
        self, body: bytes | Iterable[bytes], content_type: str = PROTOBUF, **headers: str
    ) -> Reply:
        """POST /v1/traces; ``content_encoding="gzip"`` and the like become headers."""
        sent = {"Content-Type": content_type}
        sent.update({key.replace("_", "-").title(): value for key, value in headers.items()})
        return self.request("POST", "/v1/traces", body, sent)

    def health(self) -> dict[str, Any]:
        reply = self.request("GET", "/healthz")
        assert reply.status == 200, reply
        health: dict[str, Any] = json.loads(reply.body)
        return health

    def export(self, spans: list[ReadableSpan]) -> None:
        """Send with the OTel SDK's own OTLP/HTTP exporter (protobuf), as an app does."""
        exporter = OTLPSpanExporter(endpoint=self.traces_url)
        try:
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()

    def log_events(self) -> list[dict[str, Any]]:
        """serve's log, one JSON object per line."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Stop serve with ``sig`` and return its exit code (it drains and flushes first)."""
        if self.exit_code is None:
            self.process.send_signal(sig)
            try:
                self.exit_code = self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.exit_code = self.process.wait()
        return self.exit_code

    def rows(self, table: str, columns: str = "TraceId, SpanId") -> list[dict[str, Any]]:
        """Rows of a trace table, once serve has stopped."""
        assert self.exit_code is not None, "stop serve before opening its store"
        with closedloop.store.connect(self.store_url) as store:
            return store.query(f"SELECT {columns} FROM {store.database}.{table}")

    def span_ids(self, table: str) -> list[tuple[str, str]]:
        """(trace id, span id) of every row, sorted, duplicates kept."""
        return sorted((row["TraceId"], row["SpanId"]) for row in self.rows(table))


def start(
    tmp_path: Path, *options: str, store_url: str | None = None, name: str = "serve"
) -> Serve:
    """Start serve and wait until it answers ``/healthz``."""
    store_url = store_url or f"chdb://{tmp_path}/{name}-store"
    log = tmp_path / f"{name}.log"
    command = [sys.executable, "-m", "closedloop.cli", "serve", "--port=0", f"--store={store_url}"]
    # its own state directory (spool, keys), whatever fixtures have set up by now
    env = {
        **os.environ,
        "CLOSEDLOOP_HOME": str(tmp_path / f"{name}-home"),
        "PYTHONFAULTHANDLER": "1",  # a crash in native code leaves serve's Python stacks
    }
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*command, *options], stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path, env=env
        )
    serve = Serve(process, log, store_url)

    def started() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text()}")
        for line in log.read_text().splitlines():
            if '"serve.start"' in line:
                serve.port = json.loads(line)["port"]
                return True
        return False

    try:
        wait_for(started, 120, "serve did not log serve.start")
        wait_for(lambda: serve.request("GET", "/healthz").status == 200, 60, "no /healthz")
    except BaseException:
        serve.stop(signal.SIGKILL)
        raise
    return serve


@contextlib.contextmanager
def running(tmp_path: Path, *options: str, **kwargs: Any) -> Iterator[Serve]:
    """serve for the block; a block that stops it itself checks the exit code, else it is
    stopped (and checked) here."""
    serve = start(tmp_path, *options, **kwargs)
    try:
        yield serve
    except BaseException:
        serve.stop(signal.SIGKILL)
        raise
    assert serve.stop() == 0, serve.log.read_text()


# --- traffic ------------------------------------------------------------------------------


class SeededIds(IdGenerator):
    """Random ids from a seed: the same traffic, and so the same decisions, every run."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1


def traffic(seed: int, plain_traces: int = 60) -> list[list[ReadableSpan]]:
    """Traces of real SDK spans, each an LLM call with a child: first one with an error,
    one with feedback (a Contract 2 ``closedloop.feedback`` span), one of a new user, then
    ``plain_traces`` that only the policy's probabilistic rule can keep."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-bot"}), id_generator=SeededIds(seed)
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("closedloop.tests")
    traces = []
    kinds = ["error", "feedback", "new-user"] + ["plain"] * plain_traces
    for n, kind in enumerate(kinds):
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10 + n,
            "closedloop.user.new": kind == "new-user",
        }
        with tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as root:
            with tracer.start_as_current_span("tool lookup"):
                pass
            if kind == "feedback":
                with tracer.start_as_current_span(
                    "closedloop.feedback",
                    attributes={
                        "closedloop.feedback.kind": "explicit",
                        "closedloop.feedback.name": "thumbs",
                        "closedloop.feedback.value": 0.0,
                    },
                ) as feedback:
                    feedback.add_event(
                        "gen_ai.evaluation.result",
                        {"gen_ai.evaluation.name": "thumbs", "gen_ai.evaluation.score.value": 0.0},
                    )
            if kind == "error":
                root.set_status(trace.Status(trace.StatusCode.ERROR, "upstream timed out"))
        traces.append(list(exporter.get_finished_spans()))
        exporter.clear()
    provider.shutdown()
    return traces


def keys(spans: Iterable[ReadableSpan]) -> list[tuple[str, str]]:
    """(trace id, span id) as the store writes them, sorted."""
    return sorted(
        (trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id))
        for span in spans
    )


def kept_by(config: SamplerConfig, spans: Iterable[ReadableSpan]) -> list[tuple[str, str]]:
    """What closedloop's own TailSampler keeps of ``spans``, each trace decided whole."""
    kept: list[ReadableSpan] = []
    sampler = TailSampler(
        config, lambda views: kept.extend(v.source for v in views if v.source is not None)
    )
    sampler.ingest(SpanView.of(span) for span in spans)
    sampler.drain()
    return keys(kept)
