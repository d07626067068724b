"""What closedloop costs per LLM call, next to openai-v2 in the same run (issue 15).

Configurations, each timed against the local OpenAI-compatible server:
  bare                    the openai SDK, uninstrumented (the baseline)
  openai-v2               opentelemetry-instrumentation-openai-v2 with its defaults (no content)
  closedloop              closedloop.instrument() defaults: content, redaction, cost, user hash
  closedloop-capture-off  the same with capture_content=False
  bare-span               the uninstrumented call in one hand-written span carrying the
                          attributes closedloop sets with capture off (same keys, values)
Each configuration runs in a process of its own (this script with ``--worker``), once per
round, in an order reversed every other round and rotated every two, so none always goes
first or after the same neighbour. A configuration's overhead in a round is its median per-call
time minus the same round's bare median (and likewise its 10th percentile); the table
shows the median of those over the rounds. Then the issue's goals, redaction cost, and
calls with large prompts.

openai-v2 lives only in the benchmark environment: run ``make bench`` (it builds
``.build/bench-venv``), or that venv's python with ``--rounds``, ``--calls`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import openai
from rich.console import Console
from rich.table import Table

import closedloop
from _overhead_redaction import (
    PII_GOAL_US_PER_KB,
    TEXTS,
    TURN_GOAL_US,
    large_prompt_table,
    redaction_costs,
    redaction_table,
    verdict,
)
from _overhead_worker import (
    CONFIGS,
    KINDS,
    MESSAGES,
    MODEL,
    capture_off_attributes,
    run_worker,
)
from closedloop.testing import OpenAICompatibleServer

ROOT = Path(__file__).resolve().parent.parent
ANCHOR = "opentelemetry-instrumentation-openai-v2"
CAPTURE_OFF_MARGIN_US = 30.0  # issue 15: capture off within this of a bare span


@dataclass
class Round:
    """One round's per-call medians and 10th percentiles, µs, and the most attributes
    seen on one span, per (configuration, kind)."""

    median: dict[tuple[str, str], float]
    p10: dict[tuple[str, str], float]
    attributes: dict[tuple[str, str], int]


def worker_environment() -> dict[str, str]:
    """This environment without OTel or closedloop settings, so defaults are the defaults."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("OTEL_", "CLOSEDLOOP_"))
    }


def run_round(order: list[str], base_url: str, args: argparse.Namespace) -> Round:
    result = Round({}, {}, {})
    for config in order:
        command = [sys.executable, __file__, "--worker", config, "--base-url", base_url]
        command += ["--calls", str(args.calls), "--warmup", str(args.warmup)]
        command += ["--span-attributes", json.dumps(args.span_attributes)]
        done = subprocess.run(
            command, capture_output=True, text=True, env=worker_environment(), check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"the {config} worker failed:\n{done.stderr}")
        report = json.loads(done.stdout)
        for kind, seconds in report["samples"].items():
            result.median[(config, kind)] = statistics.median(seconds) * 1e6
            result.p10[(config, kind)] = statistics.quantiles(seconds, n=10)[0] * 1e6
        for kind, count in report["attributes"].items():
            result.attributes[(config, kind)] = count
    return result


def round_order(index: int) -> list[str]:
    """Rounds go in pairs, one order forward then backward, so every configuration's mean
    position is the same; each pair rotates the order by one, so neighbours change."""
    shift = index // 2 % len(CONFIGS)
    order = [*CONFIGS[shift:], *CONFIGS[:shift]]
    return order[::-1] if index % 2 else order


@dataclass
class Overhead:
    """Median over rounds of (configuration - same round's bare), µs."""

    median: float
    p10: float

    def __str__(self) -> str:
        return f"{self.median:+.0f} ({self.p10:+.0f}) µs"


def overheads(rounds: list[Round]) -> dict[tuple[str, str], Overhead]:
    result = {}
    for config in CONFIGS[1:]:
        for kind in KINDS:
            key, bare = (config, kind), ("bare", kind)
            medians = [one.median[key] - one.median[bare] for one in rounds]
            p10s = [one.p10[key] - one.p10[bare] for one in rounds]
            result[key] = Overhead(statistics.median(medians), statistics.median(p10s))
    return result


def closedloop_revision() -> str:
    """This checkout's commit, marked when src/ has changes or closedloop loads from
    elsewhere (e.g. a snapshot on PYTHONPATH while src/ is being edited)."""
    source = Path(closedloop.__file__).resolve().parent.parent
    if source != ROOT / "src":
        return f"from {source}"

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *arguments], capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = " + uncommitted changes in src/" if git("status", "--porcelain", "--", "src") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), "?")


