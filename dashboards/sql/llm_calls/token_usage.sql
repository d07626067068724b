-- Input and output tokens per interval, every LLM call.
SELECT
    $__timeInterval(timestamp) AS time,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
GROUP BY time
ORDER BY time
