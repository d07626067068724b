-- Variants of the chosen experiment, most traffic first: the production arm usually owns
-- the largest share, so the default baseline is the first.
SELECT variant
FROM llm_calls
WHERE $__timeFilter(timestamp)
  AND experiment = ${experiment:singlequote}
  AND variant != ''
GROUP BY variant
ORDER BY count() DESC, variant
