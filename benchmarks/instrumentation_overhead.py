"""What closedloop costs per LLM call, measured against the local OpenAI-compatible server.

Three modes run interleaved in the same process, so machine noise hits them alike:
  bare        the openai SDK, uninstrumented (the baseline)
  manual-span the SDK call inside one hand-written span with as many attributes as
              closedloop records (the floor any OTel instrumentation pays)
  closedloop  closedloop.instrument() with content capture and redaction on
Prints the median per-call time for plain and streaming chat calls, then redaction cost
in microseconds per KB of text, then large prompts (a numeric CSV, prose, PII-dense text,
"1234567 " repeated): the redaction pipeline alone, and a chat call with that prompt without
closedloop and with it (content capped at its default size, and uncapped). The local server
echoes the prompt, so an instrumented call redacts the text twice: prompt and reply.
Run: ``.venv/bin/python benchmarks/instrumentation_overhead.py``.
"""

from __future__ import annotations

import argparse
import random
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


KB, MB = 1024, 1024 * 1024


def repeated(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def numeric_csv(size: int) -> str:
    """Rows of integers of every length and a float: numeric data, once the slowest to redact."""
    rng = random.Random(7)
    rows: list[str] = []
    while sum(map(len, rows)) < size:
        ints = [str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(5)]
        rows.append(",".join([*ints, f"{rng.random() * 1000:.4f}", str(rng.randint(0, 99999))]))
    return "\n".join(rows)[:size]


def distinct_pii(size: int) -> str:
    """E-mails, phone numbers, SSNs, IPs and tokens, each one different: nothing is reused."""
    lines = []
    for index in range(size // 150 + 1):
        lines.append(
            f"Customer {index} (user{index}@example.com, +1 415 555 {index % 10000:04d}) "
            f"SSN {100 + index % 800}-{10 + index % 89}-{1000 + index % 9000}, "
            f"host 10.{index % 250}.{index // 250 % 250}.7 token sk-{index:032d}. "
        )
    return "".join(lines)[:size]


LARGE_PROMPTS = {
    "numeric CSV, 200 KB": lambda: numeric_csv(200 * KB),
    "prose, 1 MB": lambda: repeated(PLAIN_TEXT, MB),
    "PII-dense (one sentence repeated), 1 MB": lambda: repeated(PII_TEXT, MB),
    "PII-dense (every value distinct), 1 MB": lambda: distinct_pii(MB),
    '"1234567 " repeated, 1 MB': lambda: repeated("1234567 ", MB),
}
UNCAPPED = 1 << 30  # max_content_chars that lets the whole prompt through to redaction


def redaction_ms(text: str, repeat: int = 3) -> float:
    pipeline = RedactionPipeline()
    return min(timeit.repeat(lambda: pipeline.redact(text), number=1, repeat=repeat)) * 1e3


def large_prompt_calls(prompts: dict[str, str], calls: int) -> dict[tuple[str, str], float]:
    """Median ms per chat call with each prompt, per mode, the modes interleaved per call."""
    modes = {"bare": None, "closedloop": {}, "uncapped": {"max_content_chars": UNCAPPED}}
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardingExporter()))
    samples: dict[tuple[str, str], list[float]] = {}
    with OpenAICompatibleServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="bench", max_retries=0)
        for _ in range(calls):
            for name, prompt in prompts.items():
                messages = [{"role": "user", "content": prompt}]
                for mode, options in modes.items():
                    if options is not None:
                        closedloop.instrument(
                            tracer_provider=provider, user_hash_key="bench", **options
                        )
                    started = time.perf_counter()
                    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                    samples.setdefault((name, mode), []).append(time.perf_counter() - started)
                    if options is not None:
                        closedloop.uninstrument()
    provider.shutdown()
    return {key: statistics.median(values) * 1e3 for key, values in samples.items()}


def large_prompt_table(calls: int) -> Table:
    prompts = {name: make() for name, make in LARGE_PROMPTS.items()}
    call_ms = large_prompt_calls(prompts, calls)
    table = Table(title=f"Large prompts, ms (median of {calls} calls; redaction: best of 3)")
    columns = ("prompt", "redaction alone", "call: bare", "closedloop", "closedloop, uncapped")
    for column in columns:
        table.add_column(column, justify="right")
    for name, prompt in prompts.items():
        calls_row = (call_ms[(name, mode)] for mode in ("bare", "closedloop", "uncapped"))
        table.add_row(name, f"{redaction_ms(prompt):.0f}", *(f"{ms:.0f}" for ms in calls_row))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50, help="calls per mode per round")
    parser.add_argument("--large-calls", type=int, default=3, help="calls per large prompt")
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
    console.print(large_prompt_table(args.large_calls))


if __name__ == "__main__":
    main()
