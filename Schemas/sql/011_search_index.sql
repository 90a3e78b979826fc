-- Free text over a summarised batch by trigram index, for readers too.
--
-- A reader's pages read record_facets under row-level security, and there PostgreSQL uses an
-- index only for leakproof operators; LIKE is not one, so every free-text page of a
-- million-record batch scanned the whole batch (0.7-1.2 s). A reader's search therefore goes
-- through oversight.search_records: it runs as the owner of the tables, with the index, but
-- only for the batches of the organisation of the login that called it (session_user: inside
-- a SECURITY DEFINER function current_user is the owner), and only while that batch's summary
-- is its newest seal's, which is what the reader policy allows. It returns seqs only; the page's
-- rows are then read under the reader policy as before, so both checks hold.
--
-- pg_trgm is a trusted extension: the database owner, who runs migrate, may create it.

DO $$
DECLARE
    trgm_schema name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE EXTENSION pg_trgm WITH SCHEMA oversight;
    END IF;
    SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX record_facets_search ON oversight.record_facets USING gin (search %I.gin_trgm_ops)', trgm_schema);
END
$$;

CREATE FUNCTION oversight.search_records(b uuid, pattern text, verdict text, worst_case text, system text, operator_name text,
                                         region text, rule text, after bigint, lim integer, skip integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    org text;
BEGIN
    SELECT r.organisation INTO org FROM oversight.readers r WHERE r.role_name = session_user;
    IF org IS NULL OR pattern IS NULL THEN RETURN; END IF;
    IF NOT EXISTS (SELECT 1 FROM oversight.batches bt JOIN oversight.batch_summaries s ON s.batch_id = bt.batch_id
                   WHERE bt.batch_id = b AND bt.organisation = org
                     AND s.seal = (SELECT max(z.seal) FROM oversight.batch_seals z WHERE z.batch_id = b)) THEN
        RETURN;
    END IF;
    -- Planned with the values (EXECUTE): a rare word reads the trigram index, a common one the
    -- primary key in seq order until the page is full.
    RETURN QUERY EXECUTE $q$
        SELECT f.seq FROM oversight.record_facets f
        WHERE f.batch_id = $1 AND f.search LIKE lower($2) AND ($10::bigint IS NULL OR f.seq > $10)
          AND ($3::text IS NULL OR f.verdict = $3) AND ($4::text IS NULL OR f.worst_case = $4)
          AND ($5::text IS NULL OR f.system = $5) AND ($6::text IS NULL OR f.operator = $6)
          AND ($7::text IS NULL OR f.region = $7 OR f.country = $7)
          AND ($8::text IS NULL OR EXISTS (SELECT 1 FROM oversight.record_rules r WHERE r.batch_id = $1 AND r.rule = $8 AND r.seq = f.seq))
        ORDER BY f.seq LIMIT $9 OFFSET $11
        $q$ USING b, pattern, verdict, worst_case, system, operator_name, region, rule, lim, after, skip;
END
$$;
REVOKE ALL ON FUNCTION oversight.search_records(uuid, text, text, text, text, text, text, text, bigint, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION oversight.search_records(uuid, text, text, text, text, text, text, text, bigint, integer, integer) TO oversight_reader;
