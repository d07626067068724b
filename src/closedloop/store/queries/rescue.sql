-- Late-feedback rescue: copy the candidates (see sql/010_rescue_by_arrival.sql).
INSERT INTO ${database}.otel_traces
SELECT * FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
