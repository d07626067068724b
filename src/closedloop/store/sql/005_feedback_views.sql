-- Feedback resolved to the LLM call it is about. A feedback span is parented to the
-- evaluated span; when that is not an LLM span (e.g. the app's request span, or feedback
-- given by trace id only) it applies to the trace's latest non-shadow LLM call.
--
-- feedback_resolution applies that rule once for every view: each feedback signal with
-- the span id of its call (call_span_id), next to the llm_calls rows of its trace as
-- parallel call_* arrays (one element per row, in no particular order), so that views
-- needing a call's attributes take them from here instead of joining all of llm_calls.
-- llm_calls is read once, and only the rows of traces with feedback are grouped: the
-- hash IN is a pre-filter (a collision only lets extra rows through, and the join
-- compares the trace ids themselves).
CREATE OR REPLACE VIEW ${database}.feedback_resolution AS
SELECT
    f.timestamp AS timestamp,
    f.trace_id AS trace_id,
    f.target_span_id AS target_span_id,
    f.feedback_span_id AS feedback_span_id,
    f.kind AS kind,
    f.name AS name,
    f.value AS value,
    f.label AS label,
    f.explanation AS explanation,
    f.source AS source,
    t.span_ids AS call_span_ids,
    t.timestamps AS call_timestamps,
    t.shadows AS call_shadows,
    t.prompt_names AS call_prompt_names,
    t.prompt_versions AS call_prompt_versions,
    -- llm_calls rows that are the target span itself (0: the fallback applies).
    countEqual(call_span_ids, f.target_span_id) AS direct_calls,
    if(direct_calls > 0 AND f.target_span_id != '', f.target_span_id, t.latest_span_id)
        AS call_span_id,
    -- Positions in the call_* arrays of the llm_calls rows of that call, none when the
    -- signal resolves to no call. (trace_id, position) names one llm_calls row within a
    -- query: the arrays are built once per query.
    if(call_span_id = '', [],
       arrayFilter((i, span) -> span = call_span_id, arrayEnumerate(call_span_ids), call_span_ids))
        AS call_indexes
-- Every feedback signal, with its trace's llm_calls rows if any. (A RIGHT JOIN so that
-- the hash table holds the feedback rows rather than the arrays: faster.)
FROM (
    SELECT
        c.trace_id AS trace_id,
        groupArray(c.span_id) AS span_ids,
        groupArray(c.timestamp) AS timestamps,
        groupArray(c.shadow) AS shadows,
        groupArray(c.prompt_name) AS prompt_names,
        groupArray(c.prompt_version) AS prompt_versions,
        argMaxIf(c.span_id, (c.timestamp, c.span_id), NOT c.shadow) AS latest_span_id
    FROM ${database}.llm_calls AS c
    WHERE cityHash64(c.trace_id) IN (SELECT cityHash64(trace_id) FROM ${database}.feedback_signals)
    GROUP BY c.trace_id
) AS t
RIGHT JOIN ${database}.feedback_signals AS f ON f.trace_id = t.trace_id;

-- One row per feedback signal and stored llm_calls row of its target span (as a join on
-- the span ids gives), or one row when the fallback applies.
CREATE OR REPLACE VIEW ${database}.feedback_targets AS
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
FROM ${database}.feedback_resolution
ARRAY JOIN range(greatest(direct_calls, 1)) AS copy;

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
