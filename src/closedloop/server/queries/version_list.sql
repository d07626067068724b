-- /api/version_list: the prompt versions /api/versions has rows for, with their calls and
-- days in the window, without its feedback metrics: what the Compare page's pickers list.
-- The same rows and counts as /api/versions (version_days.sql's calls_per_day summed over
-- days: generations and embeddings, shadow calls left out), from one read of llm_calls.
SELECT
    prompt_name,
    prompt_version,
    min(toDate(timestamp, 'UTC')) AS first_day,
    max(toDate(timestamp, 'UTC')) AS last_day,
    countIf(generation) AS calls
FROM ${database}.llm_calls
WHERE NOT shadow AND (generation OR operation = 'embeddings')
  AND ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
  AND ({from_day:Nullable(Date32)} IS NULL
        OR toDate(timestamp, 'UTC') >= {from_day:Nullable(Date32)})
  AND ({to_day:Nullable(Date32)} IS NULL
        OR toDate(timestamp, 'UTC') <= {to_day:Nullable(Date32)})
GROUP BY prompt_name, prompt_version
ORDER BY prompt_name, prompt_version
