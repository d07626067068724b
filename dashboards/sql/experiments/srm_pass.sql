-- 1 when the traffic split matches the expected split (no sample ratio mismatch), else 0.
WITH
calls AS (
    SELECT c.trace_id AS trace_id, c.span_id AS span_id, c.variant AS arm,
           c.is_error AS is_error, c.timestamp AS call_time
    FROM llm_calls AS c
    WHERE $__timeFilter(c.timestamp)
      AND c.generation AND NOT c.shadow
      AND c.experiment = ${experiment:singlequote} AND c.variant != ''
      AND $__conditionalAll(c.service_name IN (${service:singlequote}), $service)
      AND $__conditionalAll(c.prompt_name IN (${prompt:singlequote}), $prompt)
),
observed AS (
    SELECT arm, count() AS n FROM calls GROUP BY arm
),
-- expected_split: "variant:weight,variant:weight"; empty means an equal split.
weights AS (
    SELECT trimBoth(splitByChar(':', pair)[1]) AS weighted_arm,
           toFloat64OrZero(trimBoth(splitByChar(':', pair)[2])) AS weight
    FROM (SELECT arrayJoin(splitByChar(',', ${expected_split:singlequote})) AS pair)
    WHERE trimBoth(pair) != ''
),
expected AS (
    SELECT o.arm AS arm, o.n AS n,
           if((SELECT count() FROM weights) = 0, 1.0, ifNull(w.weight, 0.0)) AS arm_weight
    FROM observed AS o
    LEFT JOIN weights AS w ON o.arm = w.weighted_arm
),
shares AS (
    SELECT arm, n,
           n / sum(n) OVER () AS share,
           arm_weight / sum(arm_weight) OVER () AS expected_share,
           sum(n) OVER () * expected_share AS expected_n
    FROM expected
),
-- Pearson's chi-square against the critical value for k-1 degrees of freedom at
-- alpha = 0.001, the usual threshold for a sample ratio mismatch.
srm AS (
    SELECT count() AS arms,
           sum(n) AS total_calls,
           sum(pow(n - expected_n, 2) / expected_n) AS chi_square,
           arms - 1 AS degrees_of_freedom,
           [10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588,
            31.264, 32.909, 34.528, 36.123, 37.697, 39.252, 40.790, 42.312, 43.820]
               [degrees_of_freedom] AS critical_value
    FROM shares
)
SELECT toUInt8(degrees_of_freedom >= 1 AND chi_square <= critical_value) AS srm_pass
FROM srm
