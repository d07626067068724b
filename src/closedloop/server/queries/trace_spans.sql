-- /api/traces/{trace_id}: the trace's spans, each from the sampled tier if it is there,
-- else from the recent tier (every span, kept or not, for a few days), in start order.
SELECT
    tier,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    TraceState AS trace_state,
    SpanName AS name,
    SpanKind AS kind,
    ServiceName AS service_name,
    ResourceAttributes AS resource_attributes,
    ScopeName AS scope_name,
    ScopeVersion AS scope_version,
    SpanAttributes AS attributes,
    toUnixTimestamp64Nano(Timestamp) AS start_ns,
    Duration AS duration_ns,
    StatusCode AS status_code,
    StatusMessage AS status_message,
    arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`) AS event_ns,
    `Events.Name` AS event_names,
    `Events.Attributes` AS event_attributes,
    `Links.TraceId` AS link_trace_ids,
    `Links.SpanId` AS link_span_ids,
    `Links.TraceState` AS link_trace_states,
    `Links.Attributes` AS link_attributes
FROM (
    SELECT 'sampled' AS tier, *
    FROM ${database}.otel_traces
    WHERE TraceId = {trace_id:String}
    UNION ALL
    SELECT 'recent' AS tier, *
    FROM ${database}.otel_traces_recent
    WHERE TraceId = {trace_id:String}
)
ORDER BY start_ns, span_id, tier = 'sampled' DESC
LIMIT 1 BY span_id
