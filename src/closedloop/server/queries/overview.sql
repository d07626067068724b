-- /api/overview: per prompt version and day, the metrics the Overview page draws, one
-- series per version: the rows of prompt_version_metrics the filters keep, from the day
-- counts both UI routes share.
SELECT
    prompt_name,
    prompt_version,
    day,
    calls,
    errors,
    errors / nullIf(calls, 0) AS error_rate,
    total_cost_usd,
    if(calls > 0, latency_quantiles[2], NULL) AS latency_p95_ms,
    tasks_succeeded / nullIf(task_outcomes, 0) AS task_success_rate,
    thumbs_up_votes / nullIf(thumbs_votes, 0) AS thumbs_up_rate,
    reopened_tickets / nullIf(reopen_outcomes, 0) AS reopen_rate,
    escalated_calls / nullIf(calls, 0) AS escalation_rate
FROM (${include:version_days.sql})
ORDER BY prompt_name, prompt_version, day
