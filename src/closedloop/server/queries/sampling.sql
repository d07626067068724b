-- /api/sampling: spans (and traces) that started in the window. Received: in the recent
-- tier, which gets every span. Kept: of those, the ones also in the sampled tier (kept
-- by the tail sampler, or brought back by a rescue). Rescued: of the kept, the ones a
-- rescue copied (rescued_spans, which every rescue writes before its copy). Each span
-- counts once, however often it was stored. A NULL bound is open.
--
-- One pass: the three tables' (trace, span) pairs in the window, grouped once by span
-- with a flag per table, instead of a DISTINCT per table and two IN sets over the recent
-- tier's (the same counts: a span is received if the recent tier has it, and so on).
SELECT
    count() AS received_spans,
    countIf(in_sampled) AS kept_spans,
    countIf(in_sampled AND in_rescued) AS rescued_spans,
    uniqExact(trace_id) AS received_traces,
    uniqExactIf(trace_id, in_sampled) AS kept_traces,
    uniqExactIf(trace_id, in_sampled AND in_rescued) AS rescued_traces
FROM (
    SELECT
        trace_id,
        max(tier = 1) AS in_recent,
        max(tier = 2) AS in_sampled,
        max(tier = 3) AS in_rescued
    FROM (
        SELECT TraceId AS trace_id, SpanId AS span_id, 1 AS tier
        FROM ${database}.otel_traces_recent
        WHERE ({from_ns:Nullable(Int64)} IS NULL
                OR Timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR Timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
        UNION ALL
        SELECT TraceId, SpanId, 2
        FROM ${database}.otel_traces
        WHERE ({from_ns:Nullable(Int64)} IS NULL
                OR Timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR Timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
        UNION ALL
        SELECT trace_id, span_id, 3
        FROM ${database}.rescued_spans
        WHERE ({from_ns:Nullable(Int64)} IS NULL
                OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
          AND ({to_ns:Nullable(Int64)} IS NULL
                OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
    )
    GROUP BY trace_id, span_id
)
WHERE in_recent
