-- /api/sampling: spans (and traces) that started in the window. Received: in the recent
-- tier, which gets every span. Kept: of those, the ones also in the sampled tier (kept
-- by the tail sampler, or brought back by a rescue). Each span counts once, however often
-- it was stored. A NULL bound is open.
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
)
SELECT
    count() AS received_spans,
    countIf(is_kept) AS kept_spans,
    uniqExact(TraceId) AS received_traces,
    uniqExactIf(TraceId, is_kept) AS kept_traces
FROM (
    SELECT TraceId, (TraceId, SpanId) IN (SELECT TraceId, SpanId FROM kept) AS is_kept
    FROM received
)
