-- Every variant against the baseline, per metric: rate with its 95 % Wilson score
-- interval. Verdict rates (task success, thumbs up, reopened) count the calls with that
-- signal; event rates the calls. Intervals that do not overlap make a clear difference.
WITH
calls AS (
    SELECT c.trace_id AS trace_id, c.span_id AS span_id, c.variant AS arm,
           c.is_error AS is_error, c.timestamp AS call_time
    FROM llm_calls AS c
    WHERE $__timeFilter(c.timestamp)
      AND c.generation AND NOT c.shadow
      AND c.experiment = ${experiment:singlequote} AND c.variant != ''
      AND $__conditionalAll(c.service_name IN (${service:singlequote}), $service)
      AND $__conditionalAll(c.prompt_name IN (${prompt:singlequote}), $prompt)
),
-- The latest signal of each name per call (call_signals), as columns.
signals AS (
    SELECT
        s.trace_id AS trace_id,
        s.span_id AS span_id,
        countIf(s.name = 'task_succeeded') > 0 AS has_task,
        maxIf(s.value, s.name = 'task_succeeded') = 1 AS task_ok,
        countIf(s.name = 'thumbs') > 0 AS has_thumbs,
        maxIf(s.value, s.name = 'thumbs') = 1 AS thumbs_up,
        countIf(s.name = 'ticket_reopened') > 0 AS has_reopen,
        maxIf(s.value, s.name = 'ticket_reopened') = 1 AS reopened,
        maxIf(s.value, s.name = 'escalated') = 1 AS escalated,
        maxIf(s.value, s.name = 'needed_human_help') = 1 AS needed_help,
        countIf(s.name = 'safety' AND s.label IN ('low', 'medium', 'high')) > 0 AS unsafe,
        maxIf(s.value, s.name = 'retry') = 1 AS retried,
        maxIf(s.value, s.name = 'abandoned') = 1 AS abandoned
    FROM call_signals AS s
    WHERE s.trace_id IN (SELECT trace_id FROM calls)
    GROUP BY s.trace_id, s.span_id
),
per_arm AS (
    SELECT
        c.arm AS arm,
        count() AS calls_n,
        countIf(c.is_error) AS errors_x,
        countIf(g.has_task) AS task_n,
        countIf(g.task_ok) AS task_x,
        countIf(g.has_thumbs) AS thumbs_n,
        countIf(g.thumbs_up) AS thumbs_x,
        countIf(g.has_reopen) AS reopen_n,
        countIf(g.reopened) AS reopen_x,
        countIf(g.escalated) AS escalated_x,
        countIf(g.needed_help) AS help_x,
        countIf(g.unsafe) AS unsafe_x,
        countIf(g.retried) AS retry_x,
        countIf(g.abandoned) AS abandoned_x
    FROM calls AS c
    LEFT JOIN signals AS g ON c.trace_id = g.trace_id AND c.span_id = g.span_id
    GROUP BY arm
),
-- (metric, higher is better, denominator, events)
metrics AS (
    SELECT arm, m.1 AS metric, m.2 AS higher_is_better, m.3 AS n, m.4 AS x
    FROM per_arm
    ARRAY JOIN [
        ('task success', 1, task_n, task_x),
        ('thumbs up', 1, thumbs_n, thumbs_x),
        ('ticket reopened', 0, reopen_n, reopen_x),
        ('escalation', 0, calls_n, escalated_x),
        ('needed human help', 0, calls_n, help_x),
        ('safety trigger', 0, calls_n, unsafe_x),
        ('retry', 0, calls_n, retry_x),
        ('abandonment', 0, calls_n, abandoned_x),
        ('error', 0, calls_n, errors_x)
    ] AS m
),
wilson AS (
    SELECT
        arm, metric, higher_is_better, n, x,
        x / nullIf(n, 0) AS rate,
        1.959964 AS z,
        (rate + z * z / (2 * n)) / (1 + z * z / n) AS center,
        z * sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n) AS half_width,
        center - half_width AS ci_low,
        center + half_width AS ci_high
    FROM metrics
)
SELECT
    w.metric AS metric,
    w.arm AS variant,
    if(w.arm = ${baseline:singlequote}, 'baseline', 'candidate') AS role,
    w.n AS denominator,
    w.x AS events,
    w.rate AS rate,
    w.ci_low AS ci_low,
    w.ci_high AS ci_high,
    w.rate - b.rate AS diff_vs_baseline,
    multiIf(
        role = 'baseline', '',
        w.ci_low > b.ci_high, if(w.higher_is_better = 1, 'better', 'worse'),
        w.ci_high < b.ci_low, if(w.higher_is_better = 1, 'worse', 'better'),
        'no clear difference'
    ) AS verdict
FROM wilson AS w
LEFT JOIN (
    SELECT metric, rate, ci_low, ci_high FROM wilson WHERE arm = ${baseline:singlequote}
) AS b ON w.metric = b.metric
ORDER BY metric, role, variant
