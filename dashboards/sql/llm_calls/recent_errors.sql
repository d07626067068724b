-- The latest failed generations. Traces with an error are always kept by the tail
-- sampler, so each trace id opens in Jaeger and in the trace view.
SELECT
    c.timestamp AS time,
    c.service_name AS service,
    c.prompt_name AS prompt,
    c.prompt_version AS version,
    c.request_model AS model,
    c.error_type AS error,
    c.latency_ms AS latency_ms,
    c.trace_id AS trace_id
FROM llm_calls AS c
WHERE $__timeFilter(c.timestamp)
  AND c.generation AND NOT c.shadow AND c.is_error
  AND $__conditionalAll(c.service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(c.prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(c.prompt_version IN (${version:singlequote}), $version)
ORDER BY time DESC
LIMIT 100
