-- The latest signal of each name per call: a user who changes a thumbs-down to a
-- thumbs-up counts once, as up. Ties on timestamp are broken by feedback span id.
CREATE OR REPLACE VIEW ${database}.call_signals AS
SELECT
    trace_id,
    call_span_id AS span_id,
    name,
    argMax(kind, (timestamp, feedback_span_id)) AS kind,
    argMax(value, (timestamp, feedback_span_id)) AS value,
    argMax(label, (timestamp, feedback_span_id)) AS label,
    max(timestamp) AS last_at,
    count() AS signals
FROM ${database}.feedback_targets
WHERE call_span_id != ''
GROUP BY trace_id, call_span_id, name;
