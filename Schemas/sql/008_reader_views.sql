-- What a reader (the web console, `oversight report`) sees beyond the results: each dead letter
-- with every attempt's error, and the per-record facts a batch's overview groups by (system
-- type or name, operator country and region), under the same organisation filter as the other
-- views. Readers still reach views only.

CREATE VIEW oversight.dead_letter_attempts WITH (security_barrier) AS
SELECT d.batch_id, d.seq, j.line, d.attempts, d.last_error, d.dead_at, d.retried_at,
       d.retried_at IS NULL AND NOT EXISTS (SELECT 1 FROM oversight.assessments a WHERE a.batch_id = d.batch_id AND a.seq = d.seq) AS open,
       COALESCE((SELECT json_agg(json_build_object('attempt', f.attempt, 'worker', f.worker, 'reason', f.reason,
                                                   'failed_at', to_char(f.failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                                 ORDER BY f.attempt)
                 FROM oversight.job_failures f WHERE f.batch_id = d.batch_id AND f.seq = d.seq), '[]'::json) AS failures
FROM oversight.dead_letters d
LEFT JOIN oversight.jobs j ON j.batch_id = d.batch_id AND j.seq = d.seq
WHERE d.batch_id IN (SELECT batch_id FROM oversight.visible_batches);

-- One row per assessment with what lists and charts filter on, read from the record as
-- submitted: the system (type, else the name the source gives it), the operator and where it is.
CREATE VIEW oversight.record_index WITH (security_barrier) AS
SELECT r.batch_id, r.seq, r.record_id, r.verdict, r.worst_case, r.determined, r.score, r.applies, r.rests_on,
       r.first_question, r.first_question_fields,
       COALESCE(s.rec->'system'->>'type', s.rec->'system'->>'name') AS system,
       s.rec->'system'->>'name' AS system_name,
       s.rec->'system'->>'vendor' AS vendor,
       s.rec->'operator'->>'name' AS operator,
       s.rec->'operator'->>'country' AS country,
       s.rec->'operator'->>'region' AS region,
       s.rec->>'summary' AS summary
FROM oversight.results r
JOIN oversight.jobs j ON j.batch_id = r.batch_id AND j.seq = r.seq
CROSS JOIN LATERAL (SELECT j.record::json AS rec) AS s;

GRANT SELECT ON oversight.dead_letter_attempts, oversight.record_index TO oversight_reader;

-- The packs of each visible batch's criteria set, in order, so that a reader can explain a
-- stored assessment again (and check it byte for byte) without seeing other organisations' packs.
CREATE VIEW oversight.batch_packs WITH (security_barrier) AS
SELECT b.batch_id, h.n AS position, p.sha256, p.pack_id, p.version, p.body
FROM oversight.visible_batches b
JOIN oversight.criteria_sets s ON s.sha256 = b.criteria_sha256
CROSS JOIN LATERAL unnest(s.pack_sha256s) WITH ORDINALITY AS h(sha256, n)
JOIN oversight.criteria_packs p ON p.sha256 = h.sha256;

GRANT SELECT ON oversight.batch_packs TO oversight_reader;
