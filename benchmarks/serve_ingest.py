"""``closedloop serve`` end-to-end ingest next to the real collector's, on the same traffic.

Prints one table: spans/s and peak RSS of serve (OTLP/HTTP protobuf -> rows and views ->
recent tier in chDB, acknowledged once written ahead to the spool -> tail sampler -> kept
traces to ``otel_traces``; CPU and peak RSS include its mapping worker processes)
and of the real collector, ``.build/otelcol-closedloop`` (``make collector``), running the
production pipelines of ``collector/otel-collector.yaml`` with each ClickHouse exporter
replaced by a file exporter (recent tier: ``memory_limiter`` -> file; sampled tier:
``memory_limiter`` -> ``tail_sampling`` -> file). Target: >= 20,000 spans/s on 2 cores.

Traffic: the tests' generator (``tests/_support/traffic.py``), live timestamps (the past
day, so the recent tier's TTL keeps every row), errors, new users and late feedback, in the
generator's arrival order (calls first, feedback after, most of it following decisions
already cached). It is serialised once, up front, into protobuf request bodies as the SDK's
OTLP/HTTP exporter sends them; ``--senders`` threads post them on keep-alive connections
and, as an OTLP exporter does, retry 429/503 after ``Retry-After`` (counted).

Timing: both sides get a copy of the production policy with ``decision_wait`` set to
``--decision-wait`` (default 1s, not production's 10s, so the run measures the pipeline and
not a fixed wait), and two times are reported from the first byte sent:
- *acknowledged*: every request answered 200 (for serve: its spans inserted in the recent
  tier or fsynced in the spool; for the collector: written to the recent file's buffer);
- *complete*: every trace decided and every span in its tier(s), read from serve's
  ``/healthz`` and from the collector's own Prometheus telemetry, held for two polls in a
  row (a sampler counts a decision just before it hands the kept spans on).
The end-to-end rate (to *complete*) is the one compared with the target. After the stop,
the stores are counted: serve's chDB tables, the collector's output files. serve's
scheduled rescue is pushed out of the run (``--rescue-every``); the rescue serve runs at
shutdown copies late-feedback traces into ``otel_traces``, shown apart from the kept ones.

``--profile FILE`` runs serve under cProfile in every thread (request handlers, exporter
workers, sampler tick), from the first request until complete, and prints the top
functions. By default it counts each thread's CPU time, what 2 cores run out of (chDB's
own threads are not Python threads: only the CPU of the thread calling chDB shows);
``--profile-clock wall`` shows where requests wait instead (as lock acquires and polls,
and GIL waits inside whatever runs). The rates of such a run include the profiler's cost.

Run: ``.venv/bin/python benchmarks/serve_ingest.py [--spans 200000 --senders 4]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import math
import os
import pstats
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

# the tests' traffic generator, OTLP encoding and process helpers, not copies of them
from _support.collector import exported_spans, free_port, running_collector  # noqa: E402
from _support.traffic import generate_traffic  # noqa: E402
from _support.waiting import wait_for  # noqa: E402
from server.serving import Serve, start  # noqa: E402
from server.support import protobuf_request  # noqa: E402

COLLECTOR = ROOT / ".build" / "otelcol-closedloop"
PRODUCTION_CONFIG = ROOT / "collector" / "otel-collector.yaml"
TARGET_SPANS_PER_S = 20_000
POLL_S = 0.05
MAX_CONNECTION_ERRORS = 5
PROTOBUF = {"Content-Type": "application/x-protobuf"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROFILE_ENV = "CLOSEDLOOP_BENCH_PROFILE"
# Loaded by serve's interpreter (a sitecustomize on PYTHONPATH) with --profile, so serve
# still starts as a user starts it: a profiler per thread; SIGUSR1 forgets what they saw so
# far (start-up), SIGUSR2 writes them, merged, to the file and stops them.
PROFILER = """\
import cProfile, os, pstats, signal, threading, time

# CPU time of the thread (what 2 cores run out of), or wall time (where requests wait)
_clock = time.thread_time if os.environ["CLOSEDLOOP_BENCH_PROFILE_CLOCK"] == "cpu" else None


def _profiler():
    return cProfile.Profile(_clock) if _clock else cProfile.Profile()


