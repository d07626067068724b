-- Every span, kept briefly: the tier that late feedback rescues dropped traces from.
-- Same definition as otel_traces (so a rescue is a plain INSERT ... SELECT), shorter TTL.
CREATE TABLE IF NOT EXISTS ${database}.otel_traces_recent AS ${database}.otel_traces;

ALTER TABLE ${database}.otel_traces_recent
    MODIFY TTL toDateTime(Timestamp) + toIntervalDay(${recent_ttl_days});
