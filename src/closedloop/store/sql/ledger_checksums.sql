-- Checksums came after the ledger: a ledger created before them gains the column, empty in
-- the rows it holds (migrate() then records each file's checksum as it finds the file).
-- Run only when the column is missing, so an up-to-date ledger is never altered.
ALTER TABLE ${database}.closedloop_migrations
    ADD COLUMN IF NOT EXISTS checksum String DEFAULT '';
