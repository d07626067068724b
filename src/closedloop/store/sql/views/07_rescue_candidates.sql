-- Spans of traces whose feedback arrived since `since_ns`, present in the recent tier but
-- missing from the sampled tier. Copying only missing spans makes the rescue idempotent
-- and a no-op for kept traces, whichever path (the collector, or closedloop's exporter)
-- wrote the rows.
CREATE OR REPLACE VIEW ${database}.rescue_candidates AS
SELECT *
FROM ${database}.otel_traces_recent
WHERE TraceId IN (
        SELECT trace_id FROM ${database}.feedback_arrivals
        WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
    )
  AND (TraceId, SpanId) NOT IN (
        SELECT TraceId, SpanId FROM ${database}.otel_traces
        WHERE TraceId IN (
            SELECT trace_id FROM ${database}.feedback_arrivals
            WHERE arrived_at >= fromUnixTimestamp64Nano({since_ns:Int64})
        )
    );
