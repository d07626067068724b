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
first or after the same neighbour. A configuration's overhead in a round is its median
per-call time minus the same round's bare median (and likewise its 10th percentile); the
tables show the median of those over the rounds. Two clocks: wall time per call (what the caller
waits, the local server's replies included), and the CPU time of the calling thread per
call (what the instrumentation itself costs the caller: no server, no export thread), which
varies far less between processes. Workers share one hash seed. Each goal is judged on
those medians, and on the two compared configurations' difference in each round: the median
difference and its 95 % confidence interval (a sign test), met or NOT MET only when the
interval says so, otherwise undecided (rounds swing by more than the goals' margins). Then
redaction cost, and calls with large prompts.

openai-v2 lives only in the benchmark environment: run ``make bench`` (it builds
``.build/bench-venv``), or that venv's python with ``--rounds``, ``--calls`` or ``--quick``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table
from scipy.stats import quantile_test

import closedloop
from _overhead_interleaved import run_interleaved
from _overhead_redaction import (
    PII_GOAL_US_PER_KB,
    TEXTS,
    TURN_GOAL_US,
    conversation_table,
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
CONFIDENCE = 0.95


@dataclass
class Round:
    """One round's per-call medians and 10th percentiles, µs, and the most attributes
    seen on one span, per (configuration, kind); the same figures in the calling thread's
    CPU time."""

    median: dict[tuple[str, str], float]
    p10: dict[tuple[str, str], float]
    attributes: dict[tuple[str, str], int]
    cpu_median: dict[tuple[str, str], float]
    cpu_p10: dict[tuple[str, str], float]


def worker_environment() -> dict[str, str]:
    """This environment without OTel or closedloop settings, so defaults are the defaults,
    and one hash seed for every worker (dict layouts then differ by configuration only)."""
    return {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("OTEL_", "CLOSEDLOOP_"))
        },
        "PYTHONHASHSEED": "0",
    }


def run_worker_process(what: str, arguments: list[str], args: argparse.Namespace) -> Any:
    """Run this script as a worker with ``arguments``; its JSON report."""
    command = [sys.executable, __file__, *arguments]
    command += ["--span-attributes", json.dumps(args.span_attributes)]
    done = subprocess.run(
        command, capture_output=True, text=True, env=worker_environment(), check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the {what} worker failed:\n{done.stderr}")
    return json.loads(done.stdout)


def run_round(order: list[str], base_url: str, args: argparse.Namespace) -> Round:
    result = Round({}, {}, {}, {}, {})
    for config in order:
        arguments = ["--worker", config, "--base-url", base_url]
        arguments += ["--calls", str(args.calls), "--warmup", str(args.warmup)]
        report = run_worker_process(config, arguments, args)
        for kind, seconds in report["samples"].items():
            result.median[(config, kind)] = statistics.median(seconds) * 1e6
            result.p10[(config, kind)] = statistics.quantiles(seconds, n=10)[0] * 1e6
        for kind, seconds in report["cpu"].items():
            result.cpu_median[(config, kind)] = statistics.median(seconds) * 1e6
            result.cpu_p10[(config, kind)] = statistics.quantiles(seconds, n=10)[0] * 1e6
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
    """A configuration's gap to the same round's bare call in each round, µs (rounds pair
    configurations: the same round's bare is subtracted from each), and the p10 figure."""

    gaps: list[float]
    p10: float

    @property
    def median(self) -> float:
        return statistics.median(self.gaps)

    def __str__(self) -> str:
        return f"{self.median:+.0f} ({self.p10:+.0f}) µs"


def paired(ours: Overhead, theirs: Overhead, margin_us: float) -> tuple[str, str, str]:
    """Whether ``ours`` costs at most ``margin_us`` more than ``theirs``, judged on their
    difference in each round: its median, the 95 % confidence interval of that median (a
    sign test, which assumes nothing about the noise), and the verdict. Rounds swing by
    more than the margins, so a verdict the interval does not settle is undecided."""
    differences = [a - b for a, b in zip(ours.gaps, theirs.gaps, strict=True)]
    median = f"{statistics.median(differences):+.0f}"
    interval = quantile_test(differences, q=0, p=0.5).confidence_interval(CONFIDENCE)
    low, high = float(interval.low), float(interval.high)
    if math.isnan(low) or math.isnan(high):
        return median, f"too few rounds ({len(differences)})", "undecided"
    word = "met" if high <= margin_us else "NOT MET" if low > margin_us else "undecided"
    return median, f"{low:+.0f} to {high:+.0f}", word


def overheads(rounds: list[Round], cpu: bool = False) -> dict[tuple[str, str], Overhead]:
    """Each configuration's overhead in wall time, or in the calling thread's CPU time."""
    result = {}
    for config in CONFIGS[1:]:
        for kind in KINDS:
            key, bare = (config, kind), ("bare", kind)
            median = [one.cpu_median if cpu else one.median for one in rounds]
            p10 = [one.cpu_p10 if cpu else one.p10 for one in rounds]
            medians = [one[key] - one[bare] for one in median]
            p10s = [one[key] - one[bare] for one in p10]
            result[key] = Overhead(medians, statistics.median(p10s))
    return result


def interleaved_overheads(
    base_url: str, args: argparse.Namespace
) -> tuple[dict[tuple[str, str], Overhead], dict[tuple[str, str], Overhead]]:
    """Wall and CPU overheads from one process running every configuration in turn:
    median over rounds of (configuration - the same round's bare), and that difference's
    10th percentile over rounds."""
    arguments = ["--interleaved", "--base-url", base_url]
    arguments += ["--rounds", str(args.interleaved_rounds), "--calls", str(args.interleaved_calls)]
    report = run_worker_process("interleaved", arguments, args)
    wall, cpu = {}, {}
    for config in CONFIGS[1:]:
        for kind in KINDS:
            ours, bare = report[f"{config} {kind}"], report[f"bare {kind}"]
            for clock, result in enumerate((wall, cpu)):
                gaps = [one[clock] - base[clock] for one, base in zip(ours, bare, strict=True)]
                tenth = statistics.quantiles(gaps, n=10)[0] if len(gaps) > 1 else gaps[0]
                result[(config, kind)] = Overhead(gaps, tenth)
    return wall, cpu


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
    result: dict[tuple[str, str], Overhead],
    rounds: list[Round],
    labels: dict[str, str],
    clock: str,
) -> Table:
    attributes = rounds[-1].attributes
    columns = {
        "openai-v2": f"openai-v2 {version(ANCHOR)} (default: no content)",
        "closedloop": "closedloop default",
        "closedloop-capture-off": "closedloop, capture off",
        "bare-span": f"bare span, {attributes[('bare-span', 'plain')]} attributes",
    }
    table = Table(
        title=f"{clock}: overhead per call over the same round's bare call, median over "
        "rounds (p10)"
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


def overhead_goals(
    clocks: dict[str, dict[tuple[str, str], Overhead]], labels: dict[str, str]
) -> Table:
    """The two overhead goals on each clock: the medians' point comparison, and the
    verdict on the paired per-round differences."""
    goals = {
        "default ≤ openai-v2": ("closedloop", "openai-v2", 0.0),
        f"capture off ≤ bare span + {CAPTURE_OFF_MARGIN_US:.0f} µs": (
            "closedloop-capture-off",
            "bare-span",
            CAPTURE_OFF_MARGIN_US,
        ),
    }
    table = Table(
        title="Overhead goals: medians over rounds, and each round's difference "
        f"({CONFIDENCE:.0%} confidence interval of its median, sign test)"
    )
    for column in ("goal", "clock", "call", "medians, µs", "on medians"):
        table.add_column(column, no_wrap=True)
    for column in ("paired difference, µs", "its CI, µs", "paired verdict"):
        table.add_column(column, justify="right")
    for goal, (ours, theirs, margin_us) in goals.items():
        for clock, result in clocks.items():
            for kind, label in labels.items():
                mine, other = result[(ours, kind)], result[(theirs, kind)]
                table.add_row(
                    goal,
                    clock,
                    label,
                    f"{mine.median:+.0f} vs {other.median:+.0f}",
                    verdict(mine.median - other.median <= margin_us),
                    *paired(mine, other, margin_us),
                )
    return table


def redaction_goal_lines(turn_us: float, per_kb: dict[str, float]) -> list[str]:
    """The redaction goals, each with the numbers it was judged on."""
    pii = max(value for name, value in per_kb.items() if TEXTS[name][1])
    return [
        f"typical turn redaction < {TURN_GOAL_US:.0f} µs: {verdict(turn_us < TURN_GOAL_US)} "
        f"({turn_us:.1f} µs)",
        f"PII-dense redaction < {PII_GOAL_US_PER_KB:.0f} µs/KB: "
        f"{verdict(pii < PII_GOAL_US_PER_KB)} ({pii:.0f} µs/KB, the slower PII-dense text)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--calls", type=int, default=1500, help="timed calls per kind per worker")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls before timing")
    parser.add_argument("--large-calls", type=int, default=3, help="calls per large prompt")
    parser.add_argument(
        "--interleaved-rounds", type=int, default=20, help="rounds of the one-process check"
    )
    parser.add_argument(
        "--interleaved-calls", type=int, default=300, help="timed calls per block in it"
    )
    parser.add_argument("--interleaved", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, few calls")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--span-attributes", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.interleaved:
        blocks = run_interleaved(args.base_url, args.rounds, args.calls, args.span_attributes)
        print(json.dumps(blocks))
        return
    if args.worker:
        report = run_worker(
            args.worker, args.base_url, args.calls, args.warmup, args.span_attributes
        )
        print(json.dumps(report))
        return
    if args.quick:
        args.rounds, args.calls, args.warmup, args.large_calls = 2, 200, 20, 1
        args.interleaved_rounds, args.interleaved_calls = 2, 50
    console = Console(width=160)
    print_setup(console, args)
    rounds = []
    with OpenAICompatibleServer() as server:
        args.span_attributes = capture_off_attributes(server.base_url)
        for index in range(args.rounds):
            order = round_order(index)
            console.print(f"round {index + 1}/{args.rounds}: {', '.join(order)}")
            rounds.append(run_round(order, server.base_url, args))
        result, cpu = overheads(rounds), overheads(rounds, cpu=True)
        labels = {
            "plain": "non-stream chat",
            "stream": f"stream, {stream_chunks(server.base_url)} chunks",
        }
        console.print(overhead_table(result, rounds, labels, "Wall time"))
        console.print(overhead_table(cpu, rounds, labels, "Calling thread's CPU time"))
        console.print(
            f"one process, every configuration in turn ({args.interleaved_rounds} rounds of "
            f"{args.interleaved_calls} calls per block)"
        )
        one_wall, one_cpu = interleaved_overheads(server.base_url, args)
        console.print(overhead_table(one_wall, rounds, labels, "One process, wall time"))
        console.print(overhead_table(one_cpu, rounds, labels, "One process, CPU time"))
        turn_us, seen_us, per_kb = redaction_costs()
        console.print(redaction_table(turn_us, seen_us, per_kb))
        console.print(conversation_table())
        clocks = {
            "wall": result,
            "caller's CPU": cpu,
            "one process, wall": one_wall,
            "one process, CPU": one_cpu,
        }
        console.print(overhead_goals(clocks, labels))
        for line in redaction_goal_lines(turn_us, per_kb):
            console.print(line)
        console.print(large_prompt_table(server.base_url, args.large_calls))


if __name__ == "__main__":
    main()
