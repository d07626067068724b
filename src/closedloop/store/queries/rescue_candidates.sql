-- What the rescue would copy: counted before copying.
SELECT count() AS spans, uniqExact(TraceId) AS traces
FROM ${database}.rescue_candidates(since_ns = {since_ns:Int64})
