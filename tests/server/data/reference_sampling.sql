-- /api/sampling before its single pass: a DISTINCT per table and IN sets
-- (tests/server/test_query_rewrites.py compares the route's query with it).
WITH
received AS (
    SELECT DISTINCT TraceId, SpanId
    FROM ${database}.otel_traces_recent
    WHERE ({from_ns:Nullable(Int64)} IS NULL
            OR Timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
      AND ({to_ns:Nullable(Int64)} IS NULL
            OR Timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
),
kept AS (
    SELECT DISTINCT TraceId, SpanId
    FROM ${database}.otel_traces
    WHERE ({from_ns:Nullable(Int64)} IS NULL
            OR Timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
      AND ({to_ns:Nullable(Int64)} IS NULL
            OR Timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
),
rescued AS (
    SELECT DISTINCT trace_id, span_id
    FROM ${database}.rescued_spans
    WHERE ({from_ns:Nullable(Int64)} IS NULL
            OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
      AND ({to_ns:Nullable(Int64)} IS NULL
            OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
)
SELECT
    count() AS received_spans,
    countIf(is_kept) AS kept_spans,
    countIf(is_kept AND is_rescued) AS rescued_spans,
    uniqExact(TraceId) AS received_traces,
    uniqExactIf(TraceId, is_kept) AS kept_traces,
    uniqExactIf(TraceId, is_kept AND is_rescued) AS rescued_traces
FROM (
    SELECT
        TraceId,
        (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM kept) AS is_kept,
        (TraceId, SpanId) IN (SELECT trace_id, span_id FROM rescued) AS is_rescued
    FROM received
)
