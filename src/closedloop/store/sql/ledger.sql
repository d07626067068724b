-- The migrations ledger: one row per applied migration file, with the SHA-256 of the file
-- as applied. Run before any migration on every migrate(), so every statement here is
-- idempotent; the numbered files never touch the ledger.
CREATE DATABASE IF NOT EXISTS ${database};

CREATE TABLE IF NOT EXISTS ${database}.closedloop_migrations (
    version UInt32,
    name String,
    applied_at DateTime64(3) DEFAULT now64(3),
    checksum String DEFAULT ''
) ENGINE = MergeTree() ORDER BY version;