def print_setup(console: Console, args: argparse.Namespace) -> None:
    try:
        anchor = version(ANCHOR)
    except PackageNotFoundError:
        raise SystemExit(
            f"{ANCHOR} is not installed in {sys.executable}; run `make bench`, which builds "
            ".build/bench-venv with it."
        ) from None
    packages = ("openai", "opentelemetry-sdk", "opentelemetry-util-genai")
    installed = ", ".join(f"{name} {version(name)}" for name in packages)
    console.print(
        f"versions: {ANCHOR} {anchor}, {installed}, closedloop {closedloop_revision()}",
        soft_wrap=True,
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    console.print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores ({usable} usable), "
        f"load average {os.getloadavg()[0]:.1f} at start, Python {platform.python_version()}"
    )
    console.print(
        f"method: {args.rounds} rounds x {len(CONFIGS)} configurations, one process each; "
        f"{args.warmup} warm-up then {args.calls} timed calls of each kind per process"
    )


def stream_chunks(base_url: str) -> int:
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    return sum(
        1 for _ in client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    )


def overhead_table(
    result: dict[tuple[str, str], Overhead], rounds: list[Round], labels: dict[str, str]
) -> Table:
    attributes = rounds[-1].attributes
    columns = {
        "openai-v2": f"openai-v2 {version(ANCHOR)} (default: no content)",
        "closedloop": "closedloop default",
        "closedloop-capture-off": "closedloop, capture off",
        "bare-span": f"bare span, {attributes[('bare-span', 'plain')]} attributes",
    }
    table = Table(
        title="Overhead per call over the same round's bare call: median over rounds (p10)"
    )
    table.add_column("per call")
    for title in columns.values():
        table.add_column(title, justify="right")
    for kind, label in labels.items():
        table.add_row(label, *(str(result[(config, kind)]) for config in columns))
    table.add_row(
        "span attributes (both kinds)",
        *(f"{attributes[(c, 'plain')]} / {attributes[(c, 'stream')]}" for c in columns),
    )
    bare = {kind: statistics.median(one.median[("bare", kind)] for one in rounds) for kind in KINDS}
    table.caption = (
        f"bare call itself: {bare['plain']:.0f} µs non-stream, {bare['stream']:.0f} µs stream"
    )
    return table


def goal_lines(
    result: dict[tuple[str, str], Overhead],
    labels: dict[str, str],
    turn_us: float,
    per_kb: dict[str, float],
) -> list[str]:
    """The issue's goals, each with the numbers it was judged on."""
    cheaper, close = [], []
    for kind, label in labels.items():
        ours, anchor = result[("closedloop", kind)].median, result[("openai-v2", kind)].median
        cheaper.append(f"{label} {verdict(ours <= anchor)} ({ours:+.0f} vs {anchor:+.0f} µs)")
        off = result[("closedloop-capture-off", kind)].median
        span = result[("bare-span", kind)].median
        close.append(
            f"{label} {verdict(off - span <= CAPTURE_OFF_MARGIN_US)} "
            f"({off:+.0f} vs {span:+.0f} µs: {off - span:+.0f})"
        )
    pii = max(value for name, value in per_kb.items() if TEXTS[name][1])
    return [
        "closedloop default ≤ openai-v2: " + "; ".join(cheaper),
        f"capture off within {CAPTURE_OFF_MARGIN_US:.0f} µs of bare span: " + "; ".join(close),
        f"typical turn redaction < {TURN_GOAL_US:.0f} µs: {verdict(turn_us < TURN_GOAL_US)} "
        f"({turn_us:.1f} µs)",
        f"PII-dense redaction < {PII_GOAL_US_PER_KB:.0f} µs/KB: "
        f"{verdict(pii < PII_GOAL_US_PER_KB)} ({pii:.0f} µs/KB, the slower PII-dense text)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per kind per worker")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls before timing")
    parser.add_argument("--large-calls", type=int, default=3, help="calls per large prompt")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, few calls")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--span-attributes", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        report = run_worker(
            args.worker, args.base_url, args.calls, args.warmup, args.span_attributes
        )
        print(json.dumps(report))
        return
    if args.quick:
        args.rounds, args.calls, args.warmup, args.large_calls = 2, 200, 20, 1
    console = Console(width=160)
    print_setup(console, args)
    rounds = []
    with OpenAICompatibleServer() as server:
        args.span_attributes = capture_off_attributes(server.base_url)
        for index in range(args.rounds):
            order = round_order(index)
            console.print(f"round {index + 1}/{args.rounds}: {', '.join(order)}")
            rounds.append(run_round(order, server.base_url, args))
        result = overheads(rounds)
        labels = {
            "plain": "non-stream chat",
            "stream": f"stream, {stream_chunks(server.base_url)} chunks",
        }
        console.print(overhead_table(result, rounds, labels))
        turn_us, per_kb = redaction_costs()
        console.print(redaction_table(turn_us, per_kb))
        for line in goal_lines(result, labels, turn_us, per_kb):
            console.print(line)
        console.print(large_prompt_table(server.base_url, args.large_calls))


if __name__ == "__main__":
    main()
