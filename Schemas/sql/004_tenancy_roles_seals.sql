-- Version 4: organisations and their readers, least-privilege roles, row-level security,
-- exact result text, and signed seals.
--
-- Roles (cluster-wide, created once, NOLOGIN; logins are made members with
-- `oversight grant-service` and `oversight grant-reader`):
--   oversight_coordinator  intake, dispatch bookkeeping, seals
--   oversight_worker       reads packs, appends assessments; nothing more
--   oversight_reader       the analyst views, rows of its own organisation only
-- No role the program creates may UPDATE, DELETE or TRUNCATE an assessment or a seal, and
-- triggers refuse it even to the owner.

DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['oversight_coordinator', 'oversight_worker', 'oversight_reader'] LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created meanwhile by a migration of another database in this cluster
        END;
    END LOOP;
END
$$;

-- Organisations own batches. Batches of clients that do not authenticate belong to 'local'.
ALTER TABLE oversight.batches ADD COLUMN organisation text NOT NULL DEFAULT 'local'
    CHECK (organisation ~ '^[a-z0-9][a-z0-9._-]{0,62}$');
ALTER TABLE oversight.batches ALTER COLUMN organisation DROP DEFAULT;
CREATE INDEX batches_organisation ON oversight.batches (organisation, created_at);

