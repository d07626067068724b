-- benchmarks/ui_api.py: the sampled tier, about 15 % of the recent tier's traces (the
-- share the production policy's probabilistic rule keeps).
INSERT INTO ${database}.otel_traces
SELECT * FROM ${database}.otel_traces_recent
WHERE cityHash64(TraceId) % 100 < 15
SETTINGS max_insert_threads = 2, insert_deduplicate = 0
