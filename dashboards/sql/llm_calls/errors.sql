-- Failed generations per interval and their share.
SELECT
    $__timeInterval(timestamp) AS time,
    countIf(is_error) AS errors,
    countIf(is_error) / count() AS error_rate
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND generation AND NOT shadow
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
GROUP BY time
ORDER BY time
