"""Redaction cost: a typical chat turn, µs per KB of different texts, a conversation's
message content, and large prompts.

Redaction is closedloop's largest per-byte cost, and text full of digits or PII is where a
detector goes slow, so each kind of text is measured on its own. Large prompts are sent
through a real call too: the local server echoes the prompt, so an instrumented call
redacts the text twice (prompt and reply).
"""

from __future__ import annotations

import random
import statistics
import time
import timeit
from collections.abc import Callable

import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from rich.table import Table

import closedloop
from _overhead_worker import MESSAGES, MODEL, CountingExporter
from closedloop.instrumentation._settings import DEFAULT_MAX_CONTENT_CHARS
from closedloop.instrumentation.openai._content import (
    ContentScrubber,
    chat_messages_json,
    written_messages,
)
from closedloop.privacy import RedactionPipeline

KB, MB = 1024, 1024 * 1024
TURN_GOAL_US = 10.0  # issue 15: a typical chat turn
PII_GOAL_US_PER_KB = 100.0  # issue 15: PII-dense text

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
    lines: list[str] = []
    length = index = 0
    while length < size:
        line = (
            f"Customer {index} (user{index}@example.com, +1 415 555 {index % 10000:04d}) "
            f"SSN {100 + index % 800}-{10 + index % 89}-{1000 + index % 9000}, "
            f"host 10.{index % 250}.{index // 250 % 250}.7 token sk-{index:032d}. "
        )
        lines.append(line)
        length += len(line)
        index += 1
    return "".join(lines)[:size]


# name -> (text of a given size, whether it is PII-dense, size sent as a large prompt)
TEXTS: dict[str, tuple[Callable[[int], str], bool, int]] = {
    "prose": (lambda size: repeated(PLAIN_TEXT, size), False, MB),
    "PII-dense, one sentence repeated": (lambda size: repeated(PII_TEXT, size), True, MB),
    "PII-dense, every value distinct": (distinct_pii, True, MB),
    "numeric CSV": (numeric_csv, False, 200 * KB),
    '"1234567 " repeated': (lambda size: repeated("1234567 ", size), False, MB),
}
UNCAPPED = 1 << 30  # max_content_chars that lets the whole prompt through to redaction


def best_us(action: Callable[[], object]) -> float:
    """µs per action, best of 5 repeats: the run least disturbed by the machine."""
    timer = timeit.Timer(action)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def redaction_costs() -> tuple[float, float, dict[str, float]]:
    """µs to redact a typical turn (both messages) the first time and once seen before
    (the pipeline remembers recent texts), and µs/KB of each text, never remembered, at
    the most closedloop redacts per attribute (``max_content_chars``)."""
    first_time = RedactionPipeline(remember=False)
    remembering = RedactionPipeline()
    contents = [message["content"] for message in MESSAGES]
    turn = best_us(lambda: [first_time.redact(content) for content in contents])
    seen = best_us(lambda: [remembering.redact(content) for content in contents])
    size = DEFAULT_MAX_CONTENT_CHARS
    per_kb = {}
    for name, (make, _, _) in TEXTS.items():
        text = make(size)
        per_kb[name] = best_us(lambda text=text: first_time.redact(text)) * KB / len(text)
    return turn, seen, per_kb


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def redaction_table(turn_us: float, seen_us: float, per_kb: dict[str, float]) -> Table:
    table = Table(title=f"Redaction (best of 5; texts of {DEFAULT_MAX_CONTENT_CHARS // KB} KB)")
    table.add_column("text")
    for column in ("redaction", "goal", ""):
        table.add_column(column, justify="right")
    table.add_row(
        "typical chat turn (2 short messages, no PII)",
        f"{turn_us:.1f} µs",
        f"< {TURN_GOAL_US:.0f} µs",
        verdict(turn_us < TURN_GOAL_US),
    )
    table.add_row("the same turn, seen before (remembered)", f"{seen_us:.1f} µs", "", "")
    for name, us_per_kb in per_kb.items():
        pii_dense = TEXTS[name][1]
        goal = f"< {PII_GOAL_US_PER_KB:.0f} µs/KB" if pii_dense else ""
        met = verdict(us_per_kb < PII_GOAL_US_PER_KB) if pii_dense else ""
        table.add_row(name, f"{us_per_kb:.1f} µs/KB", goal, met)
    return table