_main = _profiler()
_profiles = [_main]
# what runs every thread, whatever its class overrides (anyio's workers override run)
_bootstrap = threading.Thread._bootstrap_inner


def _profiled_bootstrap(self):
    profile = _profiler()
    _profiles.append(profile)
    profile.enable()
    try:
        _bootstrap(self)
    finally:
        profile.disable()


def _restart(signum, frame):
    for profile in list(_profiles):
        profile.clear()


def _dump(signum, frame):
    stats = pstats.Stats()
    for profile in list(_profiles):
        try:
            stats.add(profile)
        except TypeError:  # a thread that ran no Python code since the restart
            pass
    path = os.environ["CLOSEDLOOP_BENCH_PROFILE"]
    stats.dump_stats(path + ".part")
    os.replace(path + ".part", path)


threading.Thread._bootstrap_inner = _profiled_bootstrap
signal.signal(signal.SIGUSR1, _restart)
signal.signal(signal.SIGUSR2, _dump)
_main.enable()
"""


@dataclass(frozen=True)
class Traffic:
    """Request bodies (and how many spans each holds), serialised once for both sides."""

    bodies: list[tuple[bytes, int]]
    spans: int
    traces: int

    @property
    def megabytes(self) -> float:
        return sum(len(body) for body, _ in self.bodies) / 1e6


def make_traffic(spans: int, per_request: int, seed: int) -> Traffic:
    """``spans`` generated spans (the first ones of enough app requests) as bodies."""
    requests = math.ceil(spans / 5)  # the generator makes about 5.7 spans per request
    while True:
        generated = generate_traffic(requests, seed=seed, days=1, end_ns=time.time_ns()).spans
        if len(generated) >= spans:
            break
        requests = requests * 3 // 2
    generated = generated[:spans]
    bodies = [
        (protobuf_request(part).SerializeToString(), len(part))
        for part in (
            generated[start : start + per_request] for start in range(0, spans, per_request)
        )
    ]
    return Traffic(bodies, spans, len({span.context.trace_id for span in generated}))


@dataclass
class Sent:
    """What the senders saw."""

    acknowledged: int = 0
    rejected: int = 0
    retries: int = 0
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_share: float = 0.0
    """The benchmark process's CPU while sending, as a share of one core."""


