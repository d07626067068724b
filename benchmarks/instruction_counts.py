"""Instructions per LLM call, counted by valgrind's callgrind: the overhead benchmark's
configurations, counted instead of timed (issue 15).

On a shared 2-core VM, wall and CPU time per call move by 50-100 µs from run to run, more
than the margins the overhead goals are about. Instruction counts hardly move. Each
configuration runs in a process of its own under callgrind. It answers from the local
server's replies, recorded once and replayed through ``httpx2.MockTransport``: no server,
no sockets, no scheduler in the count. It runs twice, for ``SHORT`` and for ``LONG`` calls
after the same warm-up, and the difference over ``LONG - SHORT`` calls is its instructions
per call, with start-up and warm-up taken out. After the warm-up every object is collected
and frozen (``gc.freeze()``, as long-running apps do): the young generations are collected
as usual, so a call's garbage is counted, but no full collection over the SDK's own heap
lands in one run's calls and not the other's (one would move a figure by hundreds of
thousands per call). Figures then move by 0.1-0.2 % from run to run. The batch processor
never exports during a count (exporting is the same work for every configuration).

Each instrumentation's span attributes cost instructions in OTel's SDK (each one is checked
and stored on its own), so two more configurations carry exactly the attributes openai-v2
and closedloop's defaults put on their spans, on a hand-written span, set in one batch: the
least any instrumentation recording them pays. Over that floor is each one's own work.
A stream as long as a real answer's (100 chunks more) is counted too: per chunk, the openai
SDK itself costs far more than any instrumentation, and an instrumentation's work per chunk
shows there rather than in a short stream's fixed costs.
closedloop asks a stream for its token usage only where that is known to be safe (OpenAI's and
Azure's hosts, not the local server), so one more stream configuration asks as it would there.

Instructions are not time: cache misses, which make up much of an instrumentation's cost
inside a large SDK, are not counted. Use this to see a change's direction and size where
the timed benchmark cannot, not instead of it. Needs valgrind; ``make bench-instructions``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Tracer
from rich.console import Console
from rich.table import Table

import closedloop
from _overhead_worker import (
    CONFIGS,
    CONTEXT,
    KINDS,
    MESSAGES,
    MODEL,
    Call,
    CountingExporter,
    capture_off_attributes,
    instrument,
    recorded_attributes,
)
from closedloop.testing import OpenAICompatibleServer

WARMUP = 30
SHORT, LONG = 50, 250
# A stream as long as a real answer's: the local server echoes the user message one word per
# chunk, so a 100-word message makes 100 chunks more. Each such call is five times the
# instructions of the short stream's, so it is counted over fewer calls. A run's count moves
# by about 10 M whatever its length: over 60 calls, 0.2 M per call.
LONG_STREAM = "long-stream"
LONG_STREAM_WORDS = 100
LONG_STREAM_CALLS = (8, 5, 65)  # warm-up, short run, long run
_COLLECTED = re.compile(r"Collected : (\d+)")
_NEVER_MS = 24 * 3600 * 1000  # the batch processor's export delay: no export while counting
# Hand-written spans carrying what each instrumentation records: floor -> whose attributes.
FLOORS = {"openai-v2 attributes": "openai-v2", "closedloop attributes": "closedloop"}
# closedloop's defaults as on OpenAI's hosts: streams asked for their usage chunk.
ASKING_USAGE = "closedloop asking usage"


def record_replies(base_url: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    """The server's replies to ``messages`` as each configuration sends them (with and
    without a stream usage request), as JSON: status, headers, base64 body."""
    replies = {}
    for stream in (False, True):
        for usage in (False, True) if stream else (False,):
            body: dict[str, Any] = {"model": MODEL, "messages": messages, "stream": stream}
            if usage:
                body["stream_options"] = {"include_usage": True}
            reply = httpx2.post(f"{base_url}/chat/completions", json=body)
            headers = {
                name: value
                for name, value in reply.headers.items()
                if name.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            replies[f"{stream} {usage}"] = {
                "status": reply.status_code,
                "headers": headers,
                "body": base64.b64encode(reply.content).decode(),
            }
    return replies


def long_stream_messages() -> list[dict[str, str]]:
    """Messages the local server answers with a stream of ``LONG_STREAM_WORDS`` chunks more."""
    return [MESSAGES[0], {"role": "user", "content": " ".join(["word"] * LONG_STREAM_WORDS)}]


def replaying_client(replies: Mapping[str, Any]) -> openai.OpenAI:
    """An SDK client answered from ``replies``, as the server answered the same request."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        stream = body.get("stream") is True
        usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        reply = replies[f"{stream} {usage}"]
        return httpx2.Response(
            reply["status"], headers=reply["headers"], content=base64.b64decode(reply["body"])
        )

    transport = httpx2.MockTransport(answer)
    return openai.OpenAI(
        base_url="http://127.0.0.1:9/v1",
        api_key="bench",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def in_span_with(tracer: Tracer, call: Call, attributes: Mapping[str, Any]) -> Call:
    """The call in a hand-written span that gets ``attributes`` in one batch at its end."""

    def run(client: openai.OpenAI) -> None:
        with tracer.start_as_current_span(f"chat {MODEL}", kind=SpanKind.CLIENT) as span:
            call(client)
            span.set_attributes(attributes)

    return run


def run_calls(config: str, kind: str, calls: int, recorded: Path) -> None:
    """The worker: ``WARMUP + calls`` calls of ``kind`` under ``config``, then exit at once
    (no shutdown, no export: neither is a call's)."""
    setup = json.loads(recorded.read_text())
    provider = TracerProvider()
    processor = BatchSpanProcessor(
        CountingExporter(), max_queue_size=1_000_000, schedule_delay_millis=_NEVER_MS
    )
    provider.add_span_processor(processor)
    warmup = WARMUP
    if kind == LONG_STREAM:  # the stream call, answered with the long stream
        client = replaying_client(setup["long_replies"])
        kind, warmup = "stream", LONG_STREAM_CALLS[0]
    else:
        client = replaying_client(setup["replies"])
    if config in FLOORS:
        attributes = setup["floor_attributes"][FLOORS[config]][kind]
        run = in_span_with(provider.get_tracer("benchmark"), KINDS[kind], attributes)
    elif config == ASKING_USAGE:
        closedloop.instrument(
            tracer_provider=provider, user_hash_key="bench", stream_usage="always"
        )
        run = KINDS[kind]
    else:
        run = instrument(config, provider, setup["span_attributes"])(kind, KINDS[kind])
    with closedloop.context(**CONTEXT):
        for _ in range(warmup):
            run(client)
        gc.collect()
        gc.freeze()
        for _ in range(calls):
            run(client)
    sys.stdout.flush()
    os._exit(0)


def attributes_in_own_process(config: str, base_url: str) -> dict[str, dict[str, Any]]:
    """``recorded_attributes`` of ``config``, in a process of its own (see there)."""
    command = [sys.executable, __file__, "--attributes", config, base_url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"recording {config}'s span attributes failed:\n{done.stderr[-2000:]}")
    attributes: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return attributes


def count(config: str, kind: str, calls: int, recorded: Path) -> int:
    """Instructions callgrind counts for one worker run."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--worker",
        config,
        kind,
        str(calls),
        str(recorded),
    ]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the {config} {kind} worker failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_call(config: str, kind: str, recorded: Path) -> float:
    short, long = LONG_STREAM_CALLS[1:] if kind == LONG_STREAM else (SHORT, LONG)
    return (count(config, kind, long, recorded) - count(config, kind, short, recorded)) / (
        long - short
    )


def over(instructions: float, bare: float) -> str:
    return f"{(instructions - bare) / 1000:+,.0f} K ({instructions / bare - 1:+.1%})"


def table(result: Mapping[tuple[str, str], float]) -> Table:
    shown = Table(title="Instructions per call over the bare call (callgrind)")
    shown.add_column("per call")
    for config in CONFIGS[1:]:
        shown.add_column(config, justify="right")
    for kind in (*KINDS, LONG_STREAM):
        bare = result[("bare", kind)]
        cells = [over(result[(config, kind)], bare) for config in CONFIGS[1:]]
        shown.add_row(f"{kind} (bare: {bare / 1e6:.2f} M)", *cells)
    return shown


def own_work_table(
    result: Mapping[tuple[str, str], float], floor_attributes: Mapping[str, Any]
) -> Table:
    """Each instrumentation's instructions over its floor: its own work, attributes aside."""
    shown = Table(
        title="Own work per call: instructions over a hand-written span with the same attributes"
    )
    shown.add_column("per call")
    for config in FLOORS.values():
        shown.add_column(f"{config}: floor over bare", justify="right")
        shown.add_column(f"{config}: own work", justify="right")
    for kind in KINDS:
        bare = result[("bare", kind)]
        cells = []
        for floor, config in FLOORS.items():
            count = len(floor_attributes[config][kind])
            cells.append(f"{(result[(floor, kind)] - bare) / 1000:+,.0f} K ({count} attributes)")
            cells.append(f"{(result[(config, kind)] - result[(floor, kind)]) / 1000:+,.0f} K")
        shown.add_row(kind, *cells)
    return shown


def comparisons(result: Mapping[tuple[str, str], float]) -> list[str]:
    """The overhead goals' two comparisons, in instructions."""
    lines = []
    for kind in (*KINDS, LONG_STREAM):
        default, anchor = result[("closedloop", kind)], result[("openai-v2", kind)]
        off, span = result[("closedloop-capture-off", kind)], result[("bare-span", kind)]
        lines.append(
            f"{kind}: closedloop default {(default - anchor) / 1000:+,.0f} K vs openai-v2; "
            f"capture off {(off - span) / 1000:+,.0f} K vs bare span"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--attributes", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        config, kind, calls, recorded = args.worker
        run_calls(config, kind, int(calls), Path(recorded))
    if args.attributes:
        config, base_url = args.attributes
        print(json.dumps(recorded_attributes(config, base_url)))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit(
            "valgrind is not installed; it counts the instructions (apt install valgrind)"
        )
    console = Console(width=160)
    with tempfile.TemporaryDirectory() as directory:
        recorded = Path(directory) / "replies.json"
        with OpenAICompatibleServer() as server:
            setup = {
                "replies": record_replies(server.base_url, MESSAGES),
                "long_replies": record_replies(server.base_url, long_stream_messages()),
                "span_attributes": capture_off_attributes(server.base_url),
                "floor_attributes": {
                    config: attributes_in_own_process(config, server.base_url)
                    for config in FLOORS.values()
                },
            }
        recorded.write_text(json.dumps(setup))
        jobs = [(config, kind) for kind in KINDS for config in (*CONFIGS, *FLOORS)]
        jobs.append((ASKING_USAGE, "stream"))
        jobs += [(config, LONG_STREAM) for config in CONFIGS]
        warmup, short, long = LONG_STREAM_CALLS
        console.print(
            f"{len(jobs)} configurations x kinds, {WARMUP} warm-up calls, then {SHORT} and "
            f"{LONG} calls under callgrind; instructions per call = difference / {LONG - SHORT} "
            f"({LONG_STREAM}, {LONG_STREAM_WORDS} chunks more: {warmup}, then {short} and "
            f"{long})"
        )
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            counted = pool.map(lambda job: per_call(*job, recorded), jobs)
            result = dict(zip(jobs, counted, strict=True))
    console.print(table(result))
    for line in comparisons(result):
        console.print(line)
    console.print(own_work_table(result, setup["floor_attributes"]))
    bare = result[("bare", "stream")]
    asking, anchor = result[(ASKING_USAGE, "stream")], result[("openai-v2", "stream")]
    console.print(
        "stream, closedloop's defaults as on OpenAI's hosts (the usage chunk asked for, a "
        f"'usage' field on every chunk): {over(asking, bare)} over the bare call; "
        f"openai-v2, which never asks: {over(anchor, bare)}"
    )


if __name__ == "__main__":
    main()
