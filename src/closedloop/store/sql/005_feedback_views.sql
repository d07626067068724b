-- Feedback resolved to the LLM call it is about. A feedback span is parented to the
-- evaluated span; when that is not an LLM span (e.g. the app's request span, or feedback
-- given by trace id only) it applies to the trace's latest non-shadow LLM call.
CREATE OR REPLACE VIEW ${database}.feedback_targets AS
SELECT
    f.timestamp AS timestamp,
    f.trace_id AS trace_id,
    if(direct.span_id != '', direct.span_id, latest.span_id) AS call_span_id,
    f.feedback_span_id AS feedback_span_id,
    f.kind AS kind,
    f.name AS name,
    f.value AS value,
    f.label AS label,
    f.explanation AS explanation,
    f.source AS source
FROM ${database}.feedback_signals AS f
LEFT JOIN (
    SELECT trace_id, span_id
    FROM ${database}.llm_calls
    WHERE trace_id IN (SELECT trace_id FROM ${database}.feedback_signals)
) AS direct ON f.trace_id = direct.trace_id AND f.target_span_id = direct.span_id
LEFT JOIN (
    SELECT trace_id, argMax(span_id, (timestamp, span_id)) AS span_id
    FROM ${database}.llm_calls
    WHERE NOT shadow AND trace_id IN (SELECT trace_id FROM ${database}.feedback_signals)
    GROUP BY trace_id
) AS latest ON f.trace_id = latest.trace_id;

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

-- The reference article's feedback table: one row per call and feedback signal (every
-- signal, not only the latest), calls without feedback included with NULL feedback.
CREATE OR REPLACE VIEW ${database}.feedback AS
SELECT
    c.conversation_id AS conversation_id,
    c.turn AS turn_id,
    if(c.request_id != '', c.request_id, concat(c.trace_id, ':', c.span_id)) AS request_id,
    c.input_messages AS input,
    c.output_messages AS output,
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
        (c.trace_id, c.span_id, c.timestamp, c.prompt_name, c.experiment, c.variant,
         c.shadow, c.session_id, c.service_name, c.latency_ms, c.cost_usd, c.input_tokens,
         c.output_tokens, c.is_error, c.error_type, c.tools),
        'Tuple(trace_id String, span_id String, call_timestamp DateTime64(9, \'UTC\'), prompt_name String, experiment String, variant String, shadow Bool, session_id String, service_name String, latency_ms Float64, cost_usd Nullable(Float64), input_tokens UInt64, output_tokens UInt64, is_error Bool, error_type String, tools Array(String))'
    )) AS metadata
FROM ${database}.llm_calls AS c
LEFT JOIN ${database}.feedback_targets AS f
    ON c.trace_id = f.trace_id AND c.span_id = f.call_span_id;
