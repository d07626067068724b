-- Experiments with calls of the chosen services and prompts in the time range.
SELECT DISTINCT experiment
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND experiment != ''
  AND $__conditionalAll(service_name IN (${service:singlequote}), $service)
  AND $__conditionalAll(prompt_name IN (${prompt:singlequote}), $prompt)
ORDER BY experiment
