-- benchmarks/ui_api.py: copies 1 .. ${copies} - 1 of the generated seed traffic already in
-- the recent tier, each with its own trace, span and user ids. The recent tier gets every
-- span, so the typed tables fill from these inserts, as in production.
INSERT INTO ${database}.otel_traces_recent
SELECT * REPLACE (
    concat(leftPad(lower(hex(cityHash64(TraceId, copy))), 16, '0'),
           leftPad(lower(hex(cityHash64(TraceId, copy, 1))), 16, '0')) AS TraceId,
    leftPad(lower(hex(cityHash64(SpanId, copy))), 16, '0') AS SpanId,
    if(ParentSpanId = '', '', leftPad(lower(hex(cityHash64(ParentSpanId, copy))), 16, '0'))
        AS ParentSpanId,
    if(mapContains(SpanAttributes, 'user.hash'),
       mapUpdate(SpanAttributes,
                 map('user.hash', concat(SpanAttributes['user.hash'], '-', toString(copy % 40)))),
       SpanAttributes) AS SpanAttributes
)
FROM ${database}.otel_traces_recent
ARRAY JOIN range(1, ${copies}) AS copy
SETTINGS max_insert_threads = 2, insert_deduplicate = 0
