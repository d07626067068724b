-- prompt_version_metrics over the whole range, per prompt version. Its rows are per day,
-- so each rate is recombined from its numerator and denominator (rate x its own
-- denominator, summed over days), never by averaging daily rates. The view has no service
-- column: the service filter keeps the prompts those services called.
SELECT
    m.prompt_name AS prompt,
    m.prompt_version AS version,
    sum(m.calls) AS calls,
    sum(m.tasks_succeeded) / nullIf(sum(m.task_outcomes), 0) AS task_success_rate,
    sum(ifNull(m.reopen_rate, 0) * m.reopen_outcomes) / nullIf(sum(m.reopen_outcomes), 0)
        AS reopen_rate,
    sum(m.escalation_rate * m.calls) / sum(m.calls) AS escalation_rate,
    sum(m.needs_human_help_rate * m.calls) / sum(m.calls) AS needs_human_help_rate,
    sum(m.safety_trigger_rate * m.calls) / sum(m.calls) AS safety_trigger_rate,
    sum(m.safety_low_rate * m.calls) / sum(m.calls) AS safety_low_rate,
    sum(m.safety_medium_rate * m.calls) / sum(m.calls) AS safety_medium_rate,
    sum(m.safety_high_rate * m.calls) / sum(m.calls) AS safety_high_rate,
    sum(ifNull(m.thumbs_up_rate, 0) * m.thumbs_votes) / nullIf(sum(m.thumbs_votes), 0)
        AS thumbs_up_rate,
    sum(ifNull(m.mean_rating, 0) * m.ratings) / nullIf(sum(m.ratings), 0) AS mean_rating,
    sum(ifNull(m.mean_edit_ratio, 0) * m.edited_outputs) / nullIf(sum(m.edited_outputs), 0)
        AS mean_edit_ratio,
    sum(m.retry_rate * m.calls) / sum(m.calls) AS retry_rate,
    sum(m.abandonment_rate * m.calls) / sum(m.calls) AS abandonment_rate,
    sum(m.total_cost_usd) / nullIf(sum(m.tasks_succeeded), 0) AS cost_per_successful_task
FROM prompt_version_metrics AS m
WHERE $__dateFilter(m.day)
  AND m.calls > 0
  AND $__conditionalAll(m.prompt_name IN (SELECT prompt_name FROM llm_calls WHERE $__timeFilter(timestamp) AND service_name IN (${service:singlequote})), $service)
  AND $__conditionalAll(m.prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(m.prompt_version IN (${version:singlequote}), $version)
GROUP BY prompt, version
ORDER BY prompt, version
