-- Signatures of the signed redeem requests that minted a credential: a redeem is never
-- honoured twice byte for byte, across restarts and replicas too. Written in the redeem's
-- own transaction; rows older than the signature window are pruned as new ones come.
CREATE TABLE redeem_replays (
    signature TEXT PRIMARY KEY,
    seen_ms   INTEGER NOT NULL
);
CREATE INDEX redeem_replays_by_age ON redeem_replays (seen_ms);
