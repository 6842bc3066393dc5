-- Approvals, their parties (who may never review them), reviews, and the audit trail.

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    agent           TEXT NOT NULL,
    digest          TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled', 'redeemed')),
    created_ms      INTEGER NOT NULL,
    expires_ms      INTEGER NOT NULL,
    decided_ms      INTEGER,
    usable_until_ms INTEGER,
    redeem_count    INTEGER NOT NULL DEFAULT 0 CHECK (redeem_count >= 0),
    quorum          INTEGER NOT NULL CHECK (quorum >= 1),
    reuse           TEXT NOT NULL,
    credential      TEXT,
    create_json     TEXT NOT NULL
);
CREATE INDEX approvals_by_status ON approvals (status, created_ms);
CREATE INDEX approvals_by_action ON approvals (agent, digest);
-- At most one pending approval per action.
CREATE UNIQUE INDEX approvals_one_pending ON approvals (agent, digest) WHERE status = 'pending';

-- The agent, its owner and whoever it acts for (lower-cased): never reviewers.
CREATE TABLE approval_parties (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    identity    TEXT NOT NULL,
    PRIMARY KEY (approval_id, identity)
);

CREATE TABLE reviews (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    reviewer    TEXT NOT NULL,
    vote        TEXT NOT NULL CHECK (vote IN ('approve', 'deny')),
    comment     TEXT,
    channel     TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    PRIMARY KEY (approval_id, reviewer)
);

-- Every identity (id and aliases, lower-cased) of the reviewer behind a review.
CREATE TABLE review_identities (
    approval_id TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    identity    TEXT NOT NULL,
    PRIMARY KEY (approval_id, reviewer, identity)
);

-- Separation of duties, enforced by the store whatever the application checked.
CREATE TRIGGER review_identities_separation_of_duties
BEFORE INSERT ON review_identities
WHEN EXISTS (SELECT 1 FROM approval_parties p
             WHERE p.approval_id = NEW.approval_id AND p.identity = NEW.identity)
BEGIN
    SELECT RAISE(ABORT, 'separation of duties');
END;

CREATE TRIGGER reviews_separation_of_duties
BEFORE INSERT ON reviews
WHEN EXISTS (SELECT 1 FROM approval_parties p
             WHERE p.approval_id = NEW.approval_id AND p.identity = lower(NEW.reviewer))
BEGIN
    SELECT RAISE(ABORT, 'separation of duties');
END;

-- Reviews only count while the approval is pending.
CREATE TRIGGER reviews_only_while_pending
BEFORE INSERT ON reviews
WHEN (SELECT status FROM approvals WHERE id = NEW.approval_id) IS NOT 'pending'
BEGIN
    SELECT RAISE(ABORT, 'approval is not pending');
END;

CREATE TABLE audit_records (
    seq       INTEGER PRIMARY KEY,
    time      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    event     TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    head_hash TEXT NOT NULL,
    time      TEXT NOT NULL,
    mac       TEXT NOT NULL
);
