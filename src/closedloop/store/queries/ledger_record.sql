-- A migration file applied, or (for one applied before checksums) its checksum recorded.
INSERT INTO ${database}.closedloop_migrations (version, name, checksum)
VALUES ({version:UInt32}, {name:String}, {checksum:String})
