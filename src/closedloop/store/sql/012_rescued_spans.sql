-- Rescued spans: each span a rescue copied into otel_traces, so the store can say what
-- rescues brought back (/api/sampling), whichever process ran them (serve's schedule,
-- `closedloop rescue`, an app's timer) and across restarts. The rescue writes it itself,
-- just before its copy (queries/rescue_record.sql), and only spans not recorded yet: a
-- rescue stopped between the two is completed by the next one without a second record.
-- Kept as long as the sampled tier keeps spans; a deduplication window like every data
-- table's (011), so a rescue retried with the same rows records them once.
CREATE TABLE IF NOT EXISTS ${database}.rescued_spans (
    rescued_at DateTime64(6) CODEC(Delta, ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    -- the span's start, as otel_traces.Timestamp: windows count spans by it
    timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    -- the rescue's window: its trace's feedback arrived in [arrived_since, arrived_until)
    arrived_since DateTime64(6) CODEC(ZSTD(1)),
    arrived_until DateTime64(6) CODEC(ZSTD(1))
) ENGINE = MergeTree()
PARTITION BY toDate(rescued_at)
ORDER BY (trace_id, span_id)
TTL toDateTime(rescued_at) + toIntervalDay(${traces_ttl_days})
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;
