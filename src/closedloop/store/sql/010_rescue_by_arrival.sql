-- Rescue candidates by arrival (replaces 007). The rescue's window (`closedloop rescue
-- --since 1h`) used to filter on the feedback span's own timestamp, which the app may set
-- in the past (feedback recorded now about a call two hours ago): such feedback was never
-- in any window. feedback_arrivals notes when each feedback span reached the recent tier,
-- and the window filters on that.
CREATE TABLE IF NOT EXISTS ${database}.feedback_arrivals (
    arrived_at DateTime64(6) CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1))
) ENGINE = MergeTree()
PARTITION BY toDate(arrived_at)
ORDER BY (arrived_at, trace_id)
TTL toDateTime(arrived_at) + toIntervalDay(${recent_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

-- A feedback span is one named closedloop.feedback (Contract 2), as everywhere.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.feedback_arrivals_mv
TO ${database}.feedback_arrivals
AS SELECT
    now64(6) AS arrived_at,
    TraceId AS trace_id,
    SpanId AS span_id,
    Timestamp AS timestamp
FROM ${database}.otel_traces_recent
WHERE SpanName = 'closedloop.feedback';

-- Feedback already in the recent tier arrived at an unknown time: it counts as arriving
-- now, so the first rescue after the upgrade considers all of it once (copying only what
-- otel_traces lacks, as always).
TRUNCATE TABLE ${database}.feedback_arrivals;

INSERT INTO ${database}.feedback_arrivals
SELECT now64(6) AS arrived_at, TraceId AS trace_id, SpanId AS span_id, Timestamp AS timestamp
FROM ${database}.otel_traces_recent
WHERE SpanName = 'closedloop.feedback';

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
