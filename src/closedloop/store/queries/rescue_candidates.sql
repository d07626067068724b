-- Spans of traces that received feedback since the given time, present in the recent tier but
-- missing from the sampled tier: what the rescue copies. Counted before it is copied.
SELECT count() AS spans, uniqExact(TraceId) AS traces
FROM ${database}.otel_traces_recent
WHERE TraceId IN (
        SELECT TraceId FROM ${database}.otel_traces_recent
        WHERE SpanName = 'closedloop.feedback'
          AND Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})
    )
  AND (TraceId, SpanId) NOT IN (
        SELECT TraceId, SpanId FROM ${database}.otel_traces
        WHERE TraceId IN (
            SELECT TraceId FROM ${database}.otel_traces_recent
            WHERE SpanName = 'closedloop.feedback'
              AND Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})
        )
    )
