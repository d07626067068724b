-- Late-feedback rescue: copy the candidates of the traces whose feedback arrived in
-- [since, until) (see rescue_candidates.sql).
INSERT INTO ${database}.otel_traces
SELECT * FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
WHERE TraceId IN (
        SELECT trace_id FROM ${database}.feedback_arrivals
        WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
          AND arrived_at < fromUnixTimestamp64Nano({until_ns:Int64})
    )
  AND TraceId NOT IN {skip:Array(String)}
