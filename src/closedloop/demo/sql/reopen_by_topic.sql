-- Which kinds of ticket are misrouted: the feedback table's ticket_reopened outcomes,
-- grouped by the topic the customer picked, which the support app sets on its
-- `triage ticket` span. That span is read from the recent tier, which holds every span
-- (for 3 days by default), so tickets that tail sampling dropped count too.
SELECT
    t.topic AS topic,
    count() AS tickets,
    countIf(JSONExtractFloat(f.feedback_value, 'value') = 1) AS reopened,
    reopened / tickets AS reopen_rate
FROM feedback AS f
INNER JOIN (
    SELECT TraceId AS trace_id, any(SpanAttributes['support.ticket.topic']) AS topic
    FROM otel_traces_recent
    WHERE SpanName = 'triage ticket'
    GROUP BY TraceId
) AS t ON JSONExtractString(f.metadata, 'trace_id') = t.trace_id
WHERE f.feedback_type = 'outcome'
  AND JSONExtractString(f.feedback_value, 'name') = 'ticket_reopened'
GROUP BY topic
ORDER BY reopen_rate DESC, topic
