-- /api/prompts: per prompt version and day metrics (docs/metrics.md), newest day first.
-- A NULL parameter filters nothing; days are inclusive bounds.
SELECT *
FROM ${database}.prompt_version_metrics
WHERE ({prompt:Nullable(String)} IS NULL OR prompt_name = {prompt:Nullable(String)})
  AND ({version:Nullable(String)} IS NULL OR prompt_version = {version:Nullable(String)})
  AND ({from_day:Nullable(Date32)} IS NULL OR day >= {from_day:Nullable(Date32)})
  AND ({to_day:Nullable(Date32)} IS NULL OR day <= {to_day:Nullable(Date32)})
ORDER BY day DESC, prompt_name, prompt_version
