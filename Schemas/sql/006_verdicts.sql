-- Engine 4: an assessment gives the settled verdict (what the known facts establish), the worst
-- case (what the open facts could still make it) and the open questions between them, ranked by
-- how likely each is to move the verdict; the law is applied as of a date. Rows of earlier
-- engines stay as they were: their worst_case and determined are NULL, and their verdict may be
-- insufficient_information.

-- The day a batch is assessed as of, fixed when it is opened; and the batch it assesses again.
ALTER TABLE oversight.batches
    ADD COLUMN as_of date,
    ADD COLUMN reassessment_of uuid REFERENCES oversight.batches (batch_id);
UPDATE oversight.batches SET as_of = (created_at AT TIME ZONE 'UTC')::date;
ALTER TABLE oversight.batches
    ALTER COLUMN as_of SET DEFAULT (now() AT TIME ZONE 'UTC')::date,
    ALTER COLUMN as_of SET NOT NULL;
COMMENT ON COLUMN oversight.batches.as_of IS 'The day the batch''s records are assessed as of: rules not yet in force then do not count.';
-- Readers see the new columns (a view's * was expanded when it was made; new columns may be
-- added at its end).
CREATE OR REPLACE VIEW oversight.visible_batches WITH (security_barrier) AS
SELECT b.* FROM oversight.batches b
WHERE (SELECT oversight.visible_organisation()) IS NULL
   OR b.organisation = (SELECT oversight.visible_organisation());
-- The worker reads a batch's date when it first scores one of its jobs.
GRANT SELECT (batch_id, as_of) ON oversight.batches TO oversight_worker;

-- Existing rows hold NULL in both (engine 3 and earlier); NOT VALID spares a scan of them, and
-- every new row is checked.
ALTER TABLE oversight.assessments
    ADD COLUMN worst_case text CHECK (worst_case IN ('prohibited', 'high_risk', 'elevated', 'limited', 'minimal')),
    ADD COLUMN determined boolean;
ALTER TABLE oversight.assessments
    ADD CONSTRAINT assessments_worst_case_with_determined CHECK ((worst_case IS NULL) = (determined IS NULL)) NOT VALID,
    ADD CONSTRAINT assessments_settled_verdict CHECK (worst_case IS NULL OR verdict <> 'insufficient_information') NOT VALID;

-- What each field of the deployment schema asks (its x-question): the words of a question that
-- stored results name by field path. Written by the migrator from the schema it was built with.
CREATE TABLE oversight.field_questions (
    path          text PRIMARY KEY,
    question      text NOT NULL,
    schema_sha256 bytea NOT NULL CHECK (length(schema_sha256) = 32)
);
ALTER TABLE oversight.field_questions ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON oversight.field_questions FOR SELECT USING (true);
GRANT SELECT ON oversight.field_questions TO oversight_coordinator, oversight_worker, oversight_reader;

