"""Independent Python computation of the store's views, from the generated truth.

Written from docs/metrics.md, not from the SQL, so the two can disagree.
"""

from __future__ import annotations

import datetime
import math
from collections import defaultdict
from typing import Any

from _support.traffic import Call, Feedback, Traffic


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, PERCENTILE.INC)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def day_of(call: Call) -> str:
    moment = datetime.datetime.fromtimestamp(call.start_ns / 1e9, tz=datetime.timezone.utc)
    return moment.date().isoformat()


def latest_signals(traffic: Traffic) -> dict[tuple[str, str], dict[str, Feedback]]:
    """(trace, call span) -> signal name -> its latest feedback (ties: larger span id)."""
    latest: dict[tuple[str, str], dict[str, Feedback]] = defaultdict(dict)
    for item in traffic.feedback:
        key = (item.trace_id, item.call.span_id)
        current = latest[key].get(item.name)
        if current is None or (item.timestamp_ns, item.span_id) > (
            current.timestamp_ns,
            current.span_id,
        ):
            latest[key][item.name] = item
    return latest


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def value(signals: dict[str, Feedback], name: str) -> float | None:
    return signals[name].value if name in signals else None


def _mean(values: list[float | None]) -> float | None:
    """The mean of the known values (as SQL's avg skips NULL)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def prompt_version_metrics(traffic: Traffic) -> dict[tuple[str, str, str], dict[str, Any]]:
    latest = latest_signals(traffic)
    groups: dict[tuple[str, str, str], list[Call]] = defaultdict(list)
    for call in traffic.calls:
        if not call.shadow:
            groups[(call.prompt_name, call.prompt_version, day_of(call))].append(call)
    result = {}
    for key, group in groups.items():
        calls = [c for c in group if c.generation]
        embeddings = [c for c in group if c.operation == "embeddings"]
        embedding_costs = [c.cost_usd for c in embeddings if c.cost_usd is not None]
        result[key] = {
            **generation_metrics(calls, latest),
            "embedding_calls": len(embeddings),
            "embedding_input_tokens": sum(c.input_tokens for c in embeddings),
            "embedding_cost_usd": sum(embedding_costs) if embedding_costs else None,
        }
    return result


def generation_metrics(
    calls: list[Call], latest: dict[tuple[str, str], dict[str, Feedback]]
) -> dict[str, Any]:
    """The columns about generations (a group with embeddings only has none: NULL rates)."""
    n = len(calls)
    signals = [latest.get((c.trace_id, c.span_id), {}) for c in calls]

    def with_name(name: str) -> list[dict[str, Feedback]]:
        return [s for s in signals if name in s]

    def latest_true(name: str) -> int:
        return sum(value(s, name) == 1 for s in signals)

    tasks = with_name("task_succeeded")
    succeeded = sum(1 for s in tasks if value(s, "task_succeeded") == 1)
    priced = [c.cost_usd for c in calls if c.cost_usd is not None]
    total_cost = sum(priced) if priced else None
    streamed = [c.ttft_s * 1000 for c in calls if c.ttft_s is not None]
    latencies = [c.latency_ms for c in calls]
    thumbs = with_name("thumbs")
    reopens = with_name("ticket_reopened")
    safety = [s["safety"].label if "safety" in s else "" for s in signals]
    return {
        "calls": n,
        "errors": sum(c.is_error for c in calls),
        "error_rate": _rate(sum(c.is_error for c in calls), n),
        "task_outcomes": len(tasks),
        "tasks_succeeded": succeeded,
        "task_success_rate": _rate(succeeded, len(tasks)),
        "needs_human_help_rate": _rate(latest_true("needed_human_help"), n),
        "escalation_rate": _rate(latest_true("escalated"), n),
        "safety_trigger_rate": _rate(
            sum(level in ("low", "medium", "high") for level in safety), n
        ),
        "safety_low_rate": _rate(safety.count("low"), n),
        "safety_medium_rate": _rate(safety.count("medium"), n),
        "safety_high_rate": _rate(safety.count("high"), n),
        "latency_p50_ms": quantile(latencies, 0.5) if latencies else None,
        "latency_p95_ms": quantile(latencies, 0.95) if latencies else None,
        "latency_p99_ms": quantile(latencies, 0.99) if latencies else None,
        "streamed_calls": len(streamed),
        "ttft_p50_ms": quantile(streamed, 0.5) if streamed else None,
        "ttft_p95_ms": quantile(streamed, 0.95) if streamed else None,
        "input_tokens": sum(0 if c.is_error else c.input_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
        "total_cost_usd": total_cost,
        "priced_calls": len(priced),
        "cost_per_successful_task": total_cost / succeeded
        if succeeded and total_cost is not None
        else None,
        "thumbs_votes": len(thumbs),
        "thumbs_up_rate": _rate(sum(value(s, "thumbs") == 1 for s in thumbs), len(thumbs)),
        "ratings": len(with_name("rating")),
        "mean_rating": _mean([value(s, "rating") for s in with_name("rating")]),
        "edited_outputs": len(with_name("edit_ratio")),
        "mean_edit_ratio": _mean([value(s, "edit_ratio") for s in with_name("edit_ratio")]),
        "retry_rate": _rate(latest_true("retry"), n),
        "abandonment_rate": _rate(latest_true("abandoned"), n),
        "completions": len(with_name("time_to_completion_s")),
        "mean_time_to_completion_s": _mean(
            [value(s, "time_to_completion_s") for s in with_name("time_to_completion_s")]
        ),
        "reopen_outcomes": len(reopens),
        "reopen_rate": _rate(sum(value(s, "ticket_reopened") == 1 for s in reopens), len(reopens)),
    }


def feedback_rows(traffic: Traffic) -> list[tuple[Any, ...]]:
    """The feedback view's rows as (request_id, type, name, value, label, timestamp ns)."""
    rows: list[tuple[Any, ...]] = []
    by_call: dict[tuple[str, str], list[Feedback]] = defaultdict(list)
    for item in traffic.feedback:
        by_call[(item.trace_id, item.call.span_id)].append(item)
    for call in traffic.calls:
        request_id = f"{call.trace_id}:{call.span_id}"
        items = by_call.get((call.trace_id, call.span_id), [])
        rows.extend((request_id, i.kind, i.name, i.value, i.label, i.timestamp_ns) for i in items)
        if not items:
            rows.append((request_id, None, None, None, None, call.start_ns))
    return sorted(rows, key=repr)
