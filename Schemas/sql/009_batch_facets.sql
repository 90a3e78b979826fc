-- What a batch page and a filtered record list read, computed once per seal (by the coordinator,
-- right after it seals a batch) in one set-based pass, so that a batch of a million records
-- answers from indexes instead of parsing every result's JSON: nothing is written per
-- assessment on the hot path. A running batch (no summary for its newest seal) is read live.

-- One row per assessment: the columns lists filter on, read once from the record and result.
CREATE TABLE oversight.record_facets (
    batch_id        uuid NOT NULL,
    seq             bigint NOT NULL,
    record_id       text,
    verdict         text NOT NULL,
    worst_case      text,
    determined      boolean,
    applies         text NOT NULL,
    rests_on        text NOT NULL,
    inferred_facts  integer NOT NULL,
    system          text,
    vendor          text,
    operator        text,
    country         text,
    region          text,
    first_question  text,
    PRIMARY KEY (batch_id, seq)
);
CREATE INDEX record_facets_verdict ON oversight.record_facets (batch_id, verdict, seq);
CREATE INDEX record_facets_worst_case ON oversight.record_facets (batch_id, worst_case, seq);
CREATE INDEX record_facets_system ON oversight.record_facets (batch_id, system, seq);
CREATE INDEX record_facets_operator ON oversight.record_facets (batch_id, operator, seq);
CREATE INDEX record_facets_region ON oversight.record_facets (batch_id, region, seq);

-- The rules that fired for each record, to filter by rule.
CREATE TABLE oversight.record_rules (
    batch_id  uuid NOT NULL,
    rule      text NOT NULL,
    seq       bigint NOT NULL,
    PRIMARY KEY (batch_id, rule, seq)
);

