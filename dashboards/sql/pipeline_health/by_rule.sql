-- Traces received and kept per sampling rule (collector/otel-collector.yaml): a trace
-- with an error status, with feedback (a closedloop.feedback span, or feedback_signals
-- for it, however late), of a new user (closedloop.user.new on a call), else the
-- probabilistic baseline. A trace matching several rules counts under the first.
WITH
received AS (
    SELECT
        TraceId AS trace_id,
        max(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) AS has_error,
        max(SpanName = 'closedloop.feedback') AS has_feedback_span
    FROM otel_traces_recent
    WHERE $__timeFilter(Timestamp) AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)
    GROUP BY trace_id
),
classified AS (
    SELECT
        r.trace_id AS trace_id,
        multiIf(
            r.has_error, 'error',
            r.has_feedback_span
                OR r.trace_id IN (
                    SELECT f.trace_id FROM feedback_signals AS f
                    WHERE f.trace_id IN (SELECT trace_id FROM received)
                ), 'feedback',
            r.trace_id IN (
                SELECT c.trace_id FROM llm_calls AS c
                WHERE $__timeFilter(c.timestamp) AND c.user_new
            ), 'new user',
            'baseline'
        ) AS rule,
        r.trace_id IN (SELECT TraceId FROM otel_traces WHERE $__timeFilter(Timestamp)) AS kept
    FROM received AS r
)
SELECT
    rule,
    count() AS traces_received,
    countIf(kept) AS traces_kept,
    traces_kept / traces_received AS keep_rate
FROM classified
GROUP BY rule
ORDER BY indexOf(['error', 'feedback', 'new user', 'baseline'], rule)
