"""What closedloop costs per LLM call, measured against the local OpenAI-compatible server.

Three modes run interleaved in the same process, so machine noise hits them alike:
  bare        the openai SDK, uninstrumented (the baseline)
  manual-span the SDK call inside one hand-written span with as many attributes as
              closedloop records (the floor any OTel instrumentation pays)
  closedloop  closedloop.instrument() with content capture and redaction on
Prints the median per-call time for plain and streaming chat calls, then redaction cost
in microseconds per KB of text. Run: ``.venv/bin/python benchmarks/instrumentation_overhead.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from collections.abc import Callable, Sequence

import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from rich.console import Console
from rich.table import Table

import closedloop
from closedloop.privacy import RedactionPipeline
from closedloop.testing import OpenAICompatibleServer

MESSAGES = [
    {"role": "system", "content": "You are a helpful support assistant for an online shop."},
    {"role": "user", "content": "My parcel has not arrived yet, can you check the status please?"},
]
PLAIN_TEXT = (
    "Thanks for reaching out about your order. I checked the shipment and it left our "
    "warehouse yesterday afternoon; the carrier expects to deliver it within two working "
    "days. If it has not arrived by Friday, reply to this message and we will send a "
    "replacement or refund the full amount, whichever you prefer. "
)
PII_TEXT = (
    "Customer Ann Lee (ann.lee@example.com, +1 415 555 2671) paid with 4111 1111 1111 1111; "
    "refund to IBAN GB82 WEST 1234 5698 7654 32. Server 10.0.12.7 logged token "
    "sk-proj-abcdefghijklmnopqrstuvwx for the request. "
)


class DiscardingExporter(SpanExporter):
    """Exports nowhere, so the benchmark measures span work, not a backend."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def plain_call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)


def stream_call(client: openai.OpenAI) -> None:
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass


def manual_span(tracer, call: Callable[[openai.OpenAI], None], attribute_count: int):
    def run(client: openai.OpenAI) -> None:
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            call(client)
            for index in range(attribute_count):
                span.set_attribute(f"bench.attribute.{index}", index)

    return run


def measure(rounds: int, calls_per_round: int) -> dict[tuple[str, str], list[float]]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    tracer = provider.get_tracer("benchmark")
    samples: dict[tuple[str, str], list[float]] = {}
    kinds = {"plain": plain_call, "stream": stream_call}
    attribute_counts = {"plain": 30, "stream": 30}
    with OpenAICompatibleServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0)
        for call in kinds.values():
            call(client)
        for _ in range(rounds):
            for mode in ("bare", "manual-span", "closedloop"):
                if mode == "closedloop":
                    closedloop.instrument(tracer_provider=provider, user_hash_key="bench")
                for kind, call in kinds.items():
                    run = (
                        call
                        if mode != "manual-span"
                        else manual_span(tracer, call, attribute_counts[kind])
                    )
                    with closedloop.context(user_id="u-1", prompt_name="p", prompt_version="v1"):
                        for _ in range(calls_per_round):
                            started = time.perf_counter()
                            run(client)
                            samples.setdefault((mode, kind), []).append(
                                time.perf_counter() - started
                            )
                if mode == "closedloop":
                    closedloop.uninstrument()
    provider.shutdown()
    return samples


def redaction_us_per_kb(text: str, repeat: int = 2000) -> float:
    pipeline = RedactionPipeline()
    kilobyte = (text * (1024 // len(text) + 1))[:1024]
    seconds = min(timeit.repeat(lambda: pipeline.redact(kilobyte), number=repeat, repeat=5))
    return seconds / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50, help="calls per mode per round")
    args = parser.parse_args()
    samples = measure(args.rounds, args.calls)
    table = Table(title=f"Median per-call time, µs ({args.rounds} x {args.calls} calls per cell)")
    for column in ("call", "bare (baseline)", "manual span", "closedloop", "closedloop - bare"):
        table.add_column(column, justify="right")
    for kind in ("plain", "stream"):
        bare, manual, ours = (
            median_us(samples[(m, kind)]) for m in ("bare", "manual-span", "closedloop")
        )
        table.add_row(kind, f"{bare:.0f}", f"{manual:.0f}", f"{ours:.0f}", f"{ours - bare:+.0f}")
    console = Console(width=120)
    console.print(table)
    console.print(
        f"redaction: {redaction_us_per_kb(PLAIN_TEXT):.1f} µs/KB on text without PII, "
        f"{redaction_us_per_kb(PII_TEXT):.1f} µs/KB on PII-dense text"
    )


if __name__ == "__main__":
    main()