-- Counts of a batch by grouping ('verdict', 'system', 'region', 'applies'), key, settled verdict
-- and worst case; the rules that fired and the questions asked, with how many records.
CREATE TABLE oversight.batch_counts (
    batch_id    uuid NOT NULL,
    grouping    text NOT NULL,
    key         text NOT NULL,
    verdict     text NOT NULL,
    worst_case  text,
    records     bigint NOT NULL
);
CREATE INDEX batch_counts_batch ON oversight.batch_counts (batch_id, grouping);
CREATE TABLE oversight.batch_rule_counts (
    batch_id uuid NOT NULL, pack text NOT NULL, rule text NOT NULL, title text, citation text, severity text, rationale text,
    records bigint NOT NULL, PRIMARY KEY (batch_id, pack, rule)
);
CREATE TABLE oversight.batch_question_counts (
    batch_id uuid NOT NULL, field text NOT NULL, question text, records bigint NOT NULL, first bigint NOT NULL,
    PRIMARY KEY (batch_id, field)
);
-- Which seal of the batch the summary above was made after (current while it is the newest).
CREATE TABLE oversight.batch_summaries (
    batch_id       uuid PRIMARY KEY,
    seal           integer NOT NULL,
    assessments    bigint NOT NULL,
    summarised_at  timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['record_facets', 'record_rules', 'batch_counts', 'batch_rule_counts', 'batch_question_counts', 'batch_summaries'] LOOP
        EXECUTE format('ALTER TABLE oversight.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY services ON oversight.%I TO oversight_coordinator USING (true) WITH CHECK (true)', t);
        EXECUTE format('GRANT SELECT, INSERT, DELETE ON oversight.%I TO oversight_coordinator', t);
    END LOOP;
END
$$;

-- Summarises one batch after its newest seal, replacing an earlier summary; returns the rows of
-- record_facets written. Runs with the caller's rights (the coordinator's, or an owner's).
CREATE FUNCTION oversight.summarise_batch(b uuid) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    newest integer;
    written bigint;
BEGIN
    SELECT max(seal) INTO newest FROM oversight.batch_seals WHERE batch_id = b;
    IF newest IS NULL THEN RETURN 0; END IF;
    DELETE FROM oversight.record_facets WHERE batch_id = b;
    DELETE FROM oversight.record_rules WHERE batch_id = b;
    DELETE FROM oversight.batch_counts WHERE batch_id = b;
    DELETE FROM oversight.batch_rule_counts WHERE batch_id = b;
    DELETE FROM oversight.batch_question_counts WHERE batch_id = b;
    DELETE FROM oversight.batch_summaries WHERE batch_id = b;

    -- One pass over the batch: each result is parsed once (as jsonb, in a lateral subquery
    -- that OFFSET 0 keeps from being inlined), and only what the summary needs is kept.
    CREATE TEMP TABLE summary_rows ON COMMIT DROP AS
    SELECT a.seq, a.record_id, a.verdict, a.worst_case, a.determined, a.applies,
           COALESCE(x.r->>'rests_on', 'declared') AS rests_on,
           COALESCE(jsonb_array_length(x.r->'inferred'), 0) AS inferred_facts,
           COALESCE(y.rec->'system'->>'type', y.rec->'system'->>'name') AS system, y.rec->'system'->>'vendor' AS vendor,
           y.rec->'operator'->>'name' AS operator, y.rec->'operator'->>'country' AS country, y.rec->'operator'->>'region' AS region,
           ARRAY(SELECT (p->'pack'->>'id') || ' ' || COALESCE(p->'pack'->>'sha256', '') || ' ' || (f->>'rule')
                 FROM jsonb_array_elements(CASE WHEN x.r ? 'packs' THEN x.r->'packs' ELSE jsonb_build_array(x.r) END) AS p,
                      jsonb_array_elements(p->'findings') AS f
                 WHERE f->>'outcome' = 'fired') AS fired,
           ARRAY(SELECT q.value->'fields'->>0 FROM jsonb_array_elements(COALESCE(x.r->'questions', '[]'::jsonb)) WITH ORDINALITY AS q(value, n)
                 ORDER BY q.n) AS questions
    FROM oversight.assessments a
    JOIN oversight.jobs j ON j.batch_id = a.batch_id AND j.seq = a.seq
    CROSS JOIN LATERAL (SELECT a.result::jsonb AS r OFFSET 0) AS x
    CROSS JOIN LATERAL (SELECT j.record::jsonb AS rec OFFSET 0) AS y
    WHERE a.batch_id = b;

    INSERT INTO oversight.record_facets
    SELECT b, s.seq, s.record_id, s.verdict, s.worst_case, s.determined, s.applies, s.rests_on, s.inferred_facts,
           s.system, s.vendor, s.operator, s.country, s.region, fq.question
    FROM summary_rows s LEFT JOIN oversight.field_questions fq ON fq.path = s.questions[1];
    GET DIAGNOSTICS written = ROW_COUNT;

    INSERT INTO oversight.record_rules
    SELECT DISTINCT b, split_part(f, ' ', 3), s.seq FROM summary_rows s, unnest(s.fired) AS f;

    INSERT INTO oversight.batch_rule_counts
    SELECT b, x.pack, x.rule, rt.title, rt.citation, rt.severity, rt.rationale, x.records
    FROM (SELECT split_part(f, ' ', 1) AS pack, split_part(f, ' ', 2) AS pack_sha, split_part(f, ' ', 3) AS rule, count(DISTINCT s.seq) AS records
          FROM summary_rows s, unnest(s.fired) AS f GROUP BY 1, 2, 3) x
    LEFT JOIN LATERAL (
        SELECT r->>'title' AS title, r->>'citation' AS citation, r->>'severity' AS severity, r->>'rationale' AS rationale
        FROM oversight.criteria_packs cp, jsonb_array_elements(cp.body->'rules') AS r
        WHERE cp.sha256 = decode(x.pack_sha, 'hex') AND r->>'id' = x.rule LIMIT 1) rt ON true
    ON CONFLICT (batch_id, pack, rule) DO UPDATE SET records = oversight.batch_rule_counts.records + EXCLUDED.records;

    INSERT INTO oversight.batch_question_counts
    SELECT b, q.field, max(fq.question), count(*), count(*) FILTER (WHERE q.n = 1)
    FROM summary_rows s CROSS JOIN LATERAL unnest(s.questions) WITH ORDINALITY AS q(field, n)
    LEFT JOIN oversight.field_questions fq ON fq.path = q.field
    WHERE q.field IS NOT NULL
    GROUP BY q.field;

    INSERT INTO oversight.batch_counts
    SELECT b, 'verdict', '', verdict, worst_case, count(*) FROM oversight.record_facets WHERE batch_id = b GROUP BY verdict, worst_case
    UNION ALL
    SELECT b, 'system', COALESCE(system, 'not stated'), verdict, worst_case, count(*) FROM oversight.record_facets WHERE batch_id = b GROUP BY 3, verdict, worst_case
    UNION ALL
    SELECT b, 'region', COALESCE(country, 'country not stated') || COALESCE(' / ' || region, ''), verdict, worst_case, count(*)
        FROM oversight.record_facets WHERE batch_id = b GROUP BY 3, verdict, worst_case
    UNION ALL
    SELECT b, 'applies', applies, verdict, worst_case, count(*) FROM oversight.record_facets WHERE batch_id = b GROUP BY applies, verdict, worst_case;

    INSERT INTO oversight.batch_summaries (batch_id, seal, assessments) VALUES (b, newest, written);
    DROP TABLE summary_rows;
    RETURN written;
END
$$;
REVOKE ALL ON FUNCTION oversight.summarise_batch(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION oversight.summarise_batch(uuid) TO oversight_coordinator;

-- The reader's side: the same rows, for the organisation's own batches, and only while the
-- summary is the newest seal's.
CREATE VIEW oversight.current_summaries WITH (security_barrier) AS
SELECT s.batch_id, s.seal, s.assessments, s.summarised_at FROM oversight.batch_summaries s
WHERE s.batch_id IN (SELECT batch_id FROM oversight.visible_batches)
  AND s.seal = (SELECT max(z.seal) FROM oversight.batch_seals z WHERE z.batch_id = s.batch_id);
CREATE VIEW oversight.record_facets_visible WITH (security_barrier) AS
SELECT f.* FROM oversight.record_facets f WHERE f.batch_id IN (SELECT batch_id FROM oversight.current_summaries);
CREATE VIEW oversight.record_rules_visible WITH (security_barrier) AS
SELECT r.* FROM oversight.record_rules r WHERE r.batch_id IN (SELECT batch_id FROM oversight.current_summaries);
CREATE VIEW oversight.batch_counts_visible WITH (security_barrier) AS
SELECT c.* FROM oversight.batch_counts c WHERE c.batch_id IN (SELECT batch_id FROM oversight.current_summaries);
CREATE VIEW oversight.batch_rule_counts_visible WITH (security_barrier) AS
SELECT c.* FROM oversight.batch_rule_counts c WHERE c.batch_id IN (SELECT batch_id FROM oversight.current_summaries);
CREATE VIEW oversight.batch_question_counts_visible WITH (security_barrier) AS
SELECT c.* FROM oversight.batch_question_counts c WHERE c.batch_id IN (SELECT batch_id FROM oversight.current_summaries);
GRANT SELECT ON oversight.current_summaries, oversight.record_facets_visible, oversight.record_rules_visible, oversight.batch_counts_visible,
    oversight.batch_rule_counts_visible, oversight.batch_question_counts_visible TO oversight_reader;

-- Batches as pages list them: batch_progress's columns, with the counts of a summarised batch
-- taken from its summary and seal instead of counted again (a million assessments take seconds
-- to count); a batch still running is counted live.
CREATE VIEW oversight.batch_overview WITH (security_barrier) AS
SELECT b.batch_id, b.organisation, b.name, b.source,
       ARRAY(SELECT p.pack_id || '@' || p.version
             FROM unnest(s.pack_sha256s) WITH ORDINALITY AS h(sha256, n)
             JOIN oversight.criteria_packs p ON p.sha256 = h.sha256 ORDER BY h.n) AS packs,
       CASE WHEN b.cancelled_at IS NOT NULL THEN 'cancelled'
            WHEN b.completed_at IS NOT NULL THEN 'completed'
            WHEN b.intake_closed_at IS NULL THEN 'receiving'
            ELSE 'running' END AS state,
       b.accepted, b.rejected,
       COALESCE(cs.assessments, (SELECT count(*) FROM oversight.assessments a WHERE a.batch_id = b.batch_id)) AS assessed,
       (SELECT count(DISTINCT f.seq) FROM oversight.job_failures f WHERE f.batch_id = b.batch_id
            AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = f.batch_id AND a.seq = f.seq)) AS failing,
       b.created_at, b.intake_closed_at, b.completed_at,
       CASE WHEN cs.batch_id IS NOT NULL THEN COALESCE(z.dead_lettered, 0)
            ELSE (SELECT count(*) FROM oversight.dead_letters d WHERE d.batch_id = b.batch_id AND d.retried_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq)) END AS dead_letters,
       z.sealed_at, b.as_of, b.reassessment_of, b.criteria_sha256
FROM oversight.visible_batches b
JOIN oversight.criteria_sets s ON s.sha256 = b.criteria_sha256
LEFT JOIN oversight.current_summaries cs ON cs.batch_id = b.batch_id
LEFT JOIN LATERAL (SELECT max(sealed_at) OVER () AS sealed_at, dead_lettered FROM oversight.batch_seals
                   WHERE batch_id = b.batch_id ORDER BY seal DESC LIMIT 1) z ON true;
GRANT SELECT ON oversight.batch_overview TO oversight_reader;