def send(port: int, traffic: Traffic, senders: int, timeout: float) -> Sent:
    """Post every body from ``senders`` threads, each on one keep-alive connection; a body
    still refused after ``timeout`` seconds of retries, or after a few connection errors in
    a row, is a failure."""
    sent = Sent()
    lock = threading.Lock()

    def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
        give_up, errors = time.monotonic() + timeout, 0
        while True:
            try:
                connection.request("POST", "/v1/traces", body, PROTOBUF)
                response = connection.getresponse()
                reply = response.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()  # reopened by the next request
                errors += 1
                with lock:
                    sent.reconnects += 1
                if errors == MAX_CONNECTION_ERRORS:
                    return 0, repr(error).encode()
                continue
            errors = 0
            if response.status not in (429, 503) or time.monotonic() > give_up:
                return response.status, reply
            with lock:
                sent.retries += 1
            time.sleep(float(response.getheader("Retry-After") or 1))

    def sender(first: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        for body, spans in traffic.bodies[first::senders]:
            status, reply = post(connection, body)
            with lock:
                if status != 200:
                    sent.failures.append(f"{status}: {reply[:200]!r}")
                    continue
                answer = ExportTraceServiceResponse.FromString(reply)
                rejected = answer.partial_success.rejected_spans
                sent.rejected += rejected
                sent.acknowledged += spans - rejected
        connection.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    cpu_before = _own_cpu_s()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.seconds = time.perf_counter() - started
    sent.cpu_share = (_own_cpu_s() - cpu_before) / sent.seconds
    return sent


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_status_mb(pid: int, key: str) -> float:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of ``pid``, from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def _proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``: serve's mapping workers (and
    multiprocessing's resource tracker)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and of its live children (serve's mapping workers, which it
    starts before it answers)."""
    return _proc_cpu_s(pid) + sum(_proc_cpu_s(child) for child in _children(pid))


def _tree_mb(pid: int, key: str) -> float:
    """``key`` (VmRSS, or VmHWM: the peak) of ``pid`` plus each live child's; for the peak,
    an upper bound of their peak together."""
    return sum(_proc_status_mb(each, key) for each in (pid, *_children(pid)))


def wait_complete(snapshot: Callable[[], tuple[bool, object]], timeout: float) -> float:
    """perf_counter time at which ``snapshot`` first said done and then read the same state
    on the next poll (a counter that still moves means it was not done)."""
    deadline = time.monotonic() + timeout
    previous: tuple[float, object] | None = None
    while time.monotonic() < deadline:
        at = time.perf_counter()
        done, state = snapshot()
        if done and previous is not None and previous[1] == state:
            return previous[0]
        previous = (at, state) if done else None
        time.sleep(POLL_S)
    raise TimeoutError(f"not complete after {timeout:.0f} s")


@dataclass
class Result:
    """One side's run, in the table's terms."""

    sent: Sent
    complete_s: float
    recent: int
    kept: int
    sampled_traces: int
    not_sampled_traces: int
    start_rss_mb: float
    peak_rss_mb: float
    cpu_s: float
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def policy_document(decision_wait: str) -> dict[str, Any]:
    """The production collector YAML with ``decision_wait`` set, for both sides."""
    document: dict[str, Any] = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    document["processors"]["tail_sampling"]["decision_wait"] = decision_wait
    return document


# --- closedloop serve ----------------------------------------------------------------------


def run_serve(workdir: Path, traffic: Traffic, args: argparse.Namespace) -> Result:
    policy = workdir / "policy.yaml"
    policy.write_text(yaml.safe_dump(policy_document(args.decision_wait)))
    options = [f"--policy={policy}", f"--rescue-every={args.rescue_every}", *args.serve_option]
    try:
        with _profiled(args.profile, args.profile_clock, workdir):
            serve = start(workdir, *options)
    except AssertionError as error:
        log = (workdir / "serve.log").read_text()[-4000:]
        raise RuntimeError(f"serve did not start ({error}); its log ends:\n{log}") from None
    try:
        pid = serve.process.pid
        if args.profile:
            os.kill(pid, signal.SIGUSR1)  # profile from here on
        start_rss, cpu_before = _tree_mb(pid, "VmRSS"), _tree_cpu_s(pid)
        started = time.perf_counter()
        sent = send(serve.port, traffic, args.senders, args.timeout)
        done_at = wait_complete(lambda: _serve_state(serve, sent), args.timeout)
        cpu, peak_rss = _tree_cpu_s(pid) - cpu_before, _tree_mb(pid, "VmHWM")
        pipeline = serve.health()["pipeline"]
        if args.profile:
            os.kill(pid, signal.SIGUSR2)  # to here, not the shutdown
            wait_for(args.profile.exists, 120, f"serve wrote no profile to {args.profile}")
    except BaseException:
        serve.stop()
        raise
    if serve.stop() != 0:
        raise RuntimeError(f"serve did not stop cleanly:\n{serve.log.read_text()}")
    (stop,) = [event for event in serve.log_events() if event.get("event") == "serve.stop"]
    rescued = stop["pipeline"]["rescue"]["spans"]
    recent, recent_distinct = _count(serve, "otel_traces_recent")
    sampled_rows, sampled_distinct = _count(serve, "otel_traces")
    decided = pipeline["sampler"]["traces_decided"]
    result = Result(
        sent,
        done_at - started,
        recent,
        pipeline["spans_kept"],
        decided.get("sampled", 0),
        sum(decided.values()) - decided.get("sampled", 0),
        start_rss,
        peak_rss,
        cpu,
    )
    result.notes.append(
        f"serve: otel_traces holds {sampled_rows:,} rows after the stop: {result.kept:,} kept "
        f"by the sampler + {rescued:,} late-feedback spans rescued at shutdown."
    )
    if recent != sent.acknowledged:
        result.problems.append(f"serve: {recent:,} recent rows for {sent.acknowledged:,} acked")
    if sampled_rows != result.kept + rescued:
        result.problems.append(f"serve: otel_traces {sampled_rows:,} != kept + rescued")
    for table, rows, distinct in (
        ("otel_traces_recent", recent, recent_distinct),
        ("otel_traces", sampled_rows, sampled_distinct),
    ):
        if rows != distinct:
            result.problems.append(f"serve: {rows - distinct:,} duplicate spans in {table}")
    store = pipeline["store"]
    if store["dropped_spans"] or store["rejected_spans"]:
        result.problems.append(f"serve: exporter dropped or rejected spans: {store}")
    return result


@contextlib.contextmanager
def _profiled(output: Path | None, clock: str, workdir: Path) -> Iterator[None]:
    """With ``output``, serve started in the block profiles every thread on ``clock``
    (``cpu`` or ``wall``), from SIGUSR1, and writes the profile to ``output`` on SIGUSR2."""
    if output is None:
        yield
        return
    site = workdir / "profiler"
    site.mkdir()
    (site / "sitecustomize.py").write_text(PROFILER)
    names = ("PYTHONPATH", PROFILE_ENV, f"{PROFILE_ENV}_CLOCK")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), saved["PYTHONPATH"]]))
    os.environ[PROFILE_ENV] = str(output)
    os.environ[f"{PROFILE_ENV}_CLOCK"] = clock
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _serve_state(serve: Serve, sent: Sent) -> tuple[bool, object]:
    """Done when every acknowledged span is accepted, every trace decided, and the
    exporter has inserted what both tiers were given, with nothing queued or spooled."""
    health = serve.health()
    pipeline = health["pipeline"]
    sampler, store = pipeline["sampler"], pipeline["store"]
    settled = sum(sampler["traces_decided"].values()) + sampler["traces_evicted_undecided"]
    written = store["exported_spans"] + store["dropped_spans"] + store["rejected_spans"]
    done = (
        health["requests_in_flight"] == 0
        and pipeline["spans_accepted"] == sent.acknowledged
        and settled == sampler["traces_received"]
        and store["queued_spans"] == 0
        and store["spool_spans"] == 0
        and written == pipeline["spans_accepted"] + pipeline["spans_kept"]
    )
    return done, (pipeline["spans_kept"], store["exported_spans"], settled)


def _count(serve: Serve, table: str) -> tuple[int, int]:
    """Rows of ``table``, and distinct (trace, span) among them."""
    (row,) = serve.rows(table, "count() AS n, uniqExact(TraceId, SpanId) AS spans")
    return int(row["n"]), int(row["spans"])


# --- the collector -------------------------------------------------------------------------


def collector_config(
    workdir: Path, http_port: int, metrics_port: int, decision_wait: str
) -> dict[str, Any]:
    """The production pipelines, each ``clickhouse/NAME`` exporter a ``file/NAME`` one
    (other exporters, e.g. Jaeger, left out), with the collector's metrics on a port."""
    production = policy_document(decision_wait)
    exporters: dict[str, Any] = {}
    pipelines: dict[str, Any] = {}
    for name, pipeline in production["service"]["pipelines"].items():
        files = []
        for exporter in pipeline["exporters"]:
            kind, _, tier = exporter.partition("/")
            if kind == "clickhouse":
                exporters[f"file/{tier}"] = {"path": str(workdir / f"collector-{tier}.json")}
                files.append(f"file/{tier}")
        pipelines[name] = {**pipeline, "receivers": ["otlp"], "exporters": files}
    used = {processor for pipeline in pipelines.values() for processor in pipeline["processors"]}
    return {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": f"127.0.0.1:{http_port}"}}}},
        "processors": {name: production["processors"][name] for name in sorted(used)},
        "exporters": exporters,
        "service": {
            "telemetry": {
                "logs": {"level": "warn"},
                "metrics": {
                    "level": "normal",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {
                                    "prometheus": {"host": "127.0.0.1", "port": metrics_port}
                                }
                            }
                        }
                    ],
                },
            },
            "pipelines": pipelines,
        },
    }


