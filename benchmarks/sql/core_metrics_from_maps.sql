SELECT SpanAttributes['gen_ai.prompt.name'] AS prompt_name,
    SpanAttributes['gen_ai.prompt.version'] AS prompt_version,
    toDate(Timestamp, 'UTC') AS day,
    count() AS calls, countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR')) / calls AS error_rate,
    quantilesExactInclusive(0.5, 0.95, 0.99)(
        ifNull(toFloat64OrNull(SpanAttributes['closedloop.latency.ms']), Duration / 1e6)) AS latency,
    sum(toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens'])) AS input_tokens,
    sum(toUInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens'])) AS output_tokens,
    sum(toFloat64OrNull(SpanAttributes['closedloop.cost.usd'])) AS cost
FROM ${database}.otel_traces_recent
WHERE SpanAttributes['gen_ai.operation.name'] != '' AND SpanName != 'closedloop.feedback'
GROUP BY prompt_name, prompt_version, day
FORMAT Null
