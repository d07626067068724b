-- Spans per second received (every span reaches the recent tier, before sampling) and
-- kept (sampled and rescued spans in otel_traces). The recent tier holds only its last
-- days (recent_ttl_days, 3 by default): older intervals show kept spans alone.
SELECT
    time,
    sum(received) / $__interval_s AS received_per_s,
    sum(kept) / $__interval_s AS kept_per_s
FROM (
    SELECT $__timeInterval(Timestamp) AS time, count() AS received, toUInt64(0) AS kept
    FROM otel_traces_recent
    WHERE $__timeFilter(Timestamp) AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
    GROUP BY time
    UNION ALL
    SELECT $__timeInterval(Timestamp) AS time, toUInt64(0) AS received, count() AS kept
    FROM otel_traces
    WHERE $__timeFilter(Timestamp) AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
    GROUP BY time
)
GROUP BY time
ORDER BY time
