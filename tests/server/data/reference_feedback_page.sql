-- The /api/feedback query before it read only the newest traces: the feedback view, filtered,
-- ordered and paged (tests/server/test_query_rewrites.py compares the route with it).
SELECT
    conversation_id,
    turn_id,
    request_id,
    input,
    output,
    prompt_version,
    model,
    feedback_type,
    feedback_value,
    toUnixTimestamp64Nano(timestamp) AS timestamp_ns,
    user_id_hash,
    metadata,
    JSONExtractString(metadata, 'trace_id') AS trace_id,
    JSONExtractString(metadata, 'span_id') AS span_id
FROM ${database}.feedback
WHERE ({prompt:Nullable(String)} IS NULL
        OR JSONExtractString(metadata, 'prompt_name') = {prompt:Nullable(String)})
  AND ({version:Nullable(String)} IS NULL OR prompt_version = {version:Nullable(String)})
  AND ({name:Nullable(String)} IS NULL
        OR JSONExtractString(feedback_value, 'name') = {name:Nullable(String)})
  AND ({type:Nullable(String)} IS NULL OR feedback_type = {type:Nullable(String)})
  AND ({from_ns:Nullable(Int64)} IS NULL OR timestamp_ns >= {from_ns:Nullable(Int64)})
  AND ({to_ns:Nullable(Int64)} IS NULL OR timestamp_ns <= {to_ns:Nullable(Int64)})
  AND ({cursor_ns:Nullable(Int64)} IS NULL
        OR (timestamp_ns, trace_id, span_id)
            <= ({cursor_ns:Nullable(Int64)}, {cursor_trace:String}, {cursor_span:String}))
ORDER BY timestamp_ns DESC, trace_id DESC, span_id DESC, feedback_value DESC, feedback_type DESC
LIMIT {limit:UInt32} OFFSET {skip:UInt32}
