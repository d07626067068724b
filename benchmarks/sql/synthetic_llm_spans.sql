-- Synthetic LLM spans with only the attributes the metrics read: fast to generate at
-- 10M rows, and written to the recent tier (every span) so llm_calls fills via its
-- materialized view, as the collector and closedloop's exporter fill it.
INSERT INTO ${database}.otel_traces_recent
    (Timestamp, TraceId, SpanId, SpanName, SpanKind, ServiceName, SpanAttributes, Duration, StatusCode)
SELECT
    now64(9) - toIntervalSecond(number % (7 * 86400)) AS Timestamp,
    lower(hex(cityHash64(number, 1))) || lower(hex(cityHash64(number, 2))) AS TraceId,
    lower(hex(cityHash64(number, 3))) AS SpanId,
    'chat gpt-4o-mini' AS SpanName,
    'Client' AS SpanKind,
    'bench' AS ServiceName,
    map(
        'gen_ai.operation.name', 'chat',
        'gen_ai.request.model', 'gpt-4o-mini',
        'gen_ai.prompt.name', ['support', 'triage'][number % 2 + 1],
        'gen_ai.prompt.version', ['v1', 'v2', 'v3'][number % 3 + 1],
        'gen_ai.usage.input_tokens', toString(100 + number % 900),
        'gen_ai.usage.output_tokens', toString(20 + number % 300),
        'closedloop.cost.usd', toString(round((100 + number % 900) * 1.5e-7, 9)),
        'closedloop.latency.ms', toString(200 + (cityHash64(number, 4) % 5000) / 3),
        'gen_ai.response.time_to_first_chunk', if(number % 5 = 0, toString((cityHash64(number, 5) % 900) / 1000), ''),
        'user.hash', lower(hex(cityHash64(number % 50000)))
    ) AS SpanAttributes,
    toUInt64(200000000 + cityHash64(number, 4) % 5000000000) AS Duration,
    if(number % 40 = 0, 'Error', 'Unset') AS StatusCode
FROM numbers(${rows})
SETTINGS max_insert_threads = 2;

-- Feedback for one call in ten: a feedback span with one evaluation event.
INSERT INTO ${database}.otel_traces_recent
    (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName, SpanAttributes,
     `Events.Timestamp`, `Events.Name`, `Events.Attributes`)
SELECT
    now64(9) - toIntervalSecond(number % (7 * 86400)) + toIntervalSecond(60) AS Timestamp,
    lower(hex(cityHash64(number, 1))) || lower(hex(cityHash64(number, 2))) AS TraceId,
    lower(hex(cityHash64(number, 6))) AS SpanId,
    lower(hex(cityHash64(number, 3))) AS ParentSpanId,
    'closedloop.feedback', 'Internal', 'bench',
    map('closedloop.feedback.kind', ['explicit', 'outcome'][number % 2 + 1]),
    [Timestamp],
    ['gen_ai.evaluation.result'],
    [map('gen_ai.evaluation.name', ['thumbs', 'task_succeeded'][number % 2 + 1],
         'gen_ai.evaluation.score.value', toString(cityHash64(number, 7) % 2))]
FROM numbers(${rows})
WHERE number % 10 = 0;
