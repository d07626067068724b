-- /api/traces/{trace_id}: the trace's feedback signals, with the call each is about
-- (feedback_resolution's rule, docs/metrics.md; empty when the trace has no such call).
SELECT
    feedback_span_id,
    target_span_id,
    call_span_id,
    toUnixTimestamp64Nano(timestamp) AS timestamp_ns,
    kind,
    name,
    value,
    label,
    explanation,
    source
FROM ${database}.feedback_resolution
WHERE trace_id = {trace_id:String}
ORDER BY timestamp_ns, feedback_span_id