-- Evidence packs (facts read from records' text, and the vendor register), by SHA-256 of their
-- canonical JSON, as every inferred fact of a record names them: written by the migrator from
-- the packs this program was built with.
CREATE TABLE oversight.evidence_packs (
    sha256     bytea PRIMARY KEY CHECK (length(sha256) = 32),
    pack_id    text NOT NULL,
    version    text NOT NULL,
    body       jsonb NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE oversight.evidence_packs ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON oversight.evidence_packs FOR SELECT USING (true);
GRANT SELECT ON oversight.evidence_packs TO oversight_coordinator, oversight_worker, oversight_reader;

DROP VIEW oversight.findings;
DROP VIEW oversight.pack_results;
DROP VIEW oversight.assessment_summary;
DROP VIEW oversight.results;

-- One row per assessment: the settled verdict, the worst case, whether they agree, whether the
-- verdict rests on facts read from the record's text (rests_on) and which (inferred: each with
-- field, value, span, source, pattern and strength), the ranked questions (JSON, each with
-- fields, rules, if_worst and if_best) and the first of them in words.
CREATE VIEW oversight.results WITH (security_barrier) AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict, a.worst_case, a.determined, a.score,
       (j.r->>'worst_case_score')::int AS worst_case_score, a.applies,
       (j.r->>'as_of')::date AS as_of,
       COALESCE(j.r->>'rests_on', 'declared') AS rests_on,
       COALESCE(j.r->'inferred', '[]'::json) AS inferred,
       ARRAY(SELECT json_array_elements_text(j.r->'questions'->0->'fields')) AS first_question_fields,
       fq.question AS first_question,
       j.r->'questions' AS questions,
       j.r AS result, a.engine,
       a.criteria_sha256, a.input_sha256, a.row_sha256, a.worker, a.attempt, a.assessed_at
FROM oversight.assessments a
CROSS JOIN LATERAL (SELECT a.result::json AS r) AS j
LEFT JOIN oversight.field_questions fq ON fq.path = j.r->'questions'->0->'fields'->>0
WHERE a.batch_id IN (SELECT batch_id FROM oversight.visible_batches);

-- Records by settled verdict and worst case (engine 3 rows have no worst case: NULL).
CREATE VIEW oversight.assessment_summary WITH (security_barrier) AS
SELECT batch_id, verdict, worst_case, count(*) AS records, round(avg(score), 1) AS mean_score,
       round(avg(worst_case_score), 1) AS mean_worst_case_score
FROM oversight.results GROUP BY batch_id, verdict, worst_case;

-- One row per fired rule (engine 4 stores fired findings; the open rules are the questions'),
-- with the facts it rests on and which of them were inferred from the record's text.
-- Engine 3 rows keep their needs_information findings and missing fields.
CREATE VIEW oversight.findings WITH (security_barrier) AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict, a.worst_case,
       p->'pack'->>'id' AS pack,
       f->>'rule' AS rule, f->>'outcome' AS outcome, f->>'severity' AS severity, (f->>'points')::int AS points,
       COALESCE(f->>'citation', rule_text.citation) AS citation, COALESCE(f->>'title', rule_text.title) AS title,
       f->'facts' AS facts,
       ARRAY(SELECT json_array_elements_text(f->'inferred')) AS inferred_facts,
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
       p->>'verdict' AS verdict, p->>'worst_case' AS worst_case, (p->>'determined')::boolean AS determined,
       (p->>'score')::int AS score, (p->>'worst_case_score')::int AS worst_case_score, p->>'applies' AS applies,
       p->'questions' AS questions, COALESCE(p->>'rests_on', 'declared') AS rests_on,
       ARRAY(SELECT json_array_elements_text(p->'not_in_force')) AS not_in_force
FROM oversight.results a,
     json_array_elements(CASE WHEN a.result->'packs' IS NOT NULL THEN a.result->'packs' ELSE json_build_array(a.result) END) AS p;

-- One row per open question of an assessment, in rank order (1 first): the facts it asks for,
-- the question in words, the rules it decides (its lead rule first), the settled verdict if the
-- answer turns out worst and the worst case if it turns out best.
CREATE VIEW oversight.questions WITH (security_barrier) AS
SELECT a.batch_id, a.seq, a.record_id, a.verdict, a.worst_case, q.n AS rank,
       ARRAY(SELECT json_array_elements_text(q.value->'fields')) AS fields,
       fq.question,
       ARRAY(SELECT json_array_elements_text(q.value->'rules')) AS rules,
       q.value->>'if_worst' AS if_worst, q.value->>'if_best' AS if_best
FROM oversight.results a
CROSS JOIN LATERAL json_array_elements(COALESCE(a.questions, '[]'::json)) WITH ORDINALITY AS q(value, n)
LEFT JOIN oversight.field_questions fq ON fq.path = q.value->'fields'->>0;

GRANT SELECT ON oversight.results, oversight.assessment_summary, oversight.findings, oversight.pack_results,
    oversight.questions TO oversight_reader;
