-- Event rates per day of the call: calls escalated or needing human help, over all calls.
SELECT
    toDateTime(m.day, 'UTC') AS time,
    concat(m.prompt_name, ' ', m.prompt_version) AS series,
    m.escalation_rate AS escalation_rate,
    m.needs_human_help_rate AS needs_human_help_rate
FROM prompt_version_metrics AS m
WHERE $__dateFilter(m.day)
  AND m.calls > 0
  AND $__conditionalAll(m.prompt_name IN (SELECT prompt_name FROM llm_calls WHERE $__timeFilter(timestamp) AND service_name IN (${service:singlequote})), $service)
  AND $__conditionalAll(m.prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(m.prompt_version IN (${version:singlequote}), $version)
ORDER BY time, series
