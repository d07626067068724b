-- Generations per interval, one series per prompt version.
SELECT
    $__timeInterval(timestamp) AS time,
    concat(prompt_name, ' ', prompt_version) AS series,
    count() AS calls
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND generation AND NOT shadow
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
GROUP BY time, series
ORDER BY time, series
