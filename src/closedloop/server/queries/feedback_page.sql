-- /api/feedback: one page of the feedback view, newest first. A NULL parameter filters
-- nothing. Keyset paging: rows at or before the cursor's (time, trace, span), skipping the
-- `skip` rows of that very key already returned (ties are ordered by the rest of the row,
-- so the skipped ones are always the same).
--
-- Only rows at or after `floor_ns` (feedback_floor.sql; NULL: all): the view's rows are
-- computed for the traces that can hold such a row alone (a call or signal in the window
-- at or after the floor, filtered as feedback_floor.sql filters), instead of for every
-- call. A trace's rows depend on its own calls, content and signals only, so they are the
-- view's rows (04_feedback.sql, with 01 and 02's resolution, inlined on those traces).
WITH
traces AS (
    SELECT trace_id
    FROM ${database}.llm_calls
    WHERE {name:Nullable(String)} IS NULL AND {type:Nullable(String)} IS NULL
      AND ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
      AND ({version:Nullable(String)} IS NULL OR prompt_version = {version:Nullable(String)})
      AND ({floor_ns:Nullable(Int64)} IS NULL
            OR timestamp >= fromUnixTimestamp64Nano({floor_ns:Nullable(Int64)}))
      AND ({from_ns:Nullable(Int64)} IS NULL
            OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
      AND ({to_ns:Nullable(Int64)} IS NULL
            OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
      AND ({cursor_ns:Nullable(Int64)} IS NULL
            OR timestamp <= fromUnixTimestamp64Nano({cursor_ns:Nullable(Int64)}))
    UNION DISTINCT
    SELECT trace_id
    FROM ${database}.feedback_signals
    WHERE ({name:Nullable(String)} IS NULL OR name = {name:Nullable(String)})
      AND ({type:Nullable(String)} IS NULL OR kind = {type:Nullable(String)})
      AND ({floor_ns:Nullable(Int64)} IS NULL
            OR timestamp >= fromUnixTimestamp64Nano({floor_ns:Nullable(Int64)}))
      AND ({from_ns:Nullable(Int64)} IS NULL
            OR timestamp >= fromUnixTimestamp64Nano({from_ns:Nullable(Int64)}))
      AND ({to_ns:Nullable(Int64)} IS NULL
            OR timestamp <= fromUnixTimestamp64Nano({to_ns:Nullable(Int64)}))
      AND ({cursor_ns:Nullable(Int64)} IS NULL
            OR timestamp <= fromUnixTimestamp64Nano({cursor_ns:Nullable(Int64)}))
),
-- feedback_targets on these traces: each signal with the call it is about
targets AS (
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
    FROM (
        SELECT
            f.timestamp AS timestamp,
            f.trace_id AS trace_id,
            f.feedback_span_id AS feedback_span_id,
            f.kind AS kind,
            f.name AS name,
            f.value AS value,
            f.label AS label,
            f.explanation AS explanation,
            f.source AS source,
            countEqual(t.span_ids, f.target_span_id) AS direct_calls,
            if(direct_calls > 0 AND f.target_span_id != '', f.target_span_id, t.latest_span_id)
                AS call_span_id
        FROM (
            SELECT
                trace_id,
                groupArray(span_id) AS span_ids,
                argMaxIf(span_id, (timestamp, span_id), generation AND NOT shadow)
                    AS latest_span_id
            FROM ${database}.llm_calls
            WHERE trace_id IN traces
            GROUP BY trace_id
        ) AS t
        RIGHT JOIN (
            SELECT * FROM ${database}.feedback_signals WHERE trace_id IN traces
        ) AS f ON f.trace_id = t.trace_id
    )
    ARRAY JOIN range(greatest(direct_calls, 1)) AS copy
),
feedback AS (
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
    FROM (
        SELECT *
        FROM ${database}.llm_calls
        WHERE trace_id IN traces
          AND ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
          AND ({version:Nullable(String)} IS NULL
                OR prompt_version = {version:Nullable(String)})
    ) AS c
    LEFT JOIN (
        -- one row per span: an exporter retry may have stored a span twice
        SELECT
            trace_id,
            span_id,
            any(input_messages) AS input_messages,
            any(output_messages) AS output_messages
        FROM ${database}.llm_call_content
        WHERE trace_id IN traces
        GROUP BY trace_id, span_id
    ) AS m ON c.trace_id = m.trace_id AND c.span_id = m.span_id
    LEFT JOIN targets AS f ON c.trace_id = f.trace_id AND c.span_id = f.call_span_id
)
SELECT
    conversation_id,
    turn_id,
    request_id,
    input,
    output,
    prompt_version,
    model,
    feedback_type,
    feedback_value,
    toUnixTimestamp64Nano(timestamp) AS timestamp_ns,
    user_id_hash,
    metadata,
    JSONExtractString(metadata, 'trace_id') AS trace_id,
    JSONExtractString(metadata, 'span_id') AS span_id
FROM feedback
WHERE ({prompt:Nullable(String)} IS NULL
        OR JSONExtractString(metadata, 'prompt_name') = {prompt:Nullable(String)})
  AND ({version:Nullable(String)} IS NULL OR prompt_version = {version:Nullable(String)})
  AND ({name:Nullable(String)} IS NULL
        OR JSONExtractString(feedback_value, 'name') = {name:Nullable(String)})
  AND ({type:Nullable(String)} IS NULL OR feedback_type = {type:Nullable(String)})
  AND ({floor_ns:Nullable(Int64)} IS NULL OR timestamp_ns >= {floor_ns:Nullable(Int64)})
  AND ({from_ns:Nullable(Int64)} IS NULL OR timestamp_ns >= {from_ns:Nullable(Int64)})
  AND ({to_ns:Nullable(Int64)} IS NULL OR timestamp_ns <= {to_ns:Nullable(Int64)})
  AND ({cursor_ns:Nullable(Int64)} IS NULL
        OR (timestamp_ns, trace_id, span_id)
            <= ({cursor_ns:Nullable(Int64)}, {cursor_trace:String}, {cursor_span:String}))
ORDER BY timestamp_ns DESC, trace_id DESC, span_id DESC, feedback_value DESC, feedback_type DESC
LIMIT {limit:UInt32} OFFSET {skip:UInt32}