def run_collector(workdir: Path, traffic: Traffic, args: argparse.Namespace) -> Result:
    http_port, metrics_port = free_port(), free_port()
    config = collector_config(workdir, http_port, metrics_port, args.decision_wait)
    with running_collector(config, workdir, http_port) as process:
        pid = process.pid
        start_rss, cpu_before = _proc_status_mb(pid, "VmRSS"), _proc_cpu_s(pid)
        started = time.perf_counter()
        sent = send(http_port, traffic, args.senders, args.timeout)
        done_at = wait_complete(lambda: _collector_state(metrics_port, sent), args.timeout)
        cpu, peak_rss = _proc_cpu_s(pid) - cpu_before, _proc_status_mb(pid, "VmHWM")
        metrics = _metrics(metrics_port)
    # stopped (SIGTERM flushes the file exporters): count what the files hold
    recent = len(exported_spans(workdir / "collector-recent.json"))
    kept = len(exported_spans(workdir / "collector-sampled.json"))
    sampled = metrics.sum(
        "otelcol_processor_tail_sampling_global_count_traces_sampled", 'sampled="true"'
    )
    decided = metrics.sum("otelcol_processor_tail_sampling_global_count_traces_sampled")
    result = Result(
        sent,
        done_at - started,
        recent,
        kept,
        int(sampled),
        int(decided - sampled),
        start_rss,
        peak_rss,
        cpu,
    )
    if recent != sent.acknowledged:
        result.problems.append(f"collector: {recent:,} recent spans for {sent.acknowledged:,}")
    if kept != metrics.sum("otelcol_exporter_sent_spans", 'exporter="file/sampled"'):
        result.problems.append("collector: the sampled file differs from the exporter's count")
    return result


