-- Exact 95th percentile of generation latency (linear interpolation, as the metrics views).
SELECT quantileExactInclusive(0.95)(latency_ms) AS latency_p95_ms
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND generation AND NOT shadow
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
