-- /api/versions: one row per prompt version over the window's days. Counts are sums of
-- prompt_version_metrics' daily rows (the day counts both UI routes share), and each rate
-- is recomputed from those sums (a rate's numerator is its daily rate times its daily
-- denominator, an exact whole number). A percentile cannot be summed, so p95 latency is
-- taken over the window's calls with the view's own definition (generations, no shadow
-- calls, quantileExactInclusive).
WITH
-- the view's rows the window keeps, with the columns summed below
days AS (
    SELECT
        prompt_name,
        prompt_version,
        day,
        calls,
        errors,
        total_cost_usd,
        priced_calls,
        input_tokens,
        output_tokens,
        task_outcomes,
        tasks_succeeded,
        thumbs_votes,
        thumbs_up_votes / nullIf(thumbs_votes, 0) AS thumbs_up_rate,
        reopen_outcomes,
        reopened_tickets / nullIf(reopen_outcomes, 0) AS reopen_rate,
        escalated_calls / nullIf(calls, 0) AS escalation_rate
    FROM (${include:version_days.sql})
),
totals AS (
    -- aliases differ from the columns they sum: a rate's numerator reads the daily column
    SELECT
        prompt_name,
        prompt_version,
        min(day) AS first_day,
        max(day) AS last_day,
        sum(calls) AS sum_calls,
        sum(errors) AS sum_errors,
        sum(task_outcomes) AS sum_task_outcomes,
        sum(tasks_succeeded) AS sum_tasks_succeeded,
        sum(thumbs_votes) AS sum_thumbs_votes,
        sum(round(ifNull(thumbs_up_rate, 0) * thumbs_votes)) AS sum_thumbs_up,
        sum(reopen_outcomes) AS sum_reopen_outcomes,
        sum(round(ifNull(reopen_rate, 0) * reopen_outcomes)) AS sum_reopened,
        sum(round(ifNull(escalation_rate, 0) * calls)) AS sum_escalated,
        sum(total_cost_usd) AS sum_cost_usd,
        sum(priced_calls) AS sum_priced_calls,
        sum(input_tokens) AS sum_input_tokens,
        sum(output_tokens) AS sum_output_tokens
    FROM days
    GROUP BY prompt_name, prompt_version
),
latency AS (
    SELECT
        prompt_name,
        prompt_version,
        quantileExactInclusive(0.95)(latency_ms) AS latency_p95_ms
    FROM ${database}.llm_calls
    WHERE generation AND NOT shadow
      AND ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
      AND ({from_day:Nullable(Date32)} IS NULL
            OR toDate(timestamp, 'UTC') >= {from_day:Nullable(Date32)})
      AND ({to_day:Nullable(Date32)} IS NULL
            OR toDate(timestamp, 'UTC') <= {to_day:Nullable(Date32)})
    GROUP BY prompt_name, prompt_version
)
SELECT
    t.prompt_name AS prompt_name,
    t.prompt_version AS prompt_version,
    t.first_day AS first_day,
    t.last_day AS last_day,
    t.sum_calls AS calls,
    t.sum_errors AS errors,
    t.sum_errors / nullIf(t.sum_calls, 0) AS error_rate,
    if(t.sum_calls > 0, l.latency_p95_ms, NULL) AS latency_p95_ms,
    t.sum_cost_usd AS total_cost_usd,
    t.sum_priced_calls AS priced_calls,
    t.sum_cost_usd / nullIf(t.sum_priced_calls, 0) AS cost_per_priced_call_usd,
    t.sum_input_tokens AS input_tokens,
    t.sum_output_tokens AS output_tokens,
    t.sum_task_outcomes AS task_outcomes,
    t.sum_tasks_succeeded / nullIf(t.sum_task_outcomes, 0) AS task_success_rate,
    t.sum_thumbs_votes AS thumbs_votes,
    t.sum_thumbs_up / nullIf(t.sum_thumbs_votes, 0) AS thumbs_up_rate,
    t.sum_reopen_outcomes AS reopen_outcomes,
    t.sum_reopened / nullIf(t.sum_reopen_outcomes, 0) AS reopen_rate,
    t.sum_escalated / nullIf(t.sum_calls, 0) AS escalation_rate
FROM totals AS t
LEFT JOIN latency AS l
    ON t.prompt_name = l.prompt_name AND t.prompt_version = l.prompt_version
ORDER BY prompt_name, prompt_version
