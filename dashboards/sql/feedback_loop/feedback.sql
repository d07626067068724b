-- The feedback table (the feedback view: every signal, not only the latest), user-facing
-- calls only. trace_id opens the call's trace in Jaeger and in the trace view.
SELECT
    f.timestamp AS time,
    f.feedback_type AS kind,
    JSONExtractString(f.feedback_value, 'name') AS signal,
    JSONExtract(f.feedback_value, 'value', 'Nullable(Float64)') AS value,
    JSONExtractString(f.feedback_value, 'label') AS label,
    JSONExtractString(f.feedback_value, 'explanation') AS comment,
    JSONExtractString(f.feedback_value, 'source') AS source,
    JSONExtractString(f.metadata, 'prompt_name') AS prompt,
    f.prompt_version AS version,
    f.model AS model,
    f.user_id_hash AS user_hash,
    f.request_id AS request_id,
    JSONExtractString(f.metadata, 'trace_id') AS trace_id
FROM feedback AS f
WHERE $__timeFilter(f.timestamp)
  AND f.feedback_type IS NOT NULL
  AND NOT JSONExtractBool(f.metadata, 'shadow')
  AND $__conditionalAll(JSONExtractString(f.metadata, 'service_name') IN (${service:singlequote}), $service)
  AND $__conditionalAll(JSONExtractString(f.metadata, 'prompt_name') IN (${prompt:singlequote}), $prompt)
  AND $__conditionalAll(f.prompt_version IN (${version:singlequote}), $version)
ORDER BY time DESC
LIMIT 500
