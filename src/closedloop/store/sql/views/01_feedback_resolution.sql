-- Feedback resolved to the LLM call it is about. A feedback span is parented to the
-- evaluated span; when that is not an LLM span (e.g. the app's request span, or feedback
-- given by trace id only) it applies to the trace's latest non-shadow generation: feedback
-- on a request is about the answer, never about an embedding made after it. Ties on
-- timestamp go to the larger span id.
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
    t.generations AS call_generations,
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
        groupArray(c.generation) AS generations,
        argMaxIf(c.span_id, (c.timestamp, c.span_id), c.generation AND NOT c.shadow)
            AS latest_span_id
    FROM ${database}.llm_calls AS c
    WHERE cityHash64(c.trace_id) IN (SELECT cityHash64(trace_id) FROM ${database}.feedback_signals)
    GROUP BY c.trace_id
) AS t
RIGHT JOIN ${database}.feedback_signals AS f ON f.trace_id = t.trace_id;
