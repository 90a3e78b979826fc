-- Results compressed in the row. A stored result (canonical JSON, 5,400 bytes on average for the
-- built-in packs since engine 4, whose questions name their rules) was kept uncompressed up to
-- 8 kB, so each assessment made PostgreSQL write about 6.6 kB of table and more of WAL, and on
-- a shared disk that decided the fleet's speed. lz4 (set on the column by migration 004 where
-- the server has it) makes such a result about 1,600 bytes, at a fraction of pglz's CPU; the
-- bytes stored and hashed are unchanged, as PostgreSQL undoes the compression on every read.
-- A tuple over 3,000 bytes has its result compressed; the largest compressed result of the
-- Atlas mix (2,600 bytes) still fits in its row, so results are not moved out of line.
-- Rows written before this keep their form (compression applies to new rows).
ALTER TABLE oversight.assessments SET (toast_tuple_target = 3000);

-- A running batch's Merkle tree, folded ahead of its seal. Sealing read every row of a batch
-- twice when it completed (its leaves for the tree, then for the stored list): a million-row
-- batch was sealed 5–13 s after its last commit. While a batch runs, the coordinator's seal
-- thread now reads each whole run of 50,000 assessed seqs once, as the rows are committed,
-- adds them to the tree it keeps in memory (a few hashes), and stores their leaves here; the
-- seal reads only the rest, and takes the stored leaves as they are. Rows are append-only, so
-- leaves read early are the leaves the seal would read. `folder` names the seal thread that
-- folded them (a new one after every restart or failure, which starts again from the first
-- seq); the seal uses only its own thread's rows and deletes the batch's rows in its
-- transaction.
CREATE TABLE oversight.seal_folds (
    batch_id   uuid NOT NULL,
    folder     uuid NOT NULL,
    first_seq  bigint NOT NULL CHECK (first_seq >= 1),
    leaves     bytea NOT NULL CHECK (length(leaves) % 40 = 0),
    PRIMARY KEY (batch_id, folder, first_seq)
);
COMMENT ON COLUMN oversight.seal_folds.leaves IS
    'The leaves of seqs first_seq onwards, in order, as batch_seals.leaves holds them: seq as 8 bytes big-endian, then row_sha256.';
-- Hashes do not compress: stored without trying.
ALTER TABLE oversight.seal_folds ALTER COLUMN leaves SET STORAGE EXTERNAL;
ALTER TABLE oversight.seal_folds ENABLE ROW LEVEL SECURITY;
CREATE POLICY services ON oversight.seal_folds TO oversight_coordinator USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON oversight.seal_folds TO oversight_coordinator;

-- Facets waiting for a batch's summary are not written to the WAL. They are a copy of what the
-- results and records already say (the summary derives the facets of any result that has none
-- from its stored JSON, as it does for results written before version 12), kept only until the
-- summary after the seal moves them into record_facets. Writing them to the WAL cost about 900
-- bytes per assessment, an eighth of all it made PostgreSQL write. After a crash PostgreSQL
-- empties this table, and on a promoted standby it is empty: the summary then takes the slower
-- way for the batches that were running. Nothing reads it but the coordinator's summary.
ALTER TABLE oversight.pending_facets SET UNLOGGED;
