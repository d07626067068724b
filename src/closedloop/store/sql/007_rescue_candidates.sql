-- Late-feedback rescue candidates (a parameterized view): spans of traces that received
-- feedback since `since_ns`, present in the recent tier but missing from the sampled tier.
-- Copying only missing spans makes the rescue idempotent and a no-op for kept traces,
-- whichever path (the collector, or closedloop's exporter) wrote the rows.
CREATE OR REPLACE VIEW ${database}.rescue_candidates AS
SELECT *
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
    );
