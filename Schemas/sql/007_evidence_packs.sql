-- Evidence packs a batch brings (OPEN pack kind 2) are stored by the coordinator, as criteria
-- packs are, so that the facts they read can be checked at intake and reproduced later.
GRANT INSERT ON oversight.evidence_packs TO oversight_coordinator;
CREATE POLICY coordinator_stores ON oversight.evidence_packs FOR INSERT TO oversight_coordinator WITH CHECK (true);
