-- Per unit of randomisation (the hashed user, or each call), the sums every metric of
-- prompt_version_metrics is a ratio of, for the two versions compared in [since, until);
-- with units = users, also the same sums over the user's calls of this prompt (any
-- version) in [pre_since, since): the pre-experiment covariates CUPED adjusts by.
-- Signals are each call's latest of each name (the call_signals view's definition, computed
-- on these calls' traces only), as in the metrics view; shadow calls and non-generations
-- are left out the same way. A unit with calls in both versions (baseline_calls and
-- candidate_calls both positive): compare() leaves it out and counts it.
WITH
calls AS (
    SELECT
        c.trace_id AS trace_id,
        c.span_id AS span_id,
        c.prompt_version AS version,
        if({by_user:UInt8} = 1, c.user_hash, concat(c.trace_id, ':', c.span_id)) AS unit,
        c.timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})
            AND c.prompt_version IN ({baseline:String}, {candidate:String}) AS in_experiment,
        c.timestamp < fromUnixTimestamp64Nano({since_ns:Int64}) AS before,
        c.is_error AS is_error,
        c.latency_ms AS latency_ms,
        ifNull(c.cost_usd, 0) AS cost_usd
    FROM ${database}.llm_calls AS c
    WHERE c.prompt_name = {prompt:String}
      AND c.generation
      AND NOT c.shadow
      AND c.timestamp >= fromUnixTimestamp64Nano({pre_since_ns:Int64})
      AND c.timestamp < fromUnixTimestamp64Nano({until_ns:Int64})
      -- any other call adds to no sum, and a unit of only such calls has no row (calls =
      -- 0): their traces' signals need no resolving
      AND (in_experiment OR before)
),
-- call_signals on these calls' traces only (the view resolves every signal of the store
-- before a filter applies): feedback_resolution's rule, the target span when it is an LLM
-- span of the trace, else the trace's latest non-shadow generation, then the latest
-- signal of each name per call
trace_signals AS (
    SELECT
        trace_id,
        target_span_id,
        name,
        value,
        label,
        -- (timestamp, feedback_span_id) as one String that sorts the same: the timestamp's
        -- 8 bytes big-endian, sign bit flipped (negative before positive), then the span
        -- id. argMax compares a String in a fast path of its own, a tuple field by field
        concat(
            reverse(reinterpretAsFixedString(
                bitXor(toUInt64(toUnixTimestamp64Nano(timestamp)), 9223372036854775808))),
            feedback_span_id
        ) AS latest_key
    FROM ${database}.feedback_signals
    WHERE trace_id IN (SELECT trace_id FROM calls)
      -- the names summed below: a call's other signals change no sum
      AND name IN ('task_succeeded', 'ticket_reopened', 'thumbs', 'rating', 'edit_ratio',
                   'needed_human_help', 'escalated', 'safety', 'retry', 'abandoned')
),
traces AS (
    SELECT
        trace_id,
        groupArray(span_id) AS span_ids,
        argMaxIf(span_id, (timestamp, span_id), generation AND NOT shadow) AS latest_span_id
    FROM ${database}.llm_calls
    WHERE trace_id IN (SELECT trace_id FROM calls)
    GROUP BY trace_id
),
-- per call, from its latest signal of each name: call_signals' rows (one per name, its
-- argMax value and label) taken in one grouping, each name's argMax by argMaxIf
signals AS (
    SELECT
        s.trace_id AS trace_id,
        if(has(t.span_ids, s.target_span_id) AND s.target_span_id != '',
           s.target_span_id, t.latest_span_id) AS span_id,
        toUInt64(countIf(s.name = 'task_succeeded') > 0) AS call_task_outcomes,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'task_succeeded') = 1, 0))
            AS call_tasks_succeeded,
        toUInt64(countIf(s.name = 'ticket_reopened') > 0) AS call_reopen_outcomes,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'ticket_reopened') = 1, 0))
            AS call_reopened,
        toUInt64(countIf(s.name = 'thumbs') > 0) AS call_thumbs_votes,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'thumbs') = 1, 0))
            AS call_thumbs_up,
        toUInt64(countIf(s.name = 'rating') > 0) AS call_ratings,
        if(call_ratings > 0, ifNull(argMaxIf(s.value, s.latest_key, s.name = 'rating'), 0), 0)
            AS call_rating_sum,
        toUInt64(countIf(s.name = 'edit_ratio') > 0) AS call_edits,
        if(call_edits > 0, ifNull(argMaxIf(s.value, s.latest_key, s.name = 'edit_ratio'), 0), 0)
            AS call_edit_ratio_sum,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'needed_human_help') = 1, 0))
            AS call_needed_human_help,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'escalated') = 1, 0))
            AS call_escalated,
        toUInt64(
            countIf(s.name = 'safety') > 0
            AND argMaxIf(s.label, s.latest_key, s.name = 'safety') IN ('low', 'medium', 'high')
        ) AS call_safety_triggered,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'retry') = 1, 0))
            AS call_retried,
        toUInt64(ifNull(argMaxIf(s.value, s.latest_key, s.name = 'abandoned') = 1, 0))
            AS call_abandoned
    FROM trace_signals AS s
    INNER JOIN traces AS t ON s.trace_id = t.trace_id
    GROUP BY trace_id, span_id
    HAVING span_id != ''
),
per_call AS (
    SELECT c.*, s.* EXCEPT (trace_id, span_id)
    FROM calls AS c
    LEFT JOIN signals AS s ON s.trace_id = c.trace_id AND s.span_id = c.span_id
)
SELECT
    unit,
    countIf(in_experiment AND version = {baseline:String}) AS baseline_calls,
    countIf(in_experiment AND version = {candidate:String}) AS candidate_calls,
    baseline_calls + candidate_calls AS calls,
    countIf(in_experiment AND is_error) AS errors,
    sumIf(latency_ms, in_experiment) AS latency_sum,
    -- sorted, with the rows ordered by unit below: the bootstrap's seeded resampling then
    -- sees the same input on every run (groupArray's order follows the parts read)
    arraySort(groupArrayIf(latency_ms, in_experiment)) AS latencies,
    sumIf(cost_usd, in_experiment) AS cost_sum,
    sumIf(call_task_outcomes, in_experiment) AS task_outcomes,
    sumIf(call_tasks_succeeded, in_experiment) AS tasks_succeeded,
    sumIf(call_reopen_outcomes, in_experiment) AS reopen_outcomes,
    sumIf(call_reopened, in_experiment) AS reopened,
    sumIf(call_thumbs_votes, in_experiment) AS thumbs_votes,
    sumIf(call_thumbs_up, in_experiment) AS thumbs_up,
    sumIf(call_ratings, in_experiment) AS ratings,
    sumIf(call_rating_sum, in_experiment) AS rating_sum,
    sumIf(call_edits, in_experiment) AS edits,
    sumIf(call_edit_ratio_sum, in_experiment) AS edit_ratio_sum,
    sumIf(call_needed_human_help, in_experiment) AS needed_human_help,
    sumIf(call_escalated, in_experiment) AS escalated,
    sumIf(call_safety_triggered, in_experiment) AS safety_triggered,
    sumIf(call_retried, in_experiment) AS retried,
    sumIf(call_abandoned, in_experiment) AS abandoned,
    -- the same over the pre-experiment period
    countIf(before) AS pre_calls,
    countIf(before AND is_error) AS pre_errors,
    sumIf(latency_ms, before) AS pre_latency_sum,
    sumIf(cost_usd, before) AS pre_cost_sum,
    sumIf(call_task_outcomes, before) AS pre_task_outcomes,
    sumIf(call_tasks_succeeded, before) AS pre_tasks_succeeded,
    sumIf(call_reopen_outcomes, before) AS pre_reopen_outcomes,
    sumIf(call_reopened, before) AS pre_reopened,
    sumIf(call_thumbs_votes, before) AS pre_thumbs_votes,
    sumIf(call_thumbs_up, before) AS pre_thumbs_up,
    sumIf(call_ratings, before) AS pre_ratings,
    sumIf(call_rating_sum, before) AS pre_rating_sum,
    sumIf(call_edits, before) AS pre_edits,
    sumIf(call_edit_ratio_sum, before) AS pre_edit_ratio_sum,
    sumIf(call_needed_human_help, before) AS pre_needed_human_help,
    sumIf(call_escalated, before) AS pre_escalated,
    sumIf(call_safety_triggered, before) AS pre_safety_triggered,
    sumIf(call_retried, before) AS pre_retried,
    sumIf(call_abandoned, before) AS pre_abandoned
FROM per_call
GROUP BY unit
HAVING calls > 0
ORDER BY unit
