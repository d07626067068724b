-- The reference article's feedback table: one row per call and feedback signal (every
-- signal, not only the latest), calls without feedback included with NULL feedback. It
-- holds every llm_calls row (embeddings and shadow calls included), so metadata names the
-- operation. Content comes from llm_call_content: input and output are empty for calls
-- whose trace was not sampled.
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
