-- The slowest generations. kept says whether sampling kept the trace (only kept traces
-- open in Jaeger and in the trace view).
SELECT
    c.timestamp AS time,
    c.service_name AS service,
    c.prompt_name AS prompt,
    c.prompt_version AS version,
    if(c.response_model != '', c.response_model, c.request_model) AS model,
    c.latency_ms AS latency_ms,
    c.ttft_s * 1000 AS ttft_ms,
    c.output_tokens AS output_tokens,
    c.trace_id IN (
        SELECT TraceId FROM otel_traces WHERE $__timeFilter(Timestamp)
    ) AS kept,
    c.trace_id AS trace_id
FROM llm_calls AS c
WHERE $__timeFilter(c.timestamp)
  AND c.generation AND NOT c.shadow
  AND $__conditionalAll(c.service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(c.prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(c.prompt_version IN (${version:singlequote}), $version)
ORDER BY latency_ms DESC
LIMIT 50
