-- Version 5: engine 3 stores a finding as its rule, outcome, severity, points, facts and
-- missing fields; the rule's title and citation, like its rationale and remediation, are read
-- from the content-addressed pack the assessment names. Rows of engines 1 and 2 keep theirs.
CREATE OR REPLACE VIEW oversight.findings WITH (security_barrier) AS
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

-- Service logins may bypass row-level security where a superuser runs `grant-service`:
-- PostgreSQL refuses COPY into a table under row-level security, and a worker's privileges,
-- not policies, are what limit it (it can read no result). Without it, a worker writes
-- through its staging table, more slowly.
CREATE OR REPLACE FUNCTION oversight.grant_service(role_name text, service text, password_verifier text)
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
REVOKE ALL ON FUNCTION oversight.grant_service(text, text, text) FROM PUBLIC;

-- A seal's leaf list is hashes: compressing it (pglz, at every seal) only costs CPU.
ALTER TABLE oversight.batch_seals ALTER COLUMN leaves SET STORAGE EXTERNAL;
