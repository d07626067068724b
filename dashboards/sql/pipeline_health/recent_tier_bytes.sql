-- Bytes on disk of the recent tier (every span, kept recent_ttl_days).
SELECT sum(bytes_on_disk) AS recent_tier_bytes
FROM system.parts
WHERE active AND database = currentDatabase() AND table = 'otel_traces_recent'
