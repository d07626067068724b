-- Week 0 as the metrics view shows it: calls, outcomes known and reopen rate per version
-- (the view has a row per day; its rates are summed back to counts first).
SELECT
    prompt_version,
    calls,
    outcomes,
    reopened,
    reopened / nullIf(outcomes, 0) AS reopen_rate,
    escalated / nullIf(calls, 0) AS escalation_rate
FROM (
    SELECT
        prompt_version,
        sum(m.calls) AS calls,
        sum(m.reopen_outcomes) AS outcomes,
        toUInt64(round(sum(ifNull(m.reopen_rate, 0) * m.reopen_outcomes))) AS reopened,
        toUInt64(round(sum(ifNull(m.escalation_rate, 0) * m.calls))) AS escalated
    FROM prompt_version_metrics AS m
    WHERE m.prompt_name = 'triage'
    GROUP BY m.prompt_version
)
ORDER BY prompt_version
