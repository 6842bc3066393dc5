-- Decision-log batches already appended, by the signature of the signed request that
-- carried them: a replayed batch is answered as accepted and appends nothing. Written in
-- the batch's own transaction; rows older than the signature window are pruned as new
-- ones come.
CREATE TABLE decision_batches (
    signature   TEXT PRIMARY KEY,
    received_ms INTEGER NOT NULL
);
CREATE INDEX decision_batches_by_age ON decision_batches (received_ms);
