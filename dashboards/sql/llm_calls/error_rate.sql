-- Share of generations that ended with an error status.
SELECT countIf(is_error) / nullIf(count(), 0) AS error_rate
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND generation AND NOT shadow
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
