-- Record what the rescue is about to copy (the candidates of rescue_candidates.sql) in
-- rescued_spans, before copying: once the copy is done they are candidates no more. A span
-- recorded already (a rescue stopped between its record and its copy) is not recorded
-- again, as the copy skips spans otel_traces has.
INSERT INTO ${database}.rescued_spans
    (rescued_at, trace_id, span_id, timestamp, arrived_since, arrived_until)
SELECT
    now64(6),
    TraceId,
    SpanId,
    Timestamp,
    fromUnixTimestamp64Nano({since_ns:Int64}),
    fromUnixTimestamp64Nano({until_ns:Int64})
FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
WHERE TraceId IN (
        SELECT trace_id FROM ${database}.feedback_arrivals
        WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
          AND arrived_at < fromUnixTimestamp64Nano({until_ns:Int64})
    )
  AND TraceId NOT IN {skip:Array(String)}
  AND (TraceId, SpanId) NOT IN (
        SELECT trace_id, span_id FROM ${database}.rescued_spans
        WHERE trace_id IN (
            SELECT trace_id FROM ${database}.feedback_arrivals
            WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
              AND arrived_at < fromUnixTimestamp64Nano({until_ns:Int64})
        )
    )
