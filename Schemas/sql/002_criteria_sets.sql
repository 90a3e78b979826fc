-- Version 2: a batch is assessed with a criteria *set* (one or more packs), and every
-- assessment records the engine version that produced it.
--
-- A set is identified by its SHA-256: for one pack, that pack's own hash; for several, the
-- SHA-256 of their hashes concatenated in order. Existing single-pack batches therefore keep
-- their hashes unchanged.

CREATE TABLE oversight.criteria_sets (
    sha256        bytea PRIMARY KEY CHECK (length(sha256) = 32),
    pack_sha256s  bytea[] NOT NULL CHECK (cardinality(pack_sha256s) >= 1),
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE oversight.criteria_sets IS 'The packs a batch is assessed with, in order, by the SHA-256 of the set.';

INSERT INTO oversight.criteria_sets (sha256, pack_sha256s)
SELECT sha256, ARRAY[sha256] FROM oversight.criteria_packs;

DROP VIEW oversight.batch_progress;

ALTER TABLE oversight.batches DROP CONSTRAINT batches_pack_sha256_fkey;
ALTER TABLE oversight.batches RENAME COLUMN pack_sha256 TO criteria_sha256;
ALTER TABLE oversight.batches ADD CONSTRAINT batches_criteria_sha256_fkey
    FOREIGN KEY (criteria_sha256) REFERENCES oversight.criteria_sets (sha256);

ALTER TABLE oversight.assessments RENAME COLUMN pack_sha256 TO criteria_sha256;
ALTER TABLE oversight.assessments RENAME CONSTRAINT assessments_pack_sha256_check TO assessments_criteria_sha256_check;
-- Rows written before this version came from engine 1.
ALTER TABLE oversight.assessments ADD COLUMN engine text NOT NULL DEFAULT 'oversight-engine/1';
ALTER TABLE oversight.assessments ALTER COLUMN engine DROP DEFAULT;
COMMENT ON COLUMN oversight.assessments.row_sha256 IS
    'SHA-256 over length-prefixed batch_id, seq, input_sha256, criteria_sha256 and the canonical JSON of result (which names the engine).';

CREATE VIEW oversight.batch_progress AS
SELECT b.batch_id, b.name, b.source,
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
       b.created_at, b.intake_closed_at, b.completed_at
FROM oversight.batches b JOIN oversight.criteria_sets s ON s.sha256 = b.criteria_sha256;

-- One row per rule outcome, with the rule's rationale and remediation from the pack the
-- assessment names by SHA-256. Engine 1 results hold one pack's findings at the top level;
-- engine 2 results hold them per pack.
DROP VIEW oversight.findings;
CREATE VIEW oversight.findings AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict,
       p->'pack'->>'id' AS pack,
       f->>'rule' AS rule, f->>'outcome' AS outcome, f->>'severity' AS severity, (f->>'points')::int AS points,
       f->>'citation' AS citation, f->>'title' AS title,
       f->'facts' AS facts,
       ARRAY(SELECT jsonb_array_elements_text(f->'missing')) AS missing_fields,
       rule_text.rationale, rule_text.remediation
FROM oversight.assessments a
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN a.result ? 'packs' THEN a.result->'packs' ELSE jsonb_build_array(a.result) END) AS p
CROSS JOIN LATERAL jsonb_array_elements(p->'findings') AS f
LEFT JOIN LATERAL (
    SELECT r->>'rationale' AS rationale, r->>'remediation' AS remediation
    FROM oversight.criteria_packs cp, jsonb_array_elements(cp.body->'rules') AS r
    WHERE cp.sha256 = CASE WHEN p->'pack' ? 'sha256' THEN decode(p->'pack'->>'sha256', 'hex') ELSE a.criteria_sha256 END
      AND r->>'id' = f->>'rule'
) AS rule_text ON true;

-- Per pack: verdict and score of every assessment.
CREATE VIEW oversight.pack_results AS
SELECT a.batch_id, a.seq, a.record_id, p->'pack'->>'id' AS pack, p->'pack'->>'version' AS pack_version,
       p->>'verdict' AS verdict, (p->>'score')::int AS score, p->>'applies' AS applies
FROM oversight.assessments a,
     jsonb_array_elements(CASE WHEN a.result ? 'packs' THEN a.result->'packs' ELSE jsonb_build_array(a.result) END) AS p;
