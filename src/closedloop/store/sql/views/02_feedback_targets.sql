-- One row per feedback signal and stored llm_calls row of its target span (as a join on
-- the span ids gives), or one row when the fallback applies.
CREATE OR REPLACE VIEW ${database}.feedback_targets AS
SELECT
    timestamp,
    trace_id,
    call_span_id,
    feedback_span_id,
    kind,
    name,
    value,
    label,
    explanation,
    source
FROM ${database}.feedback_resolution
ARRAY JOIN range(greatest(direct_calls, 1)) AS copy;
