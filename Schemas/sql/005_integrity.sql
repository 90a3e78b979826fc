-- 005: a sealed batch proves it is complete; one writer of job failures; rejected input kept
-- byte for byte; a resumed submission proves it is the same input.

-- job_failures has one writer, the coordinator, and one row per attempt. Rows written twice
-- for the same attempt before this (a worker's own row, then the coordinator's) are the same
-- event: the later copies go.
ALTER TABLE oversight.job_failures DISABLE TRIGGER job_failures_append_only;
DELETE FROM oversight.job_failures a USING oversight.job_failures b
WHERE a.batch_id = b.batch_id AND a.seq = b.seq AND a.attempt = b.attempt AND a.ctid > b.ctid;
ALTER TABLE oversight.job_failures ENABLE TRIGGER job_failures_append_only;
CREATE UNIQUE INDEX job_failures_attempt ON oversight.job_failures (batch_id, seq, attempt);
DROP INDEX oversight.job_failures_batch;
REVOKE INSERT ON oversight.job_failures FROM oversight_worker;

-- Rejected input as it arrived (bytes, NUL and invalid UTF-8 included). A line too large to
-- keep whole keeps its first 64 KiB; raw_bytes and raw_sha256 describe the whole line.
DROP VIEW oversight.rejections;
ALTER TABLE oversight.rejected_records ALTER COLUMN raw TYPE bytea USING convert_to(raw, 'UTF8');
ALTER TABLE oversight.rejected_records ADD COLUMN raw_bytes bigint;
ALTER TABLE oversight.rejected_records ADD COLUMN raw_sha256 bytea CHECK (raw_sha256 IS NULL OR length(raw_sha256) = 32);
UPDATE oversight.rejected_records SET raw_bytes = length(raw), raw_sha256 = sha256(raw);
ALTER TABLE oversight.rejected_records ALTER COLUMN raw_bytes SET NOT NULL;
ALTER TABLE oversight.rejected_records ALTER COLUMN raw_sha256 SET NOT NULL;
COMMENT ON COLUMN oversight.rejected_records.raw IS
    'The rejected line as submitted, byte for byte; only its first 64 KiB when raw_bytes is larger.';
CREATE VIEW oversight.rejections WITH (security_barrier) AS
SELECT r.batch_id, r.line, r.field, r.message, r.raw, r.raw_bytes, r.raw_sha256, length(r.raw) < r.raw_bytes AS raw_truncated,
       r.rejected_at
FROM oversight.rejected_records r WHERE r.batch_id IN (SELECT batch_id FROM oversight.visible_batches);
GRANT SELECT ON oversight.rejections TO oversight_reader;

-- What a batch has received so far, as a chain of SHA-256 over every submitted line in order
-- (see Schemas/protocol.md, "Input digest"): a resumed submission must give the same chain.
ALTER TABLE oversight.batches ADD COLUMN input_lines bigint NOT NULL DEFAULT 0;
ALTER TABLE oversight.batches ADD COLUMN input_sha256 bytea NOT NULL DEFAULT sha256(''::bytea);

-- Seal statements of version 2 also sign the seal's number, its time and the batch's counts:
-- accepted = assessed + dead_lettered, which makes a seal a proof of completeness.
ALTER TABLE oversight.batch_seals ADD COLUMN statement_version smallint NOT NULL DEFAULT 1 CHECK (statement_version IN (1, 2));
ALTER TABLE oversight.batch_seals ADD COLUMN accepted bigint;
ALTER TABLE oversight.batch_seals ADD COLUMN dead_lettered bigint;
ALTER TABLE oversight.batch_seals ADD COLUMN rejected bigint;
-- The dead-lettered seqs a version-2 seal covers (8 bytes big-endian each), so verify can name them.
ALTER TABLE oversight.batch_seals ADD COLUMN dead_letter_seqs bytea;
ALTER TABLE oversight.batch_seals ADD CONSTRAINT batch_seals_v2_complete CHECK (
    statement_version = 1 OR (accepted IS NOT NULL AND dead_lettered IS NOT NULL AND rejected IS NOT NULL
                              AND dead_letter_seqs IS NOT NULL AND accepted = assessments + dead_lettered));

DROP VIEW oversight.seals;
CREATE VIEW oversight.seals WITH (security_barrier) AS
SELECT z.batch_id, z.seal, z.statement_version, z.accepted, z.assessments, z.dead_lettered, z.rejected,
       encode(z.merkle_root, 'hex') AS merkle_root,
       encode(z.signing_key, 'hex') AS signing_key, encode(z.signature, 'hex') AS signature, z.sealed_at
FROM oversight.batch_seals z WHERE z.batch_id IN (SELECT batch_id FROM oversight.visible_batches);
GRANT SELECT ON oversight.seals TO oversight_reader;

-- The text of every rule of the packs an organisation's batches use (title, citation,
-- severity), by criteria set: what an export names a finding by, without SQL on the packs' JSON.
CREATE VIEW oversight.rules WITH (security_barrier) AS
SELECT s.sha256 AS criteria_sha256, p.sha256 AS pack_sha256, p.pack_id AS pack, p.version AS pack_version,
       r->>'id' AS rule, r->>'title' AS title, r->>'citation' AS citation, r->>'severity' AS severity
FROM oversight.criteria_sets s
CROSS JOIN LATERAL unnest(s.pack_sha256s) AS h(sha256)
JOIN oversight.criteria_packs p ON p.sha256 = h.sha256
CROSS JOIN LATERAL jsonb_array_elements(p.body->'rules') AS r
WHERE s.sha256 IN (SELECT criteria_sha256 FROM oversight.visible_batches);
GRANT SELECT ON oversight.rules TO oversight_reader;

-- An open dead letter is a job given up and never assessed: one whose worker, presumed dead,
-- committed it after all is done, not failed, and no longer counted among the dead letters.
DROP VIEW oversight.batch_progress;
CREATE VIEW oversight.batch_progress WITH (security_barrier) AS
SELECT b.batch_id, b.organisation, b.name, b.source,
       ARRAY(SELECT p.pack_id || '@' || p.version
             FROM unnest(s.pack_sha256s) WITH ORDINALITY AS h(sha256, n)
             JOIN oversight.criteria_packs p ON p.sha256 = h.sha256 ORDER BY h.n) AS packs,
       CASE WHEN b.cancelled_at IS NOT NULL THEN 'cancelled'
            WHEN b.completed_at IS NOT NULL THEN 'completed'
            WHEN b.intake_closed_at IS NULL THEN 'receiving'
            ELSE 'running' END AS state,
       b.accepted, b.rejected,
       (SELECT count(*) FROM oversight.assessments a WHERE a.batch_id = b.batch_id) AS assessed,
       (SELECT count(DISTINCT f.seq) FROM oversight.job_failures f WHERE f.batch_id = b.batch_id
            AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = f.batch_id AND a.seq = f.seq)) AS failing,
       b.created_at, b.intake_closed_at, b.completed_at,
       (SELECT count(*) FROM oversight.dead_letters d WHERE d.batch_id = b.batch_id AND d.retried_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq)) AS dead_letters,
       (SELECT max(z.sealed_at) FROM oversight.batch_seals z WHERE z.batch_id = b.batch_id) AS sealed_at
FROM oversight.visible_batches b JOIN oversight.criteria_sets s ON s.sha256 = b.criteria_sha256;
GRANT SELECT ON oversight.batch_progress TO oversight_coordinator, oversight_reader;
