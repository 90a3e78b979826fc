-- The facets are written by the workers, with the results, in the same transaction, into a
-- table with no index: a worker has the record and its assessment in hand, so a record's facet
-- row costs it a COPY of a few hundred bytes into a heap. Deriving them after the batch meant
-- parsing every stored result and record as JSON again (a million-record batch's summary took
-- 280 s, its pages and report waited for it, and on a busy fleet summaries fell behind the
-- batches); writing them straight into the indexed record_facets and record_rules made the
-- workers maintain seven indexes row by row (a million-record batch took 179 s instead of 112).
-- After a seal the summary is made in two steps, each its own transaction:
--   1. oversight.summarise_batch adds up the batch's facets, pending or moved, into the counts
--      a batch page and a report read (seconds for a million records), and records the summary;
--   2. oversight.list_batch moves the pending facets into the indexed record_facets and
--      record_rules in one sorted pass (a minute for a million records: index maintenance),
--      and marks the summary listed; record lists read the facets from then on, the live
--      views until then.
-- Results written without facets (by a worker of an older version, or before this version)
-- are still derived from their JSON, as before, and only those.
--
-- Summaries made before this version are dropped, as are their facets (which named no pack
-- for a rule): the coordinator summarises every completed batch again when it starts, and
-- pages read the live views until it has.

TRUNCATE oversight.record_facets, oversight.record_rules, oversight.batch_counts, oversight.batch_rule_counts,
    oversight.batch_question_counts, oversight.batch_summaries;

-- Every open question's field path, in rank order (the question counts add them up).
ALTER TABLE oversight.record_facets ADD COLUMN questions text[] NOT NULL DEFAULT '{}';

-- Which pack of the batch's criteria set (its place, from 1) fired the rule: rule ids are
-- unique within a pack, not across the packs of a set.
ALTER TABLE oversight.record_rules ADD COLUMN pack smallint NOT NULL CHECK (pack >= 1);
ALTER TABLE oversight.record_rules DROP CONSTRAINT record_rules_pkey;
ALTER TABLE oversight.record_rules ADD PRIMARY KEY (batch_id, rule, seq, pack);

-- What workers write with each result until the batch is summarised: record_facets' columns
-- and the fired rules as 'pack rule' (the pack's place in the criteria set, a space, the rule
-- id). No index and no key: the summary reads a batch's rows once, and a result's row is
-- written in the transaction that writes the result, only if it wrote it, so there is one per
-- assessment.
CREATE TABLE oversight.pending_facets (
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
    search          text,
    questions       text[] NOT NULL,
    fired           text[] NOT NULL
);
ALTER TABLE oversight.pending_facets ENABLE ROW LEVEL SECURITY;
-- The worker appends, as it appends assessments: nothing more (no reading, no deleting).
CREATE POLICY workers ON oversight.pending_facets FOR INSERT TO oversight_worker WITH CHECK (true);
GRANT INSERT ON oversight.pending_facets TO oversight_worker;
CREATE POLICY services ON oversight.pending_facets TO oversight_coordinator USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON oversight.pending_facets TO oversight_coordinator;

-- Whether the batch's facets are all in record_facets (step 2 done): record lists read them only then.
ALTER TABLE oversight.batch_summaries ADD COLUMN listed boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION oversight.summarise_batch(b uuid) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    newest integer;
    sealed bigint;
    written bigint;
    pending bigint;
