-- Oversight audit store, version 1: batches, jobs, append-only assessments.
-- Applied by `oversight migrate` (and by the coordinator at start) inside one transaction;
-- the migrator records it in oversight.schema_migrations.
-- Job state is derived, never stored per job: a job is done exactly when its assessment row exists.

CREATE TABLE oversight.criteria_packs (
    sha256      bytea PRIMARY KEY CHECK (length(sha256) = 32),
    pack_id     text NOT NULL,
    version     text NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE oversight.criteria_packs IS 'Every criteria pack ever used, by the SHA-256 of its canonical JSON.';

CREATE TABLE oversight.batches (
    batch_id             uuid PRIMARY KEY,
    name                 text NOT NULL,
    source               text NOT NULL,
    pack_sha256          bytea NOT NULL REFERENCES oversight.criteria_packs (sha256),
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- Intake: chunks are stored in order; a resumed submission continues after the last one.
    acknowledged_chunks  bigint NOT NULL DEFAULT 0,
    next_seq             bigint NOT NULL DEFAULT 1,
    accepted             bigint NOT NULL DEFAULT 0,
    rejected             bigint NOT NULL DEFAULT 0,
    intake_closed_at     timestamptz,
    completed_at         timestamptz,
    cancelled_at         timestamptz
);

-- One row per accepted record, in submission order. No foreign key: COPY speed matters and
-- only the coordinator writes here, after it has created the batch.
CREATE TABLE oversight.jobs (
    batch_id  uuid NOT NULL,
    seq       bigint NOT NULL,
    line      bigint NOT NULL,
    record    text NOT NULL,           -- the validated JSON exactly as submitted
    PRIMARY KEY (batch_id, seq)
);

CREATE TABLE oversight.rejected_records (
    batch_id     uuid NOT NULL,
    line         bigint NOT NULL,
    field        text NOT NULL,
    message      text NOT NULL,
    raw          text NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, line)
);

-- The audit trail. Append-only: the unique key absorbs duplicate deliveries, so
-- at-least-once dispatch gives exactly-once results.
CREATE TABLE oversight.assessments (
    batch_id      uuid NOT NULL,
    seq           bigint NOT NULL,
    record_id     text,
    verdict       text NOT NULL CHECK (verdict IN ('prohibited', 'high_risk', 'elevated', 'limited', 'minimal', 'insufficient_information')),
    score         smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
    applies       text NOT NULL CHECK (applies IN ('binding', 'benchmark', 'undetermined')),
    pack_sha256   bytea NOT NULL CHECK (length(pack_sha256) = 32),
    input_sha256  bytea NOT NULL CHECK (length(input_sha256) = 32),
    row_sha256    bytea NOT NULL CHECK (length(row_sha256) = 32),
    result        jsonb NOT NULL,
    worker        text NOT NULL,
    attempt       smallint NOT NULL,
    assessed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, seq)
);
COMMENT ON COLUMN oversight.assessments.row_sha256 IS
    'SHA-256 over length-prefixed batch_id, seq, input_sha256, pack_sha256 and the canonical JSON of result.';

CREATE FUNCTION oversight.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'oversight.% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit rows are never changed; record a new assessment instead.';
END
$$;

CREATE TRIGGER assessments_append_only BEFORE UPDATE OR DELETE ON oversight.assessments
    FOR EACH ROW EXECUTE FUNCTION oversight.refuse_change();
CREATE TRIGGER assessments_no_truncate BEFORE TRUNCATE ON oversight.assessments
    FOR EACH STATEMENT EXECUTE FUNCTION oversight.refuse_change();

-- Scoring failures reported by workers, one row per attempt.
CREATE TABLE oversight.job_failures (
    batch_id   uuid NOT NULL,
    seq        bigint NOT NULL,
    attempt    smallint NOT NULL,
    worker     text NOT NULL,
    reason     text NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_failures_batch ON oversight.job_failures (batch_id, seq);

-- Views for analysts (psql, any SQL tool).
CREATE VIEW oversight.batch_progress AS
SELECT b.batch_id, b.name, b.source, p.pack_id, p.version AS pack_version,
       CASE WHEN b.cancelled_at IS NOT NULL THEN 'cancelled'
            WHEN b.completed_at IS NOT NULL THEN 'completed'
            WHEN b.intake_closed_at IS NULL THEN 'receiving'
            ELSE 'running' END AS state,
       b.accepted, b.rejected,
       (SELECT count(*) FROM oversight.assessments a WHERE a.batch_id = b.batch_id) AS assessed,
       (SELECT count(DISTINCT f.seq) FROM oversight.job_failures f WHERE f.batch_id = b.batch_id
            AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = f.batch_id AND a.seq = f.seq)) AS failing,
       b.created_at, b.intake_closed_at, b.completed_at
FROM oversight.batches b JOIN oversight.criteria_packs p ON p.sha256 = b.pack_sha256;

CREATE VIEW oversight.assessment_summary AS
SELECT batch_id, verdict, count(*) AS records, round(avg(score), 1) AS mean_score
FROM oversight.assessments GROUP BY batch_id, verdict;

CREATE VIEW oversight.findings AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict,
       f->>'rule' AS rule, f->>'outcome' AS outcome, f->>'severity' AS severity,
       f->>'citation' AS citation, f->>'title' AS title,
       ARRAY(SELECT jsonb_array_elements_text(f->'missing')) AS missing_fields
FROM oversight.assessments a, jsonb_array_elements(a.result->'findings') AS f;
