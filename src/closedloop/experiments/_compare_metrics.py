"""The metrics ``compare`` tests: those of ``prompt_version_metrics``, each as a ratio of two
per-unit sums (the columns of ``sql/compare_units.sql``) and the direction that is better."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["rate", "mean", "quantile", "ratio"]


@dataclass(frozen=True)
class Metric:
    """``name`` as in ``prompt_version_metrics``; value = Σ numerator / Σ denominator over
    the units that have a denominator (``ratio``: over every unit); ``quantile``: the
    95th percentile of per-call latency."""

    name: str
    label: str
    kind: Kind
    numerator: str
    denominator: str
    better: Literal["higher", "lower"]


METRICS: tuple[Metric, ...] = (
    Metric(
        "task_success_rate", "task success", "rate", "tasks_succeeded", "task_outcomes", "higher"
    ),
    Metric("reopen_rate", "ticket reopened", "rate", "reopened", "reopen_outcomes", "lower"),
    Metric("escalation_rate", "escalated", "rate", "escalated", "calls", "lower"),
    Metric(
        "needs_human_help_rate", "needed human help", "rate", "needed_human_help", "calls", "lower"
    ),
    Metric("safety_trigger_rate", "safety triggered", "rate", "safety_triggered", "calls", "lower"),
    Metric("thumbs_up_rate", "thumbs up", "rate", "thumbs_up", "thumbs_votes", "higher"),
    Metric("mean_rating", "rating (1-5)", "mean", "rating_sum", "ratings", "higher"),
    Metric("mean_edit_ratio", "edit ratio", "mean", "edit_ratio_sum", "edits", "lower"),
    Metric("retry_rate", "retried", "rate", "retried", "calls", "lower"),
    Metric("abandonment_rate", "abandoned", "rate", "abandoned", "calls", "lower"),
    Metric("error_rate", "errors", "rate", "errors", "calls", "lower"),
    Metric("latency_mean_ms", "latency mean (ms)", "mean", "latency_sum", "calls", "lower"),
    Metric("latency_p95_ms", "latency p95 (ms)", "quantile", "latencies", "calls", "lower"),
    Metric("cost_per_call_usd", "cost per call (USD)", "mean", "cost_sum", "calls", "lower"),
    Metric(
        "cost_per_successful_task",
        "cost per successful task (USD)",
        "ratio",
        "cost_sum",
        "tasks_succeeded",
        "lower",
    ),
)
METRIC_NAMES = tuple(metric.name for metric in METRICS)
