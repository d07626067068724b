-- One row per service, prompt and version over the whole range. priced_calls below calls
-- means cost_usd misses the unpriced calls.
SELECT
    c.service_name AS service,
    c.prompt_name AS prompt,
    c.prompt_version AS version,
    count() AS calls,
    countIf(c.is_error) AS errors,
    errors / calls AS error_rate,
    quantileExactInclusive(0.5)(c.latency_ms) AS p50_ms,
    quantileExactInclusive(0.95)(c.latency_ms) AS p95_ms,
    quantileExactInclusive(0.99)(c.latency_ms) AS p99_ms,
    quantileExactInclusiveIf(0.5)(c.ttft_s * 1000, c.ttft_s IS NOT NULL) AS ttft_p50_ms,
    sum(c.input_tokens) AS input_tokens,
    sum(c.output_tokens) AS output_tokens,
    sum(c.cost_usd) AS cost_usd,
    countIf(c.cost_usd IS NOT NULL) AS priced_calls
FROM llm_calls AS c
WHERE $__timeFilter(c.timestamp)
  AND c.generation AND NOT c.shadow
  AND $__conditionalAll(c.service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(c.prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(c.prompt_version IN (${version:singlequote}), $version)
GROUP BY service, prompt, version
ORDER BY service, prompt, version
