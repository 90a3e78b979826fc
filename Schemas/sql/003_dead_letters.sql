-- Version 3: dead letters. A job that failed (or whose worker died holding it) as many times as
-- the coordinator allows is given up: it gets a dead letter with its last error, its attempt
-- history stays in job_failures, and `oversight retry BATCH` queues it again (retried_at).

CREATE TABLE oversight.dead_letters (
    batch_id    uuid NOT NULL,
    seq         bigint NOT NULL,
    attempts    smallint NOT NULL,
    last_error  text NOT NULL,
    dead_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    retried_at  timestamptz,
    PRIMARY KEY (batch_id, seq, dead_at)
);
-- At most one dead letter per job is active (not retried).
CREATE UNIQUE INDEX dead_letters_active ON oversight.dead_letters (batch_id, seq) WHERE retried_at IS NULL;

CREATE OR REPLACE VIEW oversight.batch_progress AS
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
       b.created_at, b.intake_closed_at, b.completed_at,
       (SELECT count(*) FROM oversight.dead_letters d WHERE d.batch_id = b.batch_id AND d.retried_at IS NULL) AS dead_letters
FROM oversight.batches b JOIN oversight.criteria_sets s ON s.sha256 = b.criteria_sha256;