BEGIN
    -- One step at a time per batch (the two steps run on different connections).
    PERFORM pg_advisory_xact_lock(1330861139, hashtext(b::text));
    SELECT seal, assessments INTO newest, sealed FROM oversight.batch_seals WHERE batch_id = b ORDER BY seal DESC LIMIT 1;
    IF newest IS NULL THEN RETURN 0; END IF;
    DELETE FROM oversight.batch_counts WHERE batch_id = b;
    DELETE FROM oversight.batch_rule_counts WHERE batch_id = b;
    DELETE FROM oversight.batch_question_counts WHERE batch_id = b;
    DELETE FROM oversight.batch_summaries WHERE batch_id = b;

    -- Facets of results that were written without them, from the stored JSON, into pending:
    -- each result parsed once (as jsonb, in a lateral subquery that OFFSET 0 keeps from being
    -- inlined). Facets are written only with their result (or here), so as many facets as the
    -- seal has assessments means none is missing, and nothing needs to be read from the results.
    SELECT count(*) INTO written FROM oversight.record_facets WHERE batch_id = b;
    SELECT count(*) INTO pending FROM oversight.pending_facets p WHERE p.batch_id = b
        AND NOT EXISTS (SELECT 1 FROM oversight.record_facets rf WHERE rf.batch_id = b AND rf.seq = p.seq);
    IF written + pending < sealed THEN
        INSERT INTO oversight.pending_facets (batch_id, seq, record_id, verdict, worst_case, determined, applies, rests_on, inferred_facts,
                                              system, vendor, operator, country, region, first_question, search, questions, fired)
        SELECT b, s.seq, s.record_id, s.verdict, s.worst_case, s.determined, s.applies, s.rests_on, s.inferred_facts,
               s.system, s.vendor, s.operator, s.country, s.region, fq.question,
               lower(concat_ws(E'\x1f', s.record_id, s.operator, s.system, s.vendor, s.summary)),
               ARRAY(SELECT q FROM unnest(s.questions) AS q WHERE q IS NOT NULL), s.fired
        FROM (
            SELECT a.seq, a.record_id, a.verdict, a.worst_case, a.determined, a.applies,
                   COALESCE(x.r->>'rests_on', 'declared') AS rests_on,
                   COALESCE(jsonb_array_length(x.r->'inferred'), 0) AS inferred_facts,
                   COALESCE(y.rec->'system'->>'type', y.rec->'system'->>'name') AS system, y.rec->'system'->>'vendor' AS vendor,
                   y.rec->'operator'->>'name' AS operator, y.rec->'operator'->>'country' AS country, y.rec->'operator'->>'region' AS region,
                   y.rec->>'summary' AS summary,
                   ARRAY(SELECT DISTINCT COALESCE(array_position(cs.pack_sha256s, decode(p.value->'pack'->>'sha256', 'hex')), p.n::integer)::text || ' ' || (f->>'rule')
                         FROM jsonb_array_elements(CASE WHEN x.r ? 'packs' THEN x.r->'packs' ELSE jsonb_build_array(x.r) END) WITH ORDINALITY AS p(value, n),
                              jsonb_array_elements(p.value->'findings') AS f
                         WHERE f->>'outcome' = 'fired') AS fired,
                   ARRAY(SELECT q.value->'fields'->>0 FROM jsonb_array_elements(COALESCE(x.r->'questions', '[]'::jsonb)) WITH ORDINALITY AS q(value, n)
                         ORDER BY q.n) AS questions
            FROM oversight.assessments a
            JOIN oversight.jobs j ON j.batch_id = a.batch_id AND j.seq = a.seq
            JOIN oversight.criteria_sets cs ON cs.sha256 = a.criteria_sha256
            CROSS JOIN LATERAL (SELECT a.result::jsonb AS r OFFSET 0) AS x
            CROSS JOIN LATERAL (SELECT j.record::jsonb AS rec OFFSET 0) AS y
            WHERE a.batch_id = b
              AND NOT EXISTS (SELECT 1 FROM oversight.record_facets rf WHERE rf.batch_id = a.batch_id AND rf.seq = a.seq)
              AND NOT EXISTS (SELECT 1 FROM oversight.pending_facets pf WHERE pf.batch_id = a.batch_id AND pf.seq = a.seq)
        ) s LEFT JOIN oversight.field_questions fq ON fq.path = s.questions[1];
        SELECT count(*) INTO pending FROM oversight.pending_facets p WHERE p.batch_id = b
            AND NOT EXISTS (SELECT 1 FROM oversight.record_facets rf WHERE rf.batch_id = b AND rf.seq = p.seq);
    END IF;

    -- The batch's facets, moved and pending alike, once (a pending row whose record is listed
    -- already, which list_batch would skip, is not counted twice).
    CREATE TEMP TABLE summary_facets ON COMMIT DROP AS
    SELECT verdict, worst_case, applies, rests_on, inferred_facts, system, country, region, questions, NULL::text[] AS fired
    FROM oversight.record_facets WHERE batch_id = b
    UNION ALL
    SELECT verdict, worst_case, applies, rests_on, inferred_facts, system, country, region, questions, fired
    FROM oversight.pending_facets p WHERE p.batch_id = b
        AND NOT EXISTS (SELECT 1 FROM oversight.record_facets rf WHERE rf.batch_id = b AND rf.seq = p.seq);

    -- The rules that fired, by pack, with their words from the pack the batch was assessed with.
    INSERT INTO oversight.batch_rule_counts
    SELECT b, cp.pack_id, x.rule, rt.title, rt.citation, rt.severity, rt.rationale, x.records
    FROM (SELECT y.pack, y.rule, count(*) AS records
          FROM (SELECT r.pack, r.rule FROM oversight.record_rules r WHERE r.batch_id = b
                UNION ALL
                SELECT split_part(f, ' ', 1)::smallint, substr(f, strpos(f, ' ') + 1)
                FROM summary_facets p, unnest(p.fired) AS f) y
          GROUP BY y.pack, y.rule) x
    JOIN oversight.batches bt ON bt.batch_id = b
    JOIN oversight.criteria_sets cs ON cs.sha256 = bt.criteria_sha256
    JOIN oversight.criteria_packs cp ON cp.sha256 = cs.pack_sha256s[x.pack]
    LEFT JOIN LATERAL (
        SELECT r->>'title' AS title, r->>'citation' AS citation, r->>'severity' AS severity, r->>'rationale' AS rationale
        FROM jsonb_array_elements(cp.body->'rules') AS r WHERE r->>'id' = x.rule LIMIT 1) rt ON true
    ON CONFLICT (batch_id, pack, rule) DO UPDATE SET records = oversight.batch_rule_counts.records + EXCLUDED.records;

    INSERT INTO oversight.batch_question_counts
    SELECT b, q.field, max(fq.question), count(*), count(*) FILTER (WHERE q.n = 1)
    FROM summary_facets f CROSS JOIN LATERAL unnest(f.questions) WITH ORDINALITY AS q(field, n)
    LEFT JOIN oversight.field_questions fq ON fq.path = q.field
    GROUP BY q.field;

    INSERT INTO oversight.batch_counts
    SELECT b, 'verdict', '', verdict, worst_case, count(*) FROM summary_facets GROUP BY verdict, worst_case
    UNION ALL
    SELECT b, 'system', COALESCE(system, 'not stated'), verdict, worst_case, count(*) FROM summary_facets GROUP BY 3, verdict, worst_case
    UNION ALL
    SELECT b, 'region', COALESCE(country, 'country not stated') || COALESCE(' / ' || region, ''), verdict, worst_case, count(*)
        FROM summary_facets GROUP BY 3, verdict, worst_case
    UNION ALL
    SELECT b, 'applies', applies, verdict, worst_case, count(*) FROM summary_facets GROUP BY applies, verdict, worst_case;

    -- How many facts came from evidence rather than declared fields.
    INSERT INTO oversight.batch_counts
    SELECT b, 'evidence', e.key, '', NULL, e.records
    FROM (SELECT count(*) FILTER (WHERE inferred_facts > 0) AS with_facts, COALESCE(sum(inferred_facts), 0) AS facts,
                 count(*) FILTER (WHERE rests_on = 'inferred') AS resting
          FROM summary_facets) c
    CROSS JOIN LATERAL (VALUES ('records_with_facts', c.with_facts), ('facts_used', c.facts), ('resting_on_inferred', c.resting)) AS e(key, records);

    INSERT INTO oversight.batch_summaries (batch_id, seal, assessments, listed) VALUES (b, newest, written + pending, pending = 0);
    DROP TABLE summary_facets;
    RETURN written + pending;
