-- Every outcome signal (kind = 'outcome') on generations, long format: of the calls with
-- that outcome reported, how many have 1 (true) as latest value, and the mean latest value.
CREATE OR REPLACE VIEW ${database}.prompt_version_outcomes AS
WITH latest AS (
    -- call_signals per llm_calls row, with the call's attributes.
    SELECT
        r.trace_id AS trace_id,
        call_index,
        r.name AS name,
        any(r.call_prompt_names[call_index]) AS call_prompt_name,
        any(r.call_prompt_versions[call_index]) AS call_prompt_version,
        any(r.call_timestamps[call_index]) AS call_timestamp,
        any(r.call_shadows[call_index]) AS shadow,
        any(r.call_generations[call_index]) AS generation,
        argMax(r.kind, (r.timestamp, r.feedback_span_id)) AS signal_kind,
        argMax(r.value, (r.timestamp, r.feedback_span_id)) AS signal_value
    FROM ${database}.feedback_resolution AS r
    ARRAY JOIN r.call_indexes AS call_index
    GROUP BY r.trace_id, call_index, r.name
)
SELECT
    toLowCardinality(l.call_prompt_name) AS prompt_name,
    toLowCardinality(l.call_prompt_version) AS prompt_version,
    toDate(l.call_timestamp, 'UTC') AS day,
    l.name AS outcome,
    count() AS reported,
    countIf(l.signal_value = 1) AS positive,
    positive / reported AS rate,
    avg(l.signal_value) AS mean_value
FROM latest AS l
WHERE l.signal_kind = 'outcome' AND l.generation AND NOT l.shadow
GROUP BY prompt_name, prompt_version, day, outcome;
