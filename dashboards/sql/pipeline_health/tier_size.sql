-- Both trace tiers as stored now (system.parts, active parts of this database): spans,
-- bytes on disk, parts and the daily partitions they cover.
SELECT
    p.table AS tier,
    sum(p.rows) AS spans,
    sum(p.bytes_on_disk) AS bytes_on_disk,
    count() AS parts,
    min(p.partition) AS oldest_day,
    max(p.partition) AS newest_day
FROM system.parts AS p
WHERE p.active AND p.database = currentDatabase()
  AND p.table IN ('otel_traces_recent', 'otel_traces')
GROUP BY tier
ORDER BY tier
