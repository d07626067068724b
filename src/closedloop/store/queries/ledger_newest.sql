-- The newest migration the store applied (named when a newer release migrated the store).
SELECT version, any(name) AS name
FROM ${database}.closedloop_migrations
GROUP BY version
ORDER BY version DESC
LIMIT 1
