-- Kept spans over received spans in the range (only meaningful within the recent tier's
-- retention).
SELECT
    (SELECT count() FROM otel_traces WHERE $__timeFilter(Timestamp) AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service))
    / nullIf((SELECT count() FROM otel_traces_recent WHERE $__timeFilter(Timestamp) AND $__conditionalAll(ServiceName IN (${service:singlequote}), $service)), 0)
        AS kept_share
