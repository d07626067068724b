-- The ledger's columns (a ledger from before checksums has no `checksum`).
SELECT name
FROM system.columns
WHERE database = {database:String} AND table = 'closedloop_migrations'
