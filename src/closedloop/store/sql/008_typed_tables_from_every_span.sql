-- Metrics unbiased by sampling (Contract 3): llm_calls and feedback_signals are filled
-- from the recent tier's insert stream, which receives every span before sampling (the
-- collector's clickhouse/recent exporter, or closedloop's exporter, whose default writes
-- both tiers). Filled from otel_traces, as before, they described the sampled calls only:
-- every trace with feedback is kept but only a share of the rest, so counts shrank and
-- event rates inflated. A rescue copies spans into otel_traces only, so it can no longer
-- add a call or a signal twice.
--
-- Content (instructions, input and output messages) stays with the sampled tier: it moves
-- from llm_calls to llm_call_content, filled from otel_traces (rescued traces included),
-- so full content is kept for sampled traces only, as the recent tier's TTL intends.
--
-- Existing data is rebuilt, not started afresh: the typed tables are refilled from every
-- span the recent tier holds plus the otel_traces spans it lacks (older than its retention,
-- or written by an exporter that never filled it). Days before the recent tier's window
-- therefore stay computed from sampled traces. Writes that arrive while this migration
-- runs may be counted twice (the views below exist before the backfill reads): pause the
-- collector for the upgrade of a server store. Statements are safe to re-run.
DROP VIEW IF EXISTS ${database}.llm_calls_mv;

DROP VIEW IF EXISTS ${database}.feedback_signals_mv;

CREATE TABLE IF NOT EXISTS ${database}.llm_call_content (
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    system_instructions String CODEC(ZSTD(3)),
    input_messages String CODEC(ZSTD(3)),
    output_messages String CODEC(ZSTD(3))
) ENGINE = MergeTree()
PARTITION BY toDate(timestamp)
ORDER BY (trace_id, span_id)
TTL toDateTime(timestamp) + toIntervalDay(${traces_ttl_days})
SETTINGS ttl_only_drop_parts = 1;

TRUNCATE TABLE ${database}.llm_calls;

TRUNCATE TABLE ${database}.feedback_signals;

TRUNCATE TABLE ${database}.llm_call_content;

ALTER TABLE ${database}.llm_calls
    DROP COLUMN IF EXISTS system_instructions,
    DROP COLUMN IF EXISTS input_messages,
    DROP COLUMN IF EXISTS output_messages;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.llm_calls_mv TO ${database}.llm_calls
AS SELECT
    Timestamp AS timestamp,
    TraceId AS trace_id,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    ServiceName AS service_name,
    SpanAttributes['gen_ai.operation.name'] AS operation,
    SpanAttributes['gen_ai.provider.name'] AS provider,
    SpanAttributes['openai.api.type'] AS api_type,
    SpanAttributes['gen_ai.request.model'] AS request_model,
    SpanAttributes['gen_ai.response.model'] AS response_model,
    SpanAttributes['gen_ai.response.id'] AS response_id,
    JSONExtract(SpanAttributes['gen_ai.response.finish_reasons'], 'Array(String)')
        AS finish_reasons,
    SpanAttributes['gen_ai.request.stream'] = 'true' AS stream,
    toFloat64OrNull(SpanAttributes['gen_ai.request.temperature']) AS temperature,
    toUInt64OrNull(SpanAttributes['gen_ai.request.max_tokens']) AS max_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']) AS input_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']) AS output_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_read.input_tokens'])
        AS cached_input_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.reasoning.output_tokens']) AS reasoning_tokens,
    toFloat64OrNull(SpanAttributes['closedloop.cost.usd']) AS cost_usd,
    ifNull(toFloat64OrNull(SpanAttributes['closedloop.latency.ms']), Duration / 1e6)
        AS latency_ms,
    toFloat64OrNull(SpanAttributes['gen_ai.response.time_to_first_chunk']) AS ttft_s,
    SpanAttributes['gen_ai.conversation.id'] AS conversation_id,
    toUInt32OrNull(SpanAttributes['closedloop.turn']) AS turn,
    SpanAttributes['gen_ai.prompt.name'] AS prompt_name,
    SpanAttributes['gen_ai.prompt.version'] AS prompt_version,
    SpanAttributes['closedloop.experiment'] AS experiment,
    SpanAttributes['closedloop.variant'] AS variant,
    SpanAttributes['closedloop.shadow'] = 'true' AS shadow,
    SpanAttributes['user.hash'] AS user_hash,
    SpanAttributes['session.id'] AS session_id,
    toUInt32OrZero(SpanAttributes['closedloop.user.interaction']) AS user_interaction,
    SpanAttributes['closedloop.user.new'] = 'true' AS user_new,
    SpanAttributes['closedloop.request.id'] AS request_id,
    SpanAttributes['closedloop.provider.request_id'] AS provider_request_id,
    JSONExtract(SpanAttributes['closedloop.tools'], 'Array(String)') AS tools,
    JSONExtract(SpanAttributes['closedloop.tools.defined'], 'Array(String)') AS tools_defined,
    toUInt32OrZero(SpanAttributes['closedloop.redactions']) AS redactions,
    StatusCode IN ('Error', 'STATUS_CODE_ERROR') AS is_error,
    SpanAttributes['error.type'] AS error_type
