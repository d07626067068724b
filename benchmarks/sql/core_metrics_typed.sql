SELECT prompt_name, prompt_version, toDate(timestamp, 'UTC') AS day,
    count() AS calls, countIf(is_error) / calls AS error_rate,
    quantilesExactInclusive(0.5, 0.95, 0.99)(latency_ms) AS latency,
    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
    sum(cost_usd) AS cost
FROM ${database}.llm_calls
GROUP BY prompt_name, prompt_version, day
FORMAT Null