-- Reader logins and the one organisation each reads.
CREATE TABLE oversight.readers (
    role_name     name PRIMARY KEY,
    organisation  text NOT NULL CHECK (organisation ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    granted_at    timestamptz NOT NULL DEFAULT now()
);

-- The organisation whose rows the current role may read: its own for a reader, '' (nothing)
-- for a member of oversight_reader without a grant, NULL (every row) for anyone else.
CREATE FUNCTION oversight.visible_organisation() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT CASE
        WHEN r.organisation IS NOT NULL THEN r.organisation
        WHEN pg_has_role(current_user, 'oversight_reader', 'MEMBER')
             AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN ''
        ELSE NULL END
    FROM (SELECT (SELECT organisation FROM oversight.readers WHERE role_name = current_user) AS organisation) AS r
$$;

-- Results are kept as the exact canonical text the row hash covers: jsonb reorders keys and
-- refuses \u0000, and json would parse every result again on the way in (a tenth of all CPU
-- under load). The engine writes canonical JSON; `oversight audit verify` proves every row.
-- The views present it as json.
DROP VIEW oversight.findings;
DROP VIEW oversight.pack_results;
DROP VIEW oversight.assessment_summary;
DROP VIEW oversight.batch_progress;
ALTER TABLE oversight.assessments ALTER COLUMN result TYPE text USING result::text;
-- Results stay in the row, uncompressed, up to 8 kB (compressing them cost more CPU than the
-- bytes saved: pglz was a fifth of all CPU time under load, measured with `oversight bench`
-- and perf); a larger one is compressed with lz4, where the server has it.
ALTER TABLE oversight.assessments SET (toast_tuple_target = 8160);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE oversight.assessments ALTER COLUMN result SET COMPRESSION lz4;
    END IF;
END
$$;


-- Seals: when a batch completes, the coordinator signs the Merkle root of its assessments
-- (RFC 6962 tree over (seq, row_sha256) leaves, in seq order). A batch completed again after
-- a retry gets a further seal; the newest one covers every row.
CREATE TABLE oversight.batch_seals (
    batch_id          uuid NOT NULL REFERENCES oversight.batches (batch_id),
    seal              integer NOT NULL,
    assessments       bigint NOT NULL,
    merkle_root       bytea NOT NULL CHECK (length(merkle_root) = 32),
    -- seq (8 bytes, big-endian) and row_sha256 (32 bytes) per assessment, so that
    -- `oversight audit verify` can name the rows that changed.
    leaves            bytea NOT NULL,
    signing_key       bytea NOT NULL CHECK (length(signing_key) = 32),
    signature         bytea NOT NULL CHECK (length(signature) = 64),
    algorithm         text NOT NULL CHECK (algorithm = 'ed25519'),
    sealed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (batch_id, seal)
);
-- A seal's leaf list is hashes: compressing it (pglz, at every seal) only costs CPU.
ALTER TABLE oversight.batch_seals ALTER COLUMN leaves SET STORAGE EXTERNAL;
CREATE TRIGGER batch_seals_append_only BEFORE UPDATE OR DELETE ON oversight.batch_seals
    FOR EACH ROW EXECUTE FUNCTION oversight.refuse_change();
CREATE TRIGGER batch_seals_no_truncate BEFORE TRUNCATE ON oversight.batch_seals
    FOR EACH STATEMENT EXECUTE FUNCTION oversight.refuse_change();
CREATE TRIGGER job_failures_append_only BEFORE UPDATE OR DELETE ON oversight.job_failures
    FOR EACH ROW EXECUTE FUNCTION oversight.refuse_change();
-- The submitted record is the evidence an assessment is about: never rewritten.
CREATE TRIGGER jobs_append_only BEFORE UPDATE OR DELETE ON oversight.jobs
    FOR EACH ROW EXECUTE FUNCTION oversight.refuse_change();

-- The batches the current role may see.
CREATE VIEW oversight.visible_batches WITH (security_barrier) AS
SELECT b.* FROM oversight.batches b
WHERE (SELECT oversight.visible_organisation()) IS NULL
   OR b.organisation = (SELECT oversight.visible_organisation());

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
       (SELECT count(*) FROM oversight.dead_letters d WHERE d.batch_id = b.batch_id AND d.retried_at IS NULL) AS dead_letters,
       (SELECT max(z.sealed_at) FROM oversight.batch_seals z WHERE z.batch_id = b.batch_id) AS sealed_at
FROM oversight.visible_batches b JOIN oversight.criteria_sets s ON s.sha256 = b.criteria_sha256;

-- One row per assessment, as stored.
CREATE VIEW oversight.results WITH (security_barrier) AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict, a.score, a.applies, a.result::json AS result, a.engine,
       a.criteria_sha256, a.input_sha256, a.row_sha256, a.worker, a.attempt, a.assessed_at
FROM oversight.assessments a
WHERE a.batch_id IN (SELECT batch_id FROM oversight.visible_batches);

CREATE VIEW oversight.assessment_summary WITH (security_barrier) AS
SELECT batch_id, verdict, count(*) AS records, round(avg(score), 1) AS mean_score
FROM oversight.results GROUP BY batch_id, verdict;

-- Engine 3 stores a finding as its rule, outcome, severity, points, facts and missing fields;
-- the rule's title and citation, like its rationale and remediation, are read from the
-- content-addressed pack the assessment names. Rows of engines 1 and 2 keep theirs.
CREATE VIEW oversight.findings WITH (security_barrier) AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict,
       p->'pack'->>'id' AS pack,
       f->>'rule' AS rule, f->>'outcome' AS outcome, f->>'severity' AS severity, (f->>'points')::int AS points,
       COALESCE(f->>'citation', rule_text.citation) AS citation, COALESCE(f->>'title', rule_text.title) AS title,
       f->'facts' AS facts,
       ARRAY(SELECT json_array_elements_text(f->'missing')) AS missing_fields,
       rule_text.rationale, rule_text.remediation
FROM oversight.results a
CROSS JOIN LATERAL json_array_elements(CASE WHEN a.result->'packs' IS NOT NULL THEN a.result->'packs' ELSE json_build_array(a.result) END) AS p
CROSS JOIN LATERAL json_array_elements(p->'findings') AS f
LEFT JOIN LATERAL (
    SELECT r->>'rationale' AS rationale, r->>'remediation' AS remediation, r->>'title' AS title, r->>'citation' AS citation
    FROM oversight.criteria_packs cp, jsonb_array_elements(cp.body->'rules') AS r
    WHERE cp.sha256 = CASE WHEN p->'pack'->>'sha256' IS NOT NULL THEN decode(p->'pack'->>'sha256', 'hex') ELSE a.criteria_sha256 END
      AND r->>'id' = f->>'rule'
) AS rule_text ON true;

CREATE VIEW oversight.pack_results WITH (security_barrier) AS
SELECT a.batch_id, a.seq, a.record_id, p->'pack'->>'id' AS pack, p->'pack'->>'version' AS pack_version,
       p->>'verdict' AS verdict, (p->>'score')::int AS score, p->>'applies' AS applies
FROM oversight.results a,
     json_array_elements(CASE WHEN a.result->'packs' IS NOT NULL THEN a.result->'packs' ELSE json_build_array(a.result) END) AS p;

CREATE VIEW oversight.rejections WITH (security_barrier) AS
SELECT r.batch_id, r.line, r.field, r.message, r.raw, r.rejected_at
FROM oversight.rejected_records r WHERE r.batch_id IN (SELECT batch_id FROM oversight.visible_batches);

CREATE VIEW oversight.submitted_records WITH (security_barrier) AS
SELECT j.batch_id, j.seq, j.line, j.record
FROM oversight.jobs j WHERE j.batch_id IN (SELECT batch_id FROM oversight.visible_batches);

CREATE VIEW oversight.seals WITH (security_barrier) AS
SELECT z.batch_id, z.seal, z.assessments, encode(z.merkle_root, 'hex') AS merkle_root,
       encode(z.signing_key, 'hex') AS signing_key, encode(z.signature, 'hex') AS signature, z.sealed_at
FROM oversight.batch_seals z WHERE z.batch_id IN (SELECT batch_id FROM oversight.visible_batches);

-- Row-level security on the tables that hold an organisation's results: readers see their
-- organisation's rows even if someone grants them a table; the services see what they work on.
-- jobs and rejected_records are written with COPY, which PostgreSQL refuses under row-level
-- security; only the coordinator has any privilege on them, and readers see them through the
-- filtered views submitted_records and rejections.
ALTER TABLE oversight.batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY services ON oversight.batches TO oversight_coordinator, oversight_worker USING (true) WITH CHECK (true);
CREATE POLICY own_organisation ON oversight.batches FOR SELECT TO oversight_reader
    USING (organisation = (SELECT oversight.visible_organisation()));

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['assessments', 'job_failures', 'dead_letters', 'batch_seals'] LOOP
        EXECUTE format('ALTER TABLE oversight.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY services ON oversight.%I TO oversight_coordinator, oversight_worker USING (true) WITH CHECK (true)', t);
        EXECUTE format('CREATE POLICY own_organisation ON oversight.%I FOR SELECT TO oversight_reader
                            USING (batch_id IN (SELECT batch_id FROM oversight.visible_batches))', t);
    END LOOP;
END
$$;

ALTER TABLE oversight.readers ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_grant ON oversight.readers FOR SELECT USING (role_name = current_user);

-- Privileges: nothing by default, then exactly what each role does.
REVOKE ALL ON ALL TABLES IN SCHEMA oversight FROM PUBLIC;
REVOKE ALL ON SCHEMA oversight FROM PUBLIC;
GRANT USAGE ON SCHEMA oversight TO oversight_coordinator, oversight_worker, oversight_reader;
GRANT SELECT ON oversight.readers TO oversight_coordinator, oversight_worker, oversight_reader;
GRANT EXECUTE ON FUNCTION oversight.visible_organisation() TO oversight_coordinator, oversight_worker, oversight_reader;

GRANT SELECT ON oversight.schema_migrations TO oversight_coordinator, oversight_worker;
GRANT SELECT, INSERT ON oversight.criteria_packs, oversight.criteria_sets TO oversight_coordinator;
GRANT SELECT, INSERT, UPDATE ON oversight.batches TO oversight_coordinator;
GRANT SELECT, INSERT ON oversight.jobs, oversight.rejected_records, oversight.job_failures, oversight.batch_seals TO oversight_coordinator;
GRANT SELECT, INSERT, UPDATE ON oversight.dead_letters TO oversight_coordinator;
GRANT SELECT ON oversight.assessments TO oversight_coordinator;
GRANT SELECT ON oversight.batch_progress, oversight.visible_batches TO oversight_coordinator;

GRANT SELECT ON oversight.criteria_packs, oversight.criteria_sets TO oversight_worker;
GRANT INSERT ON oversight.assessments, oversight.job_failures TO oversight_worker;
-- The staging table is made LIKE assessments, and INSERT … ON CONFLICT reads the key.
GRANT SELECT (batch_id, seq) ON oversight.assessments TO oversight_worker;

GRANT SELECT ON oversight.visible_batches, oversight.batch_progress, oversight.results, oversight.assessment_summary,
    oversight.findings, oversight.pack_results, oversight.rejections, oversight.submitted_records, oversight.seals
    TO oversight_reader;

-- Makes ROLE_NAME a reader of ORGANISATION: a login (created if missing) in oversight_reader.
-- PASSWORD_VERIFIER is a SCRAM verifier computed by the client (libpq's
-- PQencryptPasswordConn), never a clear-text password; NULL leaves the password as it is.
-- Identifiers and literals are quoted here, by format(), and nowhere else.
CREATE FUNCTION oversight.grant_reader(role_name text, organisation text, password_verifier text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', role_name);
    END IF;
    IF password_verifier IS NOT NULL THEN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', role_name, password_verifier);
    END IF;
    EXECUTE format('GRANT oversight_reader TO %I', role_name);
    INSERT INTO oversight.readers (role_name, organisation) VALUES (role_name, organisation)
    ON CONFLICT ON CONSTRAINT readers_pkey DO UPDATE SET organisation = EXCLUDED.organisation, granted_at = now();
END
$$;

-- Makes ROLE_NAME a login of the coordinator or worker role.
-- Service logins may bypass row-level security where a superuser runs `grant-service`:
-- PostgreSQL refuses COPY into a table under row-level security, and a worker's privileges,
-- not policies, are what limit it (it can read no result). Without it, a worker writes
-- through its staging table, more slowly.
CREATE FUNCTION oversight.grant_service(role_name text, service text, password_verifier text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF service NOT IN ('coordinator', 'worker') THEN
        RAISE EXCEPTION 'unknown service %', service USING HINT = 'Use coordinator or worker.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', role_name);
    END IF;
    IF password_verifier IS NOT NULL THEN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', role_name, password_verifier);
    END IF;
    EXECUTE format('GRANT %I TO %I', 'oversight_' || service, role_name);
    BEGIN
        EXECUTE format('ALTER ROLE %I BYPASSRLS', role_name);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'role % keeps row-level security (BYPASSRLS needs a superuser): results go through a staging table', role_name;
    END;
END
$$;
REVOKE ALL ON FUNCTION oversight.grant_reader(text, text, text), oversight.grant_service(text, text, text) FROM PUBLIC;
