-- Each migration version the store has applied, with the checksums recorded for it (none:
-- applied before the ledger had checksums). A store that recorded a checksum later holds
-- two rows for the version: the one from the apply, and the one with the checksum.
SELECT version, groupUniqArrayIf(checksum, checksum != '') AS checksums
FROM ${database}.closedloop_migrations
GROUP BY version
ORDER BY version
