-- Traces and spans rescued per interval, by the time of the rescue.
SELECT
    $__timeInterval(rescued_at) AS time,
    uniqExact(trace_id) AS traces,
    count() AS spans
FROM rescued_spans
WHERE $__timeFilter(rescued_at)
GROUP BY time
ORDER BY time
