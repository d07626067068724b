-- Per prompt version and day, the counts of prompt_version_metrics' rows (docs/metrics.md)
-- that /api/overview and /api/versions show, for the rows the filters keep: a NULL
-- parameter filters nothing; days are inclusive bounds. Both include it as a subquery.
-- The view resolves every signal of the store to its
-- call, joining them row by row; this reads only the four signals the pages show, on the
-- traces of the window's calls, and resolves them with each trace's calls in one grouping
-- by trace (tests/server/test_query_rewrites.py checks the rows are the view's).
WITH
-- the view's calls_per_day, on the window's rows only
calls_per_day AS (
    SELECT
        c.prompt_name AS prompt_name,
        c.prompt_version AS prompt_version,
        toDate(c.timestamp, 'UTC') AS day,
        countIf(c.generation) AS calls,
        countIf(c.generation AND c.is_error) AS errors,
        quantilesExactInclusiveIf(0.5, 0.95, 0.99)(c.latency_ms, c.generation)
            AS latency_quantiles,
        sumIf(c.cost_usd, c.generation) AS total_cost_usd,
        countIf(c.generation AND c.cost_usd IS NOT NULL) AS priced_calls,
        sumIf(c.input_tokens, c.generation) AS input_tokens,
        sumIf(c.output_tokens, c.generation) AS output_tokens
    FROM ${database}.llm_calls AS c
    WHERE NOT c.shadow AND (c.generation OR c.operation = 'embeddings')
      AND ({prompt:Nullable(String)} IS NULL OR c.prompt_name = {prompt:Nullable(String)})
      AND ({from_day:Nullable(Date32)} IS NULL OR day >= {from_day:Nullable(Date32)})
      AND ({to_day:Nullable(Date32)} IS NULL OR day <= {to_day:Nullable(Date32)})
    GROUP BY prompt_name, prompt_version, day
),
-- the traces with a call in the window (every trace when nothing is filtered)
window_traces AS (
    SELECT c.trace_id AS trace_id
    FROM ${database}.llm_calls AS c
    WHERE c.generation AND NOT c.shadow
      AND ({prompt:Nullable(String)} IS NULL OR c.prompt_name = {prompt:Nullable(String)})
      AND ({from_day:Nullable(Date32)} IS NULL
            OR toDate(c.timestamp, 'UTC') >= {from_day:Nullable(Date32)})
      AND ({to_day:Nullable(Date32)} IS NULL
            OR toDate(c.timestamp, 'UTC') <= {to_day:Nullable(Date32)})
),
-- those traces' llm_calls rows (all of them: the resolution rule looks at every call)
-- and the signals the page shows, grouped by trace in one pass
trace_rows AS (
    SELECT
        c.trace_id AS trace_id,
        c.span_id AS span_id,
        c.timestamp AS timestamp,
        c.generation AND NOT c.shadow AS latest_candidate,
        c.generation AND NOT c.shadow
            AND ({prompt:Nullable(String)} IS NULL
                  OR c.prompt_name = {prompt:Nullable(String)})
            AND ({from_day:Nullable(Date32)} IS NULL
                  OR toDate(c.timestamp, 'UTC') >= {from_day:Nullable(Date32)})
            AND ({to_day:Nullable(Date32)} IS NULL
                  OR toDate(c.timestamp, 'UTC') <= {to_day:Nullable(Date32)}) AS in_window,
        c.prompt_name AS prompt_name,
        c.prompt_version AS prompt_version,
        false AS is_signal,
        '' AS target_span_id,
        '' AS feedback_span_id,
        '' AS name,
        CAST(NULL, 'Nullable(Float64)') AS value
    FROM ${database}.llm_calls AS c
    WHERE ({prompt:Nullable(String)} IS NULL AND {from_day:Nullable(Date32)} IS NULL
            AND {to_day:Nullable(Date32)} IS NULL)
       OR c.trace_id IN (SELECT trace_id FROM window_traces)
    UNION ALL
    SELECT
        s.trace_id,
        '',
        s.timestamp,
        false,
        false,
        '',
        '',
        true,
        s.target_span_id,
        s.feedback_span_id,
        toString(s.name),
        s.value
    FROM ${database}.feedback_signals AS s
    WHERE s.name IN ('task_succeeded', 'thumbs', 'ticket_reopened', 'escalated')
      AND (({prompt:Nullable(String)} IS NULL AND {from_day:Nullable(Date32)} IS NULL
             AND {to_day:Nullable(Date32)} IS NULL)
           OR s.trace_id IN (SELECT trace_id FROM window_traces))
),
traces AS (
    SELECT
        trace_id,
        groupArrayIf(span_id, NOT is_signal) AS span_ids,
        argMaxIf(span_id, (timestamp, span_id), latest_candidate) AS latest_span_id,
        -- the window's rows: a span stored twice is two rows, counted twice as the view does
        groupArrayIf((span_id, prompt_name, prompt_version, toDate(timestamp, 'UTC')), in_window)
            AS calls,
        groupArrayIf((target_span_id, name, value, timestamp, feedback_span_id), is_signal)
            AS signals
    FROM trace_rows
    GROUP BY trace_id
    HAVING notEmpty(calls) AND notEmpty(signals)
),
-- feedback_resolution's rule: the target span when it is an LLM span of the trace, else
-- the trace's latest non-shadow generation ('' when it has none: the signal is no call's)
resolved AS (
    SELECT
        calls,
        arrayMap(
            s -> (if(s.1 != '' AND has(span_ids, s.1), s.1, latest_span_id), s.2, s.3, s.4, s.5),
            signals
        ) AS signals
    FROM traces
),
-- the view's per_call for each window row with a signal: count and latest value per name
-- (arrayReduce runs the view's own aggregate functions)
per_call AS (
    SELECT
        call.2 AS prompt_name,
        call.3 AS prompt_version,
        call.4 AS day,
        arrayFilter(s -> s.1 = call.1 AND s.1 != '', signals) AS own,
        arrayMap(s -> s.2, own) AS names,
        arrayMap(s -> s.3, own) AS values,
        arrayMap(s -> (s.4, s.5), own) AS keys,
        countEqual(names, 'task_succeeded') AS has_task,
        arrayReduce('argMaxIf', values, keys, arrayMap(n -> n = 'task_succeeded', names))
            AS task_succeeded,
        arrayReduce('argMaxIf', values, keys, arrayMap(n -> n = 'escalated', names))
            AS escalated,
        countEqual(names, 'thumbs') AS has_thumbs,
        arrayReduce('argMaxIf', values, keys, arrayMap(n -> n = 'thumbs', names)) AS thumbs,
        countEqual(names, 'ticket_reopened') AS has_reopen,
        arrayReduce('argMaxIf', values, keys, arrayMap(n -> n = 'ticket_reopened', names))
            AS ticket_reopened
    FROM resolved
    ARRAY JOIN calls AS call
),
feedback_per_day AS (
    SELECT
        prompt_name,
        prompt_version,
        day,
        countIf(has_task > 0) AS task_outcomes,
        countIf(task_succeeded = 1) AS tasks_succeeded,
        countIf(escalated = 1) AS escalated_calls,
        countIf(has_thumbs > 0) AS thumbs_votes,
        countIf(thumbs = 1) AS thumbs_up_votes,
        countIf(has_reopen > 0) AS reopen_outcomes,
        countIf(ticket_reopened = 1) AS reopened_tickets
    FROM per_call
    WHERE notEmpty(own)
    GROUP BY prompt_name, prompt_version, day
)
SELECT
    c.prompt_name AS prompt_name,
    c.prompt_version AS prompt_version,
    c.day AS day,
    c.calls AS calls,
    c.errors AS errors,
    c.latency_quantiles AS latency_quantiles,
    c.total_cost_usd AS total_cost_usd,
    c.priced_calls AS priced_calls,
    c.input_tokens AS input_tokens,
    c.output_tokens AS output_tokens,
    ifNull(f.task_outcomes, 0) AS task_outcomes,
    ifNull(f.tasks_succeeded, 0) AS tasks_succeeded,
    ifNull(f.escalated_calls, 0) AS escalated_calls,
    ifNull(f.thumbs_votes, 0) AS thumbs_votes,
    ifNull(f.thumbs_up_votes, 0) AS thumbs_up_votes,
    ifNull(f.reopen_outcomes, 0) AS reopen_outcomes,
    ifNull(f.reopened_tickets, 0) AS reopened_tickets
FROM calls_per_day AS c
LEFT JOIN feedback_per_day AS f
    ON c.prompt_name = f.prompt_name AND c.prompt_version = f.prompt_version AND c.day = f.day
