-- What the store holds so far: the demo waits until it is everything it sent.
SELECT
    (SELECT count() FROM llm_calls) AS calls,
    (SELECT count() FROM feedback_signals) AS signals
