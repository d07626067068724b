-- Spend on every priced LLM call (embeddings and shadow calls included). Calls whose
-- price is unknown add nothing, so this is a lower bound when some are unpriced.
SELECT sum(cost_usd) AS cost_usd
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(prompt_version IN (${version:singlequote}), $version)
