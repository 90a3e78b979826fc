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
