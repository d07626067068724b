-- Per prompt, version and day (UTC): the metrics that matter. Definitions: docs/metrics.md.
-- Shadow calls are excluded: they never reach a user.
CREATE OR REPLACE VIEW ${database}.prompt_version_metrics AS
WITH per_call AS (
    SELECT
        trace_id,
        span_id,
        countIf(name = 'task_succeeded') AS has_task,
        maxIf(value, name = 'task_succeeded') AS task_succeeded,
        maxIf(value, name = 'needed_human_help') AS needed_human_help,
        maxIf(value, name = 'escalated') AS escalated,
        anyIf(label, name = 'safety') AS safety,
        countIf(name = 'thumbs') AS has_thumbs,
        maxIf(value, name = 'thumbs') AS thumbs,
        countIf(name = 'rating') AS has_rating,
        maxIf(value, name = 'rating') AS rating,
        countIf(name = 'edit_ratio') AS has_edit_ratio,
        maxIf(value, name = 'edit_ratio') AS edit_ratio,
        maxIf(value, name = 'retry') AS retry,
        maxIf(value, name = 'abandoned') AS abandoned,
        countIf(name = 'time_to_completion_s') AS has_completion,
        maxIf(value, name = 'time_to_completion_s') AS time_to_completion_s,
        countIf(name = 'ticket_reopened') AS has_reopen,
        maxIf(value, name = 'ticket_reopened') AS ticket_reopened
    FROM ${database}.call_signals
    GROUP BY trace_id, span_id
)
SELECT
    c.prompt_name AS prompt_name,
    c.prompt_version AS prompt_version,
    toDate(c.timestamp, 'UTC') AS day,
    count() AS calls,
    countIf(c.is_error) AS errors,
    errors / calls AS error_rate,
    countIf(f.has_task > 0) AS task_outcomes,
    countIf(f.task_succeeded = 1) AS tasks_succeeded,
    tasks_succeeded / nullIf(task_outcomes, 0) AS task_success_rate,
    countIf(f.needed_human_help = 1) / calls AS needs_human_help_rate,
    countIf(f.escalated = 1) / calls AS escalation_rate,
    countIf(f.safety IN ('low', 'medium', 'high')) / calls AS safety_trigger_rate,
    countIf(f.safety = 'low') / calls AS safety_low_rate,
    countIf(f.safety = 'medium') / calls AS safety_medium_rate,
    countIf(f.safety = 'high') / calls AS safety_high_rate,
    quantilesExactInclusive(0.5, 0.95, 0.99)(c.latency_ms)[1] AS latency_p50_ms,
    quantilesExactInclusive(0.5, 0.95, 0.99)(c.latency_ms)[2] AS latency_p95_ms,
    quantilesExactInclusive(0.5, 0.95, 0.99)(c.latency_ms)[3] AS latency_p99_ms,
    countIf(c.ttft_s IS NOT NULL) AS streamed_calls,
    if(streamed_calls > 0,
       quantilesExactInclusiveIf(0.5, 0.95)(c.ttft_s * 1000, c.ttft_s IS NOT NULL)[1],
       NULL) AS ttft_p50_ms,
    if(streamed_calls > 0,
       quantilesExactInclusiveIf(0.5, 0.95)(c.ttft_s * 1000, c.ttft_s IS NOT NULL)[2],
       NULL) AS ttft_p95_ms,
    sum(c.input_tokens) AS input_tokens,
    sum(c.output_tokens) AS output_tokens,
    sum(c.cost_usd) AS total_cost_usd,
    countIf(c.cost_usd IS NOT NULL) AS priced_calls,
    total_cost_usd / nullIf(tasks_succeeded, 0) AS cost_per_successful_task,
    countIf(f.has_thumbs > 0) AS thumbs_votes,
    countIf(f.thumbs = 1) / nullIf(thumbs_votes, 0) AS thumbs_up_rate,
    countIf(f.has_rating > 0) AS ratings,
    if(ratings > 0, avgIf(f.rating, f.has_rating > 0), NULL) AS mean_rating,
    countIf(f.has_edit_ratio > 0) AS edited_outputs,
    if(edited_outputs > 0, avgIf(f.edit_ratio, f.has_edit_ratio > 0), NULL) AS mean_edit_ratio,
    countIf(f.retry = 1) / calls AS retry_rate,
    countIf(f.abandoned = 1) / calls AS abandonment_rate,
    countIf(f.has_completion > 0) AS completions,
    if(completions > 0, avgIf(f.time_to_completion_s, f.has_completion > 0), NULL)
        AS mean_time_to_completion_s,
    countIf(f.has_reopen > 0) AS reopen_outcomes,
    countIf(f.ticket_reopened = 1) / nullIf(reopen_outcomes, 0) AS reopen_rate
FROM ${database}.llm_calls AS c
LEFT JOIN per_call AS f ON c.trace_id = f.trace_id AND c.span_id = f.span_id
WHERE NOT c.shadow
GROUP BY prompt_name, prompt_version, day;

-- Every outcome signal (kind = 'outcome'), long format: of the calls with that outcome
-- reported, how many have 1 (true) as latest value, and the mean latest value.
CREATE OR REPLACE VIEW ${database}.prompt_version_outcomes AS
SELECT
    c.prompt_name AS prompt_name,
    c.prompt_version AS prompt_version,
    toDate(c.timestamp, 'UTC') AS day,
    s.name AS outcome,
    count() AS reported,
    countIf(s.value = 1) AS positive,
    positive / reported AS rate,
    avg(s.value) AS mean_value
FROM ${database}.call_signals AS s
INNER JOIN ${database}.llm_calls AS c ON c.trace_id = s.trace_id AND c.span_id = s.span_id
WHERE s.kind = 'outcome' AND NOT c.shadow
GROUP BY prompt_name, prompt_version, day, outcome;
