-- Versions of the chosen prompts called in the time range.
SELECT DISTINCT prompt_version
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND prompt_version != ''
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
ORDER BY prompt_version
