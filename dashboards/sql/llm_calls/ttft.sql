-- Exact time-to-first-chunk quantiles of streamed generations per interval.
SELECT
    $__timeInterval(timestamp) AS time,
    quantileExactInclusive(0.5)(ttft_s * 1000) AS ttft_p50_ms,
    quantileExactInclusive(0.95)(ttft_s * 1000) AS ttft_p95_ms
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND generation AND NOT shadow AND ttft_s IS NOT NULL
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
GROUP BY time
ORDER BY time
