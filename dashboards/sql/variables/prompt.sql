-- Prompts called by the chosen services in the time range.
SELECT DISTINCT prompt_name
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND prompt_name != ''
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
ORDER BY prompt_name
