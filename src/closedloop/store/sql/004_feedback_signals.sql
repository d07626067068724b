-- One typed row per feedback event (Contract 2): a `gen_ai.evaluation.result` event on a
-- `closedloop.feedback` span, whose parent is the evaluated LLM span.
CREATE TABLE IF NOT EXISTS ${database}.feedback_signals (
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    target_span_id String CODEC(ZSTD(1)),
    feedback_span_id String CODEC(ZSTD(1)),
    service_name LowCardinality(String),
    kind LowCardinality(String),
    name LowCardinality(String),
    value Nullable(Float64),
    label String CODEC(ZSTD(1)),
    explanation String CODEC(ZSTD(3)),
    source LowCardinality(String)
) ENGINE = MergeTree()
PARTITION BY toDate(timestamp)
ORDER BY (trace_id, target_span_id, name, timestamp)
TTL toDateTime(timestamp) + toIntervalDay(${traces_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.feedback_signals_mv TO ${database}.feedback_signals
AS SELECT
    event.Timestamp AS timestamp,
    TraceId AS trace_id,
    ParentSpanId AS target_span_id,
    SpanId AS feedback_span_id,
    ServiceName AS service_name,
    SpanAttributes['closedloop.feedback.kind'] AS kind,
    if(event.Attributes['gen_ai.evaluation.name'] != '',
       event.Attributes['gen_ai.evaluation.name'],
       SpanAttributes['closedloop.feedback.name']) AS name,
    toFloat64OrNull(event.Attributes['gen_ai.evaluation.score.value']) AS value,
    event.Attributes['gen_ai.evaluation.score.label'] AS label,
    event.Attributes['gen_ai.evaluation.explanation'] AS explanation,
    SpanAttributes['closedloop.feedback.source'] AS source
FROM ${database}.otel_traces
ARRAY JOIN Events AS event
WHERE SpanName = 'closedloop.feedback' AND event.Name = 'gen_ai.evaluation.result';
