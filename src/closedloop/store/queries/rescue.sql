-- Late-feedback rescue: feedback that arrived after its trace was sampled out copies the
-- trace from the recent tier into the sampled tier. Only spans the sampled tier lacks are
-- copied, so a kept trace copies nothing and running it twice adds nothing. Works the same
-- whichever path (the collector, or closedloop's exporter) wrote the rows.
INSERT INTO ${database}.otel_traces
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
    )
