-- Services that made LLM calls in the time range.
SELECT DISTINCT service_name
FROM llm_calls
WHERE $__timeFilter(timestamp)
ORDER BY service_name
