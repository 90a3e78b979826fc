-- 013: what an autoscaler (KEDA's PostgreSQL trigger) may read: the number of jobs waiting, and
-- nothing else. A group role, oversight_scaler, may call one function; it reads no table, no
-- record and no result, and sees no organisation. `oversight grant-service scaler --role NAME`
-- makes a login of it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'oversight_scaler') THEN
        CREATE ROLE oversight_scaler NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by a migration of another database in this cluster
END
$$;

-- Jobs of batches whose intake is closed, not completed and not cancelled, that are neither
-- assessed nor given up: what workers still have to do. Batches still receiving count what they
-- have stored so far.
CREATE FUNCTION oversight.pending_jobs() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(sum(b.accepted
                        - (SELECT count(*) FROM oversight.assessments a WHERE a.batch_id = b.batch_id)
                        - (SELECT count(*) FROM oversight.dead_letters d WHERE d.batch_id = b.batch_id AND d.retried_at IS NULL
                             AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq))), 0)::bigint
    FROM oversight.batches b
    WHERE b.completed_at IS NULL AND b.cancelled_at IS NULL
$$;
REVOKE ALL ON FUNCTION oversight.pending_jobs() FROM PUBLIC;
GRANT USAGE ON SCHEMA oversight TO oversight_scaler;
GRANT EXECUTE ON FUNCTION oversight.pending_jobs() TO oversight_scaler;

-- grant_service learns the scaler: a login in oversight_scaler, without BYPASSRLS (it reads
-- no table at all).
CREATE OR REPLACE FUNCTION oversight.grant_service(role_name text, service text, password_verifier text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
    IF service NOT IN ('coordinator', 'worker', 'scaler') THEN
        RAISE EXCEPTION 'unknown service %', service USING HINT = 'Use coordinator, worker or scaler.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('CREATE ROLE %I LOGIN', role_name);
    END IF;
    IF password_verifier IS NOT NULL THEN
        EXECUTE format('ALTER ROLE %I PASSWORD %L', role_name, password_verifier);
    END IF;
    EXECUTE format('GRANT %I TO %I', 'oversight_' || service, role_name);
    IF service = 'scaler' THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('ALTER ROLE %I BYPASSRLS', role_name);
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'role % keeps row-level security (BYPASSRLS needs a superuser): results go through a staging table', role_name;
    END;
END
$$;
REVOKE ALL ON FUNCTION oversight.grant_service(text, text, text) FROM PUBLIC;
