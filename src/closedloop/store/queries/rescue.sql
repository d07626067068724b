-- Late-feedback rescue: copy the candidates (see sql/views/07_rescue_candidates.sql).
INSERT INTO ${database}.otel_traces
SELECT * FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
