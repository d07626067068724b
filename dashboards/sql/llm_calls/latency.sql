-- Exact latency quantiles per interval (quantileExactInclusive: numpy's default, as
-- prompt_version_metrics), not the sampled estimate of quantile().
SELECT
    $__timeInterval(timestamp) AS time,
    quantileExactInclusive(0.5)(latency_ms) AS p50_ms,
    quantileExactInclusive(0.95)(latency_ms) AS p95_ms,
    quantileExactInclusive(0.99)(latency_ms) AS p99_ms
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND generation AND NOT shadow
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
GROUP BY time
ORDER BY time
