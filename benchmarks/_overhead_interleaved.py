"""Every configuration in one process, in short blocks that take turns.

Processes differ from one another (memory layout, which core, what the host is doing then)
by more than the gaps the issue's goals are about. Here each configuration is switched on
(instrument), timed for one short block of calls, and switched off again (uninstrument),
all in one process and in turn, so the comparison has no process-to-process difference and
neighbouring blocks see the same machine. Which configuration goes first changes every
round. The separate-process figures stay the primary method; these check them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

import openai
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import closedloop
from _overhead_worker import (
    CONFIGS,
    CONTEXT,
    KINDS,
    Call,
    CountingExporter,
    instrument,
    timed_calls,
)

WARMUP = 20  # untimed calls per block: the first after switching pay for cold caches


def uninstrument(config: str) -> None:
    if config == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().uninstrument()
    elif config.startswith("closedloop"):
        closedloop.uninstrument()


def block(run: Call, client: openai.OpenAI, calls: int) -> list[float]:
    """Median wall and calling-thread CPU µs per call over one block."""
    for _ in range(WARMUP):
        run(client)
    wall, cpu = timed_calls(run, client, calls)
    return [statistics.median(wall) * 1e6, statistics.median(cpu) * 1e6]


def run_interleaved(
    base_url: str, rounds: int, calls: int, span_attributes: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[list[float]]]:
    """Per "config kind": each round's [wall, cpu] medians, µs per call."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(CountingExporter()))
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    result: dict[str, list[list[float]]] = {}
    with closedloop.context(**CONTEXT):
        for index in range(rounds):
            shift = index % len(CONFIGS)
            order = [*CONFIGS[shift:], *CONFIGS[:shift]]
            for config in order[::-1] if index % 2 else order:
                wrap = instrument(config, provider, span_attributes)
                try:
                    for kind, call in KINDS.items():
                        figures = block(wrap(kind, call), client, calls)
                        result.setdefault(f"{config} {kind}", []).append(figures)
                finally:
                    uninstrument(config)
    provider.shutdown()
    return result