def conversation(turns: int) -> list[dict[str, str]]:
    """A system prompt and ``turns`` questions and answers, as an app resends them."""
    messages = [MESSAGES[0]]
    for turn in range(turns):
        messages.append(
            {"role": "user", "content": f"Question {turn}: my parcel from Monday is not here."}
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"Sorry about that! Order {turn} left on Friday; "
                "the carrier expects to deliver it within 2 working days.",
            }
        )
    return messages


def conversation_table(turn_counts: tuple[int, ...] = (0, 5, 20)) -> Table:
    """µs to write the input messages attribute of a call that resends a conversation:
    every message written anew (as before closedloop remembered written messages) and
    taken from that memory (as on an app's next turn, less its two new messages)."""
    pipeline = RedactionPipeline()
    table = Table(title="Input messages of a conversation, µs per call (best of 5)")
    for column in ("messages", "written anew", "remembered"):
        table.add_column(column, justify="right")
    for turns in turn_counts:
        messages = conversation(turns)
        written = written_messages(pipeline)
        anew = best_us(
            lambda m=messages: chat_messages_json(ContentScrubber(pipeline, UNCAPPED), m)
        )
        remembered = best_us(
            lambda m=messages, w=written: chat_messages_json(
                ContentScrubber(pipeline, UNCAPPED, w), m
            )
        )
        table.add_row(str(len(messages)), f"{anew:.1f}", f"{remembered:.1f}")
    return table


def large_prompt_calls(
    base_url: str, prompts: dict[str, str], calls: int
) -> dict[tuple[str, str], float]:
    """Median ms per chat call with each prompt, per mode, the modes interleaved per call."""
    modes = {"bare": None, "closedloop": {}, "uncapped": {"max_content_chars": UNCAPPED}}
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(CountingExporter()))
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(calls):
        for name, prompt in prompts.items():
            messages = [{"role": "user", "content": prompt}]
            for mode, options in modes.items():
                if options is not None:
                    closedloop.instrument(
                        tracer_provider=provider, user_hash_key="bench", **options
                    )
                started = time.perf_counter()
                client.chat.completions.create(model=MODEL, messages=messages)
                samples.setdefault((name, mode), []).append(time.perf_counter() - started)
                if options is not None:
                    closedloop.uninstrument()
    provider.shutdown()
    return {key: statistics.median(values) * 1e3 for key, values in samples.items()}


def large_prompt_table(base_url: str, calls: int) -> Table:
    prompts = {
        f"{name}, {size // KB} KB" if size < MB else f"{name}, {size // MB} MB": make(size)
        for name, (make, _, size) in TEXTS.items()
    }
    call_ms = large_prompt_calls(base_url, prompts, calls)
    pipeline = RedactionPipeline(remember=False)
    table = Table(title=f"Large prompts, ms (median of {calls} calls; redaction: best of 3)")
    columns = ("prompt", "redaction alone", "call: bare", "closedloop", "closedloop, uncapped")
    table.add_column(columns[0])
    for column in columns[1:]:
        table.add_column(column, justify="right")
    for name, prompt in prompts.items():
        redaction = min(timeit.repeat(lambda p=prompt: pipeline.redact(p), number=1, repeat=3))
        calls_row = (call_ms[(name, mode)] for mode in ("bare", "closedloop", "uncapped"))
        table.add_row(name, f"{redaction * 1e3:.0f}", *(f"{ms:.0f}" for ms in calls_row))
    return table