END
$$;

-- Step 2: the batch's pending facets into the indexed tables, in the order of their primary
-- keys, and out of pending; then its summary is listed. A batch summarised again (after a
-- retry) keeps the facets it has and gains the new ones. Returns the facets moved.
-- (Rows are filtered against record_facets rather than inserted ON CONFLICT DO NOTHING: the
-- speculative insertion cost a fifth more on a million rows.)
CREATE FUNCTION oversight.list_batch(b uuid) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    moved_rows bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1330861139, hashtext(b::text));
    -- What this moves, read once: a row committed meanwhile (a retry's result) stays pending
    -- for the next summary.
    CREATE TEMP TABLE moving ON COMMIT DROP AS
    SELECT * FROM oversight.pending_facets p WHERE p.batch_id = b
      AND NOT EXISTS (SELECT 1 FROM oversight.record_facets rf WHERE rf.batch_id = b AND rf.seq = p.seq);
    GET DIAGNOSTICS moved_rows = ROW_COUNT;
    INSERT INTO oversight.record_rules (batch_id, rule, seq, pack)
    SELECT DISTINCT b, substr(f, strpos(f, ' ') + 1), m.seq, split_part(f, ' ', 1)::smallint
    FROM moving m, unnest(m.fired) AS f ORDER BY 2, 3;
    INSERT INTO oversight.record_facets (batch_id, seq, record_id, verdict, worst_case, determined, applies, rests_on, inferred_facts,
                                         system, vendor, operator, country, region, first_question, search, questions)
    SELECT DISTINCT ON (seq) batch_id, seq, record_id, verdict, worst_case, determined, applies, rests_on, inferred_facts,
           system, vendor, operator, country, region, first_question, search, questions
    FROM moving ORDER BY seq;
    -- Out of pending: what was moved, and any row whose record was listed already.
    DELETE FROM oversight.pending_facets p WHERE p.batch_id = b
      AND EXISTS (SELECT 1 FROM oversight.record_facets rf WHERE rf.batch_id = b AND rf.seq = p.seq);
    DROP TABLE moving;
    -- Listed when nothing of the batch is pending any more (a retry's results may be).
    UPDATE oversight.batch_summaries SET listed = NOT EXISTS (SELECT 1 FROM oversight.pending_facets WHERE batch_id = b)
    WHERE batch_id = b;
    RETURN moved_rows;
END
$$;
REVOKE ALL ON FUNCTION oversight.list_batch(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION oversight.list_batch(uuid) TO oversight_coordinator;
GRANT UPDATE (listed) ON oversight.batch_summaries TO oversight_coordinator;

-- Readers read a batch's facets once it is listed; its counts as soon as it is summarised.
CREATE OR REPLACE VIEW oversight.current_summaries WITH (security_barrier) AS
SELECT s.batch_id, s.seal, s.assessments, s.summarised_at, s.listed FROM oversight.batch_summaries s
WHERE s.batch_id IN (SELECT batch_id FROM oversight.visible_batches)
  AND s.seal = (SELECT max(z.seal) FROM oversight.batch_seals z WHERE z.batch_id = s.batch_id);
ALTER POLICY readers ON oversight.record_facets USING (batch_id IN (SELECT batch_id FROM oversight.current_summaries WHERE listed));
ALTER POLICY readers ON oversight.record_rules USING (batch_id IN (SELECT batch_id FROM oversight.current_summaries WHERE listed));
CREATE OR REPLACE VIEW oversight.record_facets_visible WITH (security_barrier) AS
SELECT f.* FROM oversight.record_facets f WHERE f.batch_id IN (SELECT batch_id FROM oversight.current_summaries WHERE listed);
CREATE OR REPLACE VIEW oversight.record_rules_visible WITH (security_barrier) AS
SELECT r.* FROM oversight.record_rules r WHERE r.batch_id IN (SELECT batch_id FROM oversight.current_summaries WHERE listed);

-- A reader's search answers for a listed summary only, as the reader policy allows.
CREATE OR REPLACE FUNCTION oversight.search_records(b uuid, pattern text, verdict text, worst_case text, system text, operator_name text,
                                         region text, rule text, after bigint, lim integer, skip integer)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    org text;
BEGIN
    SELECT r.organisation INTO org FROM oversight.readers r WHERE r.role_name = session_user;
    IF org IS NULL OR pattern IS NULL THEN RETURN; END IF;
    IF NOT EXISTS (SELECT 1 FROM oversight.batches bt JOIN oversight.batch_summaries s ON s.batch_id = bt.batch_id
                   WHERE bt.batch_id = b AND bt.organisation = org AND s.listed
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
