-- closedloop report: prompt_version_metrics over a run of UTC days, one row per prompt version.
-- Counts are summed over the days. Each rate is rebuilt from its numerator and denominator
-- (the view's rate times its denominator, an exact count): an average of daily rates would
-- weigh a quiet day like a busy one. Quantiles do not add up, so latency comes from
-- llm_calls, over the calls the view counts (generations, not shadow). Filters are
-- literals written in by the CLI ('' matches any): the statement runs as read-only SQL,
-- on the store or through closedloop serve, which binds no parameters.
WITH
days AS (
    SELECT
        v.prompt_name AS prompt_name,
        v.prompt_version AS prompt_version,
        min(v.day) AS first_day,
        max(v.day) AS last_day,
        sum(v.calls) AS calls,
        sum(v.errors) AS errors,
        sum(v.task_outcomes) AS task_outcomes,
        sum(v.tasks_succeeded) AS tasks_succeeded,
        sum(round(ifNull(v.escalation_rate, 0) * v.calls)) AS escalated_calls,
        sum(round(ifNull(v.needs_human_help_rate, 0) * v.calls)) AS needed_human_help_calls,
        sum(v.reopen_outcomes) AS reopen_outcomes,
        sum(round(ifNull(v.reopen_rate, 0) * v.reopen_outcomes)) AS reopened_tickets,
        sum(v.thumbs_votes) AS thumbs_votes,
        sum(round(ifNull(v.thumbs_up_rate, 0) * v.thumbs_votes)) AS thumbs_up_votes,
        sum(v.input_tokens) AS input_tokens,
        sum(v.output_tokens) AS output_tokens,
        sum(v.total_cost_usd) AS total_cost_usd,
        sum(v.priced_calls) AS priced_calls
    FROM prompt_version_metrics AS v
    WHERE v.day >= toDate({since})
        AND ({prompt} = '' OR v.prompt_name = {prompt})
        AND ({version} = '' OR v.prompt_version = {version})
    GROUP BY v.prompt_name, v.prompt_version
    HAVING calls > 0
),
latency AS (
    SELECT
        prompt_name,
        prompt_version,
        quantilesExactInclusive(0.5, 0.95)(latency_ms) AS latency_quantiles
    FROM llm_calls
    WHERE generation AND NOT shadow
        AND toDate(timestamp, 'UTC') >= toDate({since})
        AND ({prompt} = '' OR prompt_name = {prompt})
        AND ({version} = '' OR prompt_version = {version})
    GROUP BY prompt_name, prompt_version
)
SELECT
    d.prompt_name AS prompt_name,
    d.prompt_version AS prompt_version,
    d.first_day AS first_day,
    d.last_day AS last_day,
    d.calls AS calls,
    d.errors AS errors,
    d.errors / d.calls AS error_rate,
    l.latency_quantiles[1] AS latency_p50_ms,
    l.latency_quantiles[2] AS latency_p95_ms,
    d.input_tokens AS input_tokens,
    d.output_tokens AS output_tokens,
    d.total_cost_usd AS total_cost_usd,
    d.priced_calls AS priced_calls,
    d.task_outcomes AS task_outcomes,
    d.tasks_succeeded / nullIf(d.task_outcomes, 0) AS task_success_rate,
    d.reopen_outcomes AS reopen_outcomes,
    d.reopened_tickets / nullIf(d.reopen_outcomes, 0) AS reopen_rate,
    d.escalated_calls / d.calls AS escalation_rate,
    d.needed_human_help_calls / d.calls AS needs_human_help_rate,
    d.thumbs_votes AS thumbs_votes,
    d.thumbs_up_votes / nullIf(d.thumbs_votes, 0) AS thumbs_up_rate
FROM days AS d
INNER JOIN latency AS l
    ON d.prompt_name = l.prompt_name AND d.prompt_version = l.prompt_version
ORDER BY prompt_name, prompt_version
