-- The evidence counts join the summary's counts (grouping 'evidence').
-- The record list's filters without parsing JSON or sorting a batch: free text over one
-- lower-case column written by the summary (record id, operator, system, vendor and the record's
-- summary; it was the summary read out of every submitted record), a region given as a country
-- by index, and pages read in seq order from the primary key under a row-level policy.
-- (A trigram index would not help a reader: under row-level security PostgreSQL uses an index
-- only for leakproof operators, and LIKE is not one.) Summaries made before this version
-- have no search text: they are dropped here, so that pages read the live views until the
-- coordinator summarises those batches again (it does so at start for every completed batch
-- whose newest seal has no summary).

ALTER TABLE oversight.record_facets ADD COLUMN search text;
CREATE INDEX record_facets_country ON oversight.record_facets (batch_id, country, seq);

-- Readers list a summarised batch's records from the facet tables themselves, under row-level
-- security, instead of through the security-barrier views: a view's join with the summaries
-- kept the planner from reading the primary key in seq order, so every page of a million-record
-- batch sorted the whole batch (0.4 s); a policy's subquery is one hashed lookup per row and
-- the page is read in order from the index (milliseconds). The policy is the views' condition.
GRANT SELECT ON oversight.record_facets, oversight.record_rules TO oversight_reader;
CREATE POLICY readers ON oversight.record_facets FOR SELECT TO oversight_reader
    USING (batch_id IN (SELECT batch_id FROM oversight.current_summaries));
CREATE POLICY readers ON oversight.record_rules FOR SELECT TO oversight_reader
    USING (batch_id IN (SELECT batch_id FROM oversight.current_summaries));

-- The reader's view of the facets gains the column (a view's * was expanded when it was made).
CREATE OR REPLACE VIEW oversight.record_facets_visible WITH (security_barrier) AS
SELECT f.* FROM oversight.record_facets f WHERE f.batch_id IN (SELECT batch_id FROM oversight.current_summaries);

DELETE FROM oversight.batch_summaries;

CREATE OR REPLACE FUNCTION oversight.summarise_batch(b uuid) RETURNS bigint LANGUAGE plpgsql AS $$
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
           y.rec->>'summary' AS summary,
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
           s.system, s.vendor, s.operator, s.country, s.region, fq.question,
           lower(concat_ws(E'\x1f', s.record_id, s.operator, s.system, s.vendor, s.summary))
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

    -- How many facts came from evidence rather than declared fields (the batch page's line;
    -- counted over a million facets it took most of a second on every view of the page).
    INSERT INTO oversight.batch_counts
    SELECT b, 'evidence', e.key, '', NULL, e.records
    FROM (SELECT count(*) FILTER (WHERE inferred_facts > 0) AS with_facts, COALESCE(sum(inferred_facts), 0) AS facts,
                 count(*) FILTER (WHERE rests_on = 'inferred') AS resting
          FROM oversight.record_facets WHERE batch_id = b) c
    CROSS JOIN LATERAL (VALUES ('records_with_facts', c.with_facts), ('facts_used', c.facts), ('resting_on_inferred', c.resting)) AS e(key, records);

    INSERT INTO oversight.batch_summaries (batch_id, seal, assessments) VALUES (b, newest, written);
    DROP TABLE summary_rows;
    RETURN written;
END
$$;
