"""What experiments cost on the user's path: ``select`` and a shadow's ``submit``, in µs.

In one run, each next to its anchor:
  * a bare dict lookup (the least any routing could cost) and ``registry.select(...)``
    entered and left as an app does (the keyed hash, the bucket, the rendered messages,
    the context tags), for a one-message prompt and for the two-message ``triage`` prompt
    with a shadow version rendered too;
  * a bare ``queue.Queue.put_nowait`` and ``ShadowRunner.submit`` (the production span
    found, the sampling decision, the request's context copied, the job queued). The
    runner's one worker is held on its first job for the whole measurement, so what is
    measured is the user's path alone, not the GIL shared with a running shadow.

Each figure is the median over ``--rounds`` rounds of ``--calls`` calls (p10 beside it);
units rotate over 10,000 ids so no cache helps. Prompts: the tests' registry fixture.
Run: ``.venv/bin/python benchmarks/experiments.py [--calls 20000 --rounds 9]``.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

import closedloop
from closedloop.experiments import PromptRegistry, ShadowRunner, ShadowVersion

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "tests" / "experiments" / "data" / "prompts"
UNITS = [f"customer-{n}" for n in range(10_000)]
TRIAGE = {"product": "Acme", "ticket": "I was charged twice for my order"}


Run = Callable[[int], None]
Round = Callable[[int], tuple[Run, Callable[[], None]]]
"""Set up one round for n calls: (the calls, timed; what ends the round, not timed)."""


def per_call_us(round_: Round, calls: int, rounds: int) -> tuple[float, float]:
    """Median and p10 over rounds of µs per call; only the calls are timed."""
    samples = []
    for _ in range(rounds):
        run, finish = round_(calls)
        start = time.perf_counter_ns()
        run(calls)
        samples.append((time.perf_counter_ns() - start) / calls / 1000)
        finish()
    samples.sort()
    return statistics.median(samples), samples[len(samples) // 10]


def untimed(run: Run) -> Round:
    """A round with nothing to set up or end."""
    return lambda calls: (run, lambda: None)


def dict_lookup(calls: int) -> None:
    versions = dict.fromkeys(UNITS, "v3")
    for n in range(calls):
        versions[UNITS[n % 10_000]]


def selecting(registry: PromptRegistry, prompt: str, variables: dict[str, str]) -> Run:
    def run(calls: int) -> None:
        select = registry.select
        for n in range(calls):
            with select(prompt, unit=UNITS[n % 10_000], variables=variables):
                pass

    return run


def queue_put(calls: int) -> None:
    bare: queue.Queue[object] = queue.Queue()
    item = object()
    for _ in range(calls):
        bare.put_nowait(item)


def submitting(registry: PromptRegistry) -> Round:
    """``submit`` to a runner whose one worker is held by its first job all round."""
    with registry.select("triage", unit="customer-1", variables=TRIAGE) as choice:
        shadow = ShadowVersion.of(choice.shadows[0])

    def round_(calls: int) -> tuple[Run, Callable[[], None]]:
        held = threading.Event()
        runner = ShadowRunner(workers=1, queue_size=calls + 1)

        def shadow_call(messages: object, model: str, parameters: object) -> None:
            held.wait()

        def run(count: int) -> None:
            with closedloop.context(prompt_name="triage", prompt_version="v3"):
                submit = runner.submit
                for _ in range(count):
                    submit(shadow, shadow_call)

        def finish() -> None:
            held.set()
            runner.close(drain=False)

        return run, finish

    return round_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per figure")
    args = parser.parse_args()
    registry = PromptRegistry(PROMPTS, poll_interval_s=None)
    figures = [
        ("bare dict lookup (anchor)", untimed(dict_lookup)),
        ("select: summarize (1 message)", untimed(selecting(registry, "summarize", {}))),
        ("select: triage (2 messages + 1 shadow)", untimed(selecting(registry, "triage", TRIAGE))),
        ("bare queue.put_nowait (anchor)", untimed(queue_put)),
        ("shadow submit (user's path)", submitting(registry)),
    ]
    table = Table(title=f"experiments on the user's path ({args.rounds} rounds x {args.calls:,})")
    table.add_column("operation")
    table.add_column("µs per call (median)", justify="right")
    table.add_column("p10", justify="right")
    for label, round_ in figures:
        median, p10 = per_call_us(round_, args.calls, args.rounds)
        table.add_row(label, f"{median:.2f}", f"{p10:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
