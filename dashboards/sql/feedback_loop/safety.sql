-- Calls whose latest safety verdict is low, medium or high, over all calls, per day.
SELECT
    toDateTime(m.day, 'UTC') AS time,
    concat(m.prompt_name, ' ', m.prompt_version) AS series,
    m.safety_low_rate AS safety_low_rate,
    m.safety_medium_rate AS safety_medium_rate,
    m.safety_high_rate AS safety_high_rate
FROM prompt_version_metrics AS m
WHERE $__dateFilter(m.day)
  AND m.calls > 0
  AND $__conditionalAll(m.prompt_name IN (SELECT prompt_name FROM llm_calls WHERE $__timeFilter(timestamp) AND service_name IN (${service:singlequote})), $service)
  AND $__conditionalAll(m.prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(m.prompt_version IN (${version:singlequote}), $version)
ORDER BY time, series
