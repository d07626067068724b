-- /api/sampling/series: sampling.sql's span counts per time bucket (by span start, as
-- sampling.sql counts them), so the Sampling page can draw them over time. Buckets of
-- {bucket_s} seconds since the epoch; a bucket without spans has no row.
--
-- The same single pass as sampling.sql, grouped by span; a received span counts once per
-- distinct start the recent tier holds for it (as a DISTINCT on trace, span and start).
SELECT
    intDiv(toUnixTimestamp(start), {bucket_s:UInt32}) * {bucket_s:UInt32} AS start_s,
    count() AS received,
    countIf(in_sampled) AS kept,
    countIf(in_sampled AND in_rescued) AS rescued
FROM (
    SELECT
        groupUniqArrayIf(start, tier = 1) AS starts,
        max(tier = 2) AS in_sampled,
        max(tier = 3) AS in_rescued
    FROM (
        SELECT TraceId AS trace_id, SpanId AS span_id, Timestamp AS start, 1 AS tier
        FROM ${database}.otel_traces_recent
        WHERE ({from_ns:Nullable(Int64)} IS NULL
                OR Timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR Timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
        UNION ALL
        SELECT TraceId, SpanId, Timestamp, 2
        FROM ${database}.otel_traces
        WHERE ({from_ns:Nullable(Int64)} IS NULL
                OR Timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR Timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
        UNION ALL
        SELECT trace_id, span_id, timestamp, 3
        FROM ${database}.rescued_spans
        WHERE ({from_ns:Nullable(Int64)} IS NULL
                OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
    )
    GROUP BY trace_id, span_id
)
ARRAY JOIN starts AS start
GROUP BY start_s
ORDER BY start_s