@dataclass(frozen=True)
class Metrics:
    """The collector's Prometheus exposition: ``name{labels}`` -> value."""

    values: dict[str, float]

    def sum(self, name: str, label: str = "") -> float:
        """Sum over series of ``name`` whose labels contain ``label``."""
        return sum(
            value
            for series, value in self.values.items()
            if series.partition("{")[0].removesuffix("_total") == name and label in series
        )


def _metrics(port: int) -> Metrics:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return Metrics(values)


def _collector_state(port: int, sent: Sent) -> tuple[bool, object]:
    """Done when the receiver took every acknowledged span, the recent file exporter sent
    them all, and the tail sampler decided every trace it received."""
    metrics = _metrics(port)
    accepted = metrics.sum("otelcol_receiver_accepted_spans")
    recent = metrics.sum("otelcol_exporter_sent_spans", 'exporter="file/recent"')
    kept = metrics.sum("otelcol_exporter_sent_spans", 'exporter="file/sampled"')
    received = metrics.sum("otelcol_processor_tail_sampling_new_trace_id_received")
    decided = metrics.sum("otelcol_processor_tail_sampling_global_count_traces_sampled")
    done = accepted == sent.acknowledged and recent == accepted and decided == received
    return done, (recent, kept, decided)


# --- the report ----------------------------------------------------------------------------


