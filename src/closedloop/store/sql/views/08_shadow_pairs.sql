-- Each shadow call next to the production call it shadows, to compare their outputs
-- (Contract 5). A shadow LLM span links to the production call's span and is its child,
-- in the same trace (so tail sampling and the rescue keep or drop both together): the
-- pair is (trace_id, parent_span_id) in llm_calls, which holds every call, sampled or
-- not, for the long TTL. One row per shadow call whose parent is a production LLM call:
-- a shadow linked to any other span (the app's request span) has no row.
--
-- Latency, cost, tokens and errors cover every pair. Inputs and outputs come from
-- llm_call_content, which has content of sampled traces only: both sides are '' when
-- the trace was not kept (or content capture was off), and a shadow span that reached
-- the collector after its trace's sampling decision may lack content on its side only.
-- Filter on production_output != '' AND shadow_output != '' to compare texts.
CREATE OR REPLACE VIEW ${database}.shadow_pairs AS
WITH
shadows AS (
    SELECT * FROM ${database}.llm_calls WHERE shadow
),
content AS (
    -- one row per span: an exporter retry may have stored a span twice
    SELECT
        trace_id,
        span_id,
        any(input_messages) AS input_messages,
        any(output_messages) AS output_messages
    FROM ${database}.llm_call_content
    WHERE trace_id IN (SELECT trace_id FROM shadows)
    GROUP BY trace_id, span_id
)
SELECT
    s.prompt_name AS prompt_name,
    p.prompt_version AS production_version,
    s.prompt_version AS shadow_version,
    s.experiment AS experiment,
    s.trace_id AS trace_id,
    p.span_id AS production_span_id,
    s.span_id AS shadow_span_id,
    p.timestamp AS production_timestamp,
    s.timestamp AS shadow_timestamp,
    if(p.response_model != '', p.response_model, p.request_model) AS production_model,
    if(s.response_model != '', s.response_model, s.request_model) AS shadow_model,
    pc.input_messages AS production_input,
    sc.input_messages AS shadow_input,
    pc.output_messages AS production_output,
    sc.output_messages AS shadow_output,
    p.latency_ms AS production_latency_ms,
    s.latency_ms AS shadow_latency_ms,
    p.cost_usd AS production_cost_usd,
    s.cost_usd AS shadow_cost_usd,
    p.input_tokens AS production_input_tokens,
    s.input_tokens AS shadow_input_tokens,
    p.output_tokens AS production_output_tokens,
    s.output_tokens AS shadow_output_tokens,
    p.is_error AS production_is_error,
    s.is_error AS shadow_is_error,
    p.error_type AS production_error_type,
    s.error_type AS shadow_error_type
FROM shadows AS s
INNER JOIN (
    SELECT * FROM ${database}.llm_calls
    WHERE NOT shadow AND trace_id IN (SELECT trace_id FROM shadows)
) AS p ON p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
LEFT JOIN content AS pc ON pc.trace_id = p.trace_id AND pc.span_id = p.span_id
LEFT JOIN content AS sc ON sc.trace_id = s.trace_id AND sc.span_id = s.span_id;