FROM ${database}.otel_traces_recent
WHERE SpanAttributes['gen_ai.operation.name'] != '' AND SpanName != 'closedloop.feedback';

CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.feedback_signals_mv
TO ${database}.feedback_signals
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
FROM ${database}.otel_traces_recent
ARRAY JOIN Events AS event
WHERE SpanName = 'closedloop.feedback' AND event.Name = 'gen_ai.evaluation.result';

-- Content of sampled LLM spans; spans without captured content add no row.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${database}.llm_call_content_mv
TO ${database}.llm_call_content
AS SELECT
    Timestamp AS timestamp,
    TraceId AS trace_id,
    SpanId AS span_id,
    SpanAttributes['gen_ai.system_instructions'] AS system_instructions,
    SpanAttributes['gen_ai.input.messages'] AS input_messages,
    SpanAttributes['gen_ai.output.messages'] AS output_messages
FROM ${database}.otel_traces
WHERE SpanAttributes['gen_ai.operation.name'] != '' AND SpanName != 'closedloop.feedback'
  AND (system_instructions != '' OR input_messages != '' OR output_messages != '');

-- The backfill: the same mappings as the views above, over every span the recent tier
-- holds and the otel_traces spans it lacks.
INSERT INTO ${database}.llm_calls
SELECT
    Timestamp AS timestamp,
    TraceId AS trace_id,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    ServiceName AS service_name,
    SpanAttributes['gen_ai.operation.name'] AS operation,
    SpanAttributes['gen_ai.provider.name'] AS provider,
    SpanAttributes['openai.api.type'] AS api_type,
    SpanAttributes['gen_ai.request.model'] AS request_model,
    SpanAttributes['gen_ai.response.model'] AS response_model,
    SpanAttributes['gen_ai.response.id'] AS response_id,
    JSONExtract(SpanAttributes['gen_ai.response.finish_reasons'], 'Array(String)')
        AS finish_reasons,
    SpanAttributes['gen_ai.request.stream'] = 'true' AS stream,
    toFloat64OrNull(SpanAttributes['gen_ai.request.temperature']) AS temperature,
    toUInt64OrNull(SpanAttributes['gen_ai.request.max_tokens']) AS max_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']) AS input_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']) AS output_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_read.input_tokens'])
        AS cached_input_tokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.reasoning.output_tokens']) AS reasoning_tokens,
    toFloat64OrNull(SpanAttributes['closedloop.cost.usd']) AS cost_usd,
    ifNull(toFloat64OrNull(SpanAttributes['closedloop.latency.ms']), Duration / 1e6)
        AS latency_ms,
    toFloat64OrNull(SpanAttributes['gen_ai.response.time_to_first_chunk']) AS ttft_s,
    SpanAttributes['gen_ai.conversation.id'] AS conversation_id,
    toUInt32OrNull(SpanAttributes['closedloop.turn']) AS turn,
    SpanAttributes['gen_ai.prompt.name'] AS prompt_name,
    SpanAttributes['gen_ai.prompt.version'] AS prompt_version,
    SpanAttributes['closedloop.experiment'] AS experiment,
    SpanAttributes['closedloop.variant'] AS variant,
    SpanAttributes['closedloop.shadow'] = 'true' AS shadow,
    SpanAttributes['user.hash'] AS user_hash,
    SpanAttributes['session.id'] AS session_id,
    toUInt32OrZero(SpanAttributes['closedloop.user.interaction']) AS user_interaction,
    SpanAttributes['closedloop.user.new'] = 'true' AS user_new,
    SpanAttributes['closedloop.request.id'] AS request_id,
    SpanAttributes['closedloop.provider.request_id'] AS provider_request_id,
    JSONExtract(SpanAttributes['closedloop.tools'], 'Array(String)') AS tools,
    JSONExtract(SpanAttributes['closedloop.tools.defined'], 'Array(String)') AS tools_defined,
    toUInt32OrZero(SpanAttributes['closedloop.redactions']) AS redactions,
    StatusCode IN ('Error', 'STATUS_CODE_ERROR') AS is_error,
    SpanAttributes['error.type'] AS error_type
FROM (
    SELECT Timestamp, TraceId, SpanId, ParentSpanId, ServiceName, SpanName, SpanAttributes,
           Duration, StatusCode
    FROM ${database}.otel_traces_recent
    UNION ALL
    SELECT Timestamp, TraceId, SpanId, ParentSpanId, ServiceName, SpanName, SpanAttributes,
           Duration, StatusCode
    FROM ${database}.otel_traces
    WHERE (TraceId, SpanId) NOT IN (SELECT TraceId, SpanId FROM ${database}.otel_traces_recent)
)
WHERE SpanAttributes['gen_ai.operation.name'] != '' AND SpanName != 'closedloop.feedback';

