-- Calls per interval, one series per variant.
WITH
calls AS (
    SELECT c.trace_id AS trace_id, c.span_id AS span_id, c.variant AS arm,
           c.is_error AS is_error, c.timestamp AS call_time
    FROM llm_calls AS c
    WHERE $__timeFilter(c.timestamp)
      AND c.generation AND NOT c.shadow
      AND c.experiment = ${experiment:singlequote} AND c.variant != ''
      AND $__conditionalAll(c.service_name IN (${service:singlequote}), $service)
      AND $__conditionalAll(c.prompt_name IN (${prompt:singlequote}), $prompt)
)
SELECT
    $__timeInterval(call_time) AS time,
    arm AS series,
    count() AS calls
FROM calls
GROUP BY time, series
ORDER BY time, series