def report(
    traffic: Traffic, results: dict[str, Result], args: argparse.Namespace, load: str
) -> Table:
    names = list(results)
    table = Table(
        title=f"{traffic.spans:,} spans ({traffic.traces:,} traces, {len(traffic.bodies)} "
        f"protobuf requests of {args.per_request}, {traffic.megabytes:.0f} MB) from "
        f"{args.senders} senders, decision_wait {args.decision_wait}, "
        f"{os.cpu_count()} cores, load {load}",
        caption=f"target: >= {TARGET_SPANS_PER_S:,} spans/s end to end on 2 cores, memory bounded",
    )
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")

    def row(label: str, cell: Callable[[Result], str]) -> None:
        table.add_row(label, *(cell(results[name]) for name in names))

    def rate(result: Result) -> float:
        return traffic.spans / result.complete_s

    row("spans sent", lambda r: f"{traffic.spans:,}")
    row("acknowledged (200)", lambda r: f"{r.sent.acknowledged:,}")
    row("rejected (partial success)", lambda r: f"{r.sent.rejected:,}")
    row("failed requests", lambda r: f"{len(r.sent.failures):,}")
    row("retries after 429/503", lambda r: f"{r.sent.retries:,}")
    row("reconnects", lambda r: f"{r.sent.reconnects:,}")
    row("stored, recent tier", lambda r: f"{r.recent:,}")
    row("stored, kept by the sampler", lambda r: f"{r.kept:,}")
    row("traces sampled / not", lambda r: f"{r.sampled_traces:,} / {r.not_sampled_traces:,}")
    row("all acknowledged after", lambda r: f"{r.sent.seconds:.2f} s")
    row("complete after", lambda r: f"{r.complete_s:.2f} s")
    row("ingest spans/s (acknowledged)", lambda r: f"{traffic.spans / r.sent.seconds:,.0f}")
    row("end-to-end spans/s (complete)", lambda r: f"[bold]{rate(r):,.0f}[/bold]")
    row(
        f"target {TARGET_SPANS_PER_S:,} spans/s",
        lambda r: (
            "[green]met[/green]"
            if rate(r) >= TARGET_SPANS_PER_S
            else f"[red]not met ({rate(r) / TARGET_SPANS_PER_S:.0%})[/red]"
        ),
    )
    row("RSS before sending (+ workers')", lambda r: f"{r.start_rss_mb:,.0f} MB")
    row("peak RSS (VmHWM, + workers')", lambda r: f"{r.peak_rss_mb:,.0f} MB")
    row("server CPU (of 2 cores)", lambda r: f"{r.cpu_s:.1f} s ({r.cpu_s / r.complete_s:.0%})")
    row("server CPU per span", lambda r: f"{r.cpu_s / traffic.spans * 1e6:,.0f} µs")
    row("sender CPU while sending", lambda r: f"{r.sent.cpu_share:.1%} of a core")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=200_000, help="spans to send")
    parser.add_argument("--per-request", type=int, default=512, help="spans per request")
    parser.add_argument("--senders", type=int, default=4, help="concurrent connections")
    parser.add_argument("--seed", type=int, default=11, help="traffic generator seed")
    parser.add_argument(
        "--decision-wait", default="1s", help="tail_sampling decision_wait for both sides"
    )
    parser.add_argument(
        "--rescue-every", default="1h", help="serve's rescue schedule (out of the run)"
    )
    parser.add_argument(
        "--serve-option",
        action="append",
        default=[],
        help="extra serve option, e.g. --serve-option=--max-queue-spans=50000 (repeatable)",
    )
    parser.add_argument("--only", choices=("serve", "collector"), help="run one side only")
    parser.add_argument("--profile", type=Path, help="write a cProfile of serve to this file")
    parser.add_argument(
        "--profile-clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="profile each thread's CPU time (default) or wall time (waits included)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up after (s)")
    args = parser.parse_args()
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.unlink(missing_ok=True)
    if args.only != "serve" and not COLLECTOR.exists():
        sys.exit(
            f"{COLLECTOR} is missing: build it with `make collector` (needs Go), "
            "or pass --only serve"
        )
    console = Console(width=130)
    console.print(f"generating and encoding {args.spans:,} spans ...")
    traffic = make_traffic(args.spans, args.per_request, args.seed)
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="closedloop-serve-bench-"))
    results: dict[str, Result] = {}
    try:
        # the collector first: counting serve's store afterwards loads chDB in this process
        if args.only != "serve":
            console.print("the collector ...")
            results["collector (file exporters)"] = run_collector(workdir, traffic, args)
        if args.only != "collector":
            console.print("closedloop serve ...")
            label = "serve (chDB, under cProfile)" if args.profile else "serve (chDB)"
            results[label] = run_serve(workdir, traffic, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = dict(reversed(list(results.items())))  # serve first
    console.print(report(traffic, results, args, load))
    console.print(
        "serve does more than the collector pipeline: it converts each span to rows of a "
        "ClickHouse schema and inserts both tiers (and the typed tables behind the views) "
        "into chDB, acknowledging only inserted or fsynced spans; the collector writes "
        "OTLP JSON to two files and acknowledges once they are buffered. Kept spans differ "
        "when one side is slower: feedback that arrives after its trace was decided follows "
        "the cached decision (dropped if not sampled) instead of making the trace sampled."
    )
    for result in results.values():
        for note in result.notes:
            console.print(note)
    problems = [problem for result in results.values() for problem in result.problems]
    problems += [
        f"{name}: {failure}" for name, r in results.items() for failure in r.sent.failures[:3]
    ]
    if args.profile:
        print_profile(console, args.profile, args.profile_clock)
    if problems:
        console.print("[red]" + "\n".join(problems))
        sys.exit(1)


def print_profile(console: Console, path: Path, clock: str) -> None:
    """The 25 functions with the most cumulative time, then the most own time."""
    console.print(f"cProfile of serve, every thread, {clock} time: {path}")
    stats = pstats.Stats(str(path), stream=sys.stdout).strip_dirs()
    for order in ("cumulative", "tottime"):
        stats.sort_stats(order).print_stats(25)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
