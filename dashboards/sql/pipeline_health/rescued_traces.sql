-- Traces whose late feedback made a rescue copy them from the recent tier (rescued_spans,
-- migration 012).
SELECT uniqExact(trace_id) AS rescued_traces
FROM rescued_spans
WHERE $__timeFilter(rescued_at)