INSERT INTO ${database}.feedback_signals
SELECT
    event_timestamp AS timestamp,
    TraceId AS trace_id,
    ParentSpanId AS target_span_id,
    SpanId AS feedback_span_id,
    ServiceName AS service_name,
    SpanAttributes['closedloop.feedback.kind'] AS kind,
    if(event_attributes['gen_ai.evaluation.name'] != '',
       event_attributes['gen_ai.evaluation.name'],
       SpanAttributes['closedloop.feedback.name']) AS name,
    toFloat64OrNull(event_attributes['gen_ai.evaluation.score.value']) AS value,
    event_attributes['gen_ai.evaluation.score.label'] AS label,
    event_attributes['gen_ai.evaluation.explanation'] AS explanation,
    SpanAttributes['closedloop.feedback.source'] AS source
FROM (
    SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanAttributes,
           Events.Timestamp AS event_timestamps, Events.Name AS event_names,
           Events.Attributes AS event_attributes_list
    FROM ${database}.otel_traces_recent
    WHERE SpanName = 'closedloop.feedback'
    UNION ALL
    SELECT TraceId, SpanId, ParentSpanId, ServiceName, SpanAttributes,
           Events.Timestamp AS event_timestamps, Events.Name AS event_names,
           Events.Attributes AS event_attributes_list
    FROM ${database}.otel_traces
    WHERE SpanName = 'closedloop.feedback'
      AND (TraceId, SpanId) NOT IN (SELECT TraceId, SpanId FROM ${database}.otel_traces_recent)
)
ARRAY JOIN
    event_timestamps AS event_timestamp,
    event_names AS event_name,
    event_attributes_list AS event_attributes
WHERE event_name = 'gen_ai.evaluation.result';

INSERT INTO ${database}.llm_call_content
SELECT
    Timestamp AS timestamp,
    TraceId AS trace_id,
    SpanId AS span_id,
    SpanAttributes['gen_ai.system_instructions'] AS system_instructions,
    SpanAttributes['gen_ai.input.messages'] AS input_messages,
    SpanAttributes['gen_ai.output.messages'] AS output_messages
FROM ${database}.otel_traces
WHERE SpanAttributes['gen_ai.operation.name'] != '' AND SpanName != 'closedloop.feedback'
  AND (system_instructions != '' OR input_messages != '' OR output_messages != '');

-- The feedback table (005), with content from llm_call_content: input and output are
-- empty for calls whose trace was not sampled. metadata also names the operation, as the
-- view holds every llm_calls row (embeddings and shadow calls included).
CREATE OR REPLACE VIEW ${database}.feedback AS
SELECT
    c.conversation_id AS conversation_id,
    c.turn AS turn_id,
    if(c.request_id != '', c.request_id, concat(c.trace_id, ':', c.span_id)) AS request_id,
    m.input_messages AS input,
    m.output_messages AS output,
    c.prompt_version AS prompt_version,
    if(c.response_model != '', c.response_model, c.request_model) AS model,
    if(f.feedback_span_id != '', f.kind, NULL) AS feedback_type,
    if(
        f.feedback_span_id != '',
        toJSONString(CAST(
            (f.name, f.value, f.label, f.explanation, f.source),
            'Tuple(name String, value Nullable(Float64), label String, explanation String, source String)'
        )),
        NULL
    ) AS feedback_value,
    if(f.feedback_span_id != '', f.timestamp, c.timestamp) AS timestamp,
    c.user_hash AS user_id_hash,
    toJSONString(CAST(
        (c.trace_id, c.span_id, c.timestamp, c.prompt_name, c.operation, c.experiment,
         c.variant, c.shadow, c.session_id, c.service_name, c.latency_ms, c.cost_usd,
         c.input_tokens, c.output_tokens, c.is_error, c.error_type, c.tools),
        'Tuple(trace_id String, span_id String, call_timestamp DateTime64(9, \'UTC\'), prompt_name String, operation String, experiment String, variant String, shadow Bool, session_id String, service_name String, latency_ms Float64, cost_usd Nullable(Float64), input_tokens UInt64, output_tokens UInt64, is_error Bool, error_type String, tools Array(String))'
    )) AS metadata
FROM ${database}.llm_calls AS c
LEFT JOIN (
    -- one row per span: an exporter retry may have stored a span twice
    SELECT
        trace_id,
        span_id,
        any(input_messages) AS input_messages,
        any(output_messages) AS output_messages
    FROM ${database}.llm_call_content
    GROUP BY trace_id, span_id
) AS m ON c.trace_id = m.trace_id AND c.span_id = m.span_id
LEFT JOIN ${database}.feedback_targets AS f
    ON c.trace_id = f.trace_id AND c.span_id = f.call_span_id;
