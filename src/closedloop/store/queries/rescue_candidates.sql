-- What the rescue would copy, counted before copying: the candidates
-- (sql/views/07_rescue_candidates.sql) of the traces whose feedback arrived in
-- [since, until). The upper bound lets serve leave alone feedback whose trace may still
-- wait for its sampling decision.
SELECT count() AS spans, uniqExact(TraceId) AS traces
FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
WHERE TraceId IN (
        SELECT trace_id FROM ${database}.feedback_arrivals
        WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
          AND arrived_at < fromUnixTimestamp64Nano({until_ns:Int64})
    )
  AND TraceId NOT IN {skip:Array(String)}
