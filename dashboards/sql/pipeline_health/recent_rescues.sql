-- The latest rescued traces: when, how many spans, and the feedback arrival window that
-- triggered the rescue.
SELECT
    max(r.rescued_at) AS last_rescued_at,
    r.trace_id AS trace_id,
    count() AS spans,
    min(r.timestamp) AS trace_start,
    min(r.arrived_since) AS feedback_arrived_since,
    max(r.arrived_until) AS feedback_arrived_until
FROM rescued_spans AS r
WHERE $__timeFilter(r.rescued_at)
GROUP BY trace_id
ORDER BY last_rescued_at DESC
LIMIT 100
