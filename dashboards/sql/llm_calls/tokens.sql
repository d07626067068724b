-- Tokens the provider reported for every LLM call (embeddings and shadow calls included:
-- they are paid for too).
SELECT sum(input_tokens + output_tokens) AS tokens
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
