-- Spend per interval, one series per prompt version, every priced LLM call.
SELECT
    $__timeInterval(timestamp) AS time,
    concat(prompt_name, ' ', prompt_version) AS series,
    sum(cost_usd) AS cost_usd
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
GROUP BY time, series
ORDER BY time, series
