-- /api/overview: per prompt version and day, the metrics the Overview page draws, one
-- series per version (rows of prompt_version_metrics, docs/metrics.md). A NULL parameter
-- filters nothing; days are inclusive bounds.
SELECT
    prompt_name,
    prompt_version,
    day,
    calls,
    errors,
    error_rate,
    total_cost_usd,
    latency_p95_ms,
    task_success_rate,
    thumbs_up_rate,
    reopen_rate,
    escalation_rate
FROM ${database}.prompt_version_metrics
WHERE ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
  AND ({from_day:Nullable(Date32)} IS NULL OR day >= {from_day:Nullable(Date32)})
  AND ({to_day:Nullable(Date32)} IS NULL OR day <= {to_day:Nullable(Date32)})
ORDER BY prompt_name, prompt_version, day
