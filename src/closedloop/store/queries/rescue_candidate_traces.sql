-- The traces a rescue would copy spans of (rescue_candidates.sql's, by id), for a caller
-- that leaves some of them to its own sampler.
SELECT DISTINCT TraceId AS trace_id
FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
WHERE TraceId IN (
        SELECT trace_id FROM ${database}.feedback_arrivals
        WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
          AND arrived_at < fromUnixTimestamp64Nano({until_ns:Int64})
    )
