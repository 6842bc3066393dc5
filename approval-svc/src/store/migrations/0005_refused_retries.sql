-- Identical retries answered from a recent denial (`approvals.denied_retry_window`):
-- counted on the denied approval, in the answering transaction. The audit trail records
-- the 1st, 2nd, 4th, 8th, ... of them, so an agent retrying in a loop leaves evidence of
-- it without flooding the chain.
ALTER TABLE approvals ADD COLUMN refused_retries INTEGER NOT NULL DEFAULT 0;
