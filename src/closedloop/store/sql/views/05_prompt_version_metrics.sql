-- Per prompt, version and day (UTC): the metrics of generations, and embeddings apart.
-- Shadow calls are excluded: they never reach a user. A group with embeddings only has
-- calls = 0 and NULL rates. Definitions: docs/metrics.md.
CREATE OR REPLACE VIEW ${database}.prompt_version_metrics AS
WITH
-- Per llm_calls row with feedback: the latest value of each signal name (call_signals
-- with the names as columns), and the call's attributes.
per_call AS (
    SELECT
        r.trace_id AS trace_id,
        call_index,
        any(r.call_prompt_names[call_index]) AS prompt_name,
        any(r.call_prompt_versions[call_index]) AS prompt_version,
        any(r.call_timestamps[call_index]) AS call_timestamp,
        any(r.call_shadows[call_index]) AS shadow,
        any(r.call_generations[call_index]) AS generation,
        countIf(r.name = 'task_succeeded') AS has_task,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'task_succeeded')
            AS task_succeeded,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'needed_human_help')
            AS needed_human_help,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'escalated') AS escalated,
        argMaxIf(r.label, (r.timestamp, r.feedback_span_id), r.name = 'safety') AS safety,
        countIf(r.name = 'thumbs') AS has_thumbs,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'thumbs') AS thumbs,
        countIf(r.name = 'rating') AS has_rating,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'rating') AS rating,
        countIf(r.name = 'edit_ratio') AS has_edit_ratio,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'edit_ratio') AS edit_ratio,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'retry') AS retry,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'abandoned') AS abandoned,
        countIf(r.name = 'time_to_completion_s') AS has_completion,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'time_to_completion_s')
            AS time_to_completion_s,
        countIf(r.name = 'ticket_reopened') AS has_reopen,
        argMaxIf(r.value, (r.timestamp, r.feedback_span_id), r.name = 'ticket_reopened')
            AS ticket_reopened
    FROM ${database}.feedback_resolution AS r
    ARRAY JOIN r.call_indexes AS call_index
    GROUP BY r.trace_id, call_index
),
-- Feedback counts per prompt, version and day. A call without feedback adds nothing to
-- them, so they are taken over the calls with feedback only, and joined to all calls'.
feedback_per_day AS (
    SELECT
        p.prompt_name AS prompt_name,
        p.prompt_version AS prompt_version,
        toDate(p.call_timestamp, 'UTC') AS day,
        countIf(p.has_task > 0) AS task_outcomes,
        countIf(p.task_succeeded = 1) AS tasks_succeeded,
        countIf(p.needed_human_help = 1) AS needed_human_help_calls,
        countIf(p.escalated = 1) AS escalated_calls,
        countIf(p.safety IN ('low', 'medium', 'high')) AS safety_triggered_calls,
        countIf(p.safety = 'low') AS safety_low_calls,
        countIf(p.safety = 'medium') AS safety_medium_calls,
        countIf(p.safety = 'high') AS safety_high_calls,
        countIf(p.has_thumbs > 0) AS thumbs_votes,
        countIf(p.thumbs = 1) AS thumbs_up_votes,
        countIf(p.has_rating > 0) AS ratings,
        avgIf(p.rating, p.has_rating > 0) AS mean_rating,
        countIf(p.has_edit_ratio > 0) AS edited_outputs,
        avgIf(p.edit_ratio, p.has_edit_ratio > 0) AS mean_edit_ratio,
        countIf(p.retry = 1) AS retried_calls,
        countIf(p.abandoned = 1) AS abandoned_calls,
        countIf(p.has_completion > 0) AS completions,
        avgIf(p.time_to_completion_s, p.has_completion > 0) AS mean_time_to_completion_s,
        countIf(p.has_reopen > 0) AS reopen_outcomes,
        countIf(p.ticket_reopened = 1) AS reopened_tickets
    FROM per_call AS p
    WHERE p.generation AND NOT p.shadow
    GROUP BY prompt_name, prompt_version, day
),
calls_per_day AS (
    SELECT
        c.prompt_name AS prompt_name,
        c.prompt_version AS prompt_version,
        toDate(c.timestamp, 'UTC') AS day,
        countIf(c.generation) AS calls,
        countIf(c.generation AND c.is_error) AS errors,
        quantilesExactInclusiveIf(0.5, 0.95, 0.99)(c.latency_ms, c.generation)
            AS latency_quantiles,
        countIf(c.generation AND c.ttft_s IS NOT NULL) AS streamed_calls,
        quantilesExactInclusiveIf(0.5, 0.95)(
            c.ttft_s * 1000, c.generation AND c.ttft_s IS NOT NULL
        ) AS ttft_quantiles,
        sumIf(c.input_tokens, c.generation) AS input_tokens,
        sumIf(c.output_tokens, c.generation) AS output_tokens,
        sumIf(c.cost_usd, c.generation) AS total_cost_usd,
        countIf(c.generation AND c.cost_usd IS NOT NULL) AS priced_calls,
        countIf(c.operation = 'embeddings') AS embedding_calls,
        sumIf(c.input_tokens, c.operation = 'embeddings') AS embedding_input_tokens,
        sumIf(c.cost_usd, c.operation = 'embeddings') AS embedding_cost_usd
    FROM ${database}.llm_calls AS c
    WHERE NOT c.shadow AND (c.generation OR c.operation = 'embeddings')
    GROUP BY prompt_name, prompt_version, day
)
SELECT
    c.prompt_name AS prompt_name,
    c.prompt_version AS prompt_version,
    c.day AS day,
    c.calls AS calls,
    c.errors AS errors,
    errors / nullIf(calls, 0) AS error_rate,
    ifNull(f.task_outcomes, 0) AS task_outcomes,
    ifNull(f.tasks_succeeded, 0) AS tasks_succeeded,
    tasks_succeeded / nullIf(task_outcomes, 0) AS task_success_rate,
    ifNull(f.needed_human_help_calls, 0) / nullIf(calls, 0) AS needs_human_help_rate,
    ifNull(f.escalated_calls, 0) / nullIf(calls, 0) AS escalation_rate,
    ifNull(f.safety_triggered_calls, 0) / nullIf(calls, 0) AS safety_trigger_rate,
    ifNull(f.safety_low_calls, 0) / nullIf(calls, 0) AS safety_low_rate,
    ifNull(f.safety_medium_calls, 0) / nullIf(calls, 0) AS safety_medium_rate,
    ifNull(f.safety_high_calls, 0) / nullIf(calls, 0) AS safety_high_rate,
    if(calls > 0, c.latency_quantiles[1], NULL) AS latency_p50_ms,
    if(calls > 0, c.latency_quantiles[2], NULL) AS latency_p95_ms,
    if(calls > 0, c.latency_quantiles[3], NULL) AS latency_p99_ms,
    c.streamed_calls AS streamed_calls,
    if(streamed_calls > 0, c.ttft_quantiles[1], NULL) AS ttft_p50_ms,
    if(streamed_calls > 0, c.ttft_quantiles[2], NULL) AS ttft_p95_ms,
    c.input_tokens AS input_tokens,
    c.output_tokens AS output_tokens,
    c.total_cost_usd AS total_cost_usd,
    c.priced_calls AS priced_calls,
    total_cost_usd / nullIf(tasks_succeeded, 0) AS cost_per_successful_task,
    ifNull(f.thumbs_votes, 0) AS thumbs_votes,
    ifNull(f.thumbs_up_votes, 0) / nullIf(thumbs_votes, 0) AS thumbs_up_rate,
    ifNull(f.ratings, 0) AS ratings,
    if(ratings > 0, f.mean_rating, NULL) AS mean_rating,
    ifNull(f.edited_outputs, 0) AS edited_outputs,
    if(edited_outputs > 0, f.mean_edit_ratio, NULL) AS mean_edit_ratio,
    ifNull(f.retried_calls, 0) / nullIf(calls, 0) AS retry_rate,
    ifNull(f.abandoned_calls, 0) / nullIf(calls, 0) AS abandonment_rate,
    ifNull(f.completions, 0) AS completions,
    if(completions > 0, f.mean_time_to_completion_s, NULL) AS mean_time_to_completion_s,
    ifNull(f.reopen_outcomes, 0) AS reopen_outcomes,
    ifNull(f.reopened_tickets, 0) / nullIf(reopen_outcomes, 0) AS reopen_rate,
    c.embedding_calls AS embedding_calls,
    c.embedding_input_tokens AS embedding_input_tokens,
    c.embedding_cost_usd AS embedding_cost_usd
FROM calls_per_day AS c
LEFT JOIN feedback_per_day AS f
    ON c.prompt_name = f.prompt_name AND c.prompt_version = f.prompt_version AND c.day = f.day;
