-- Airlock's PostgreSQL schema, version 1: the same tables and guarantees as the SQLite
-- migrations 0001-0005, for several replicas on one database. Applied at start under
-- an advisory lock, so replicas starting together migrate once.

CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    agent           TEXT NOT NULL,
    digest          TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'cancelled', 'redeemed')),
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    decided_ms      BIGINT,
    usable_until_ms BIGINT,
    redeem_count    BIGINT NOT NULL DEFAULT 0 CHECK (redeem_count >= 0),
    quorum          BIGINT NOT NULL CHECK (quorum >= 1),
    reuse           TEXT NOT NULL,
    credential      TEXT,
    create_json     TEXT NOT NULL,
    refused_retries BIGINT NOT NULL DEFAULT 0,
    -- Insertion order, for a stable "newest first" between approvals created in one ms.
    created_seq     BIGSERIAL
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
    time_ms     BIGINT NOT NULL,
    seq         BIGSERIAL,
    PRIMARY KEY (approval_id, reviewer)
);

-- Every identity (id and aliases, lower-cased) of the reviewer behind a review: one
-- human counts once towards a quorum, whatever name they vote under.
CREATE TABLE review_identities (
    approval_id TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    identity    TEXT NOT NULL,
    PRIMARY KEY (approval_id, identity)
);

-- Separation of duties and "reviews only while pending", enforced by the database
-- whatever the application checked. SQLSTATEs AL001/AL002 name the rule broken.
CREATE FUNCTION airlock_review_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM approval_parties p
               WHERE p.approval_id = NEW.approval_id AND p.identity = lower(NEW.reviewer)) THEN
        RAISE EXCEPTION 'separation of duties' USING ERRCODE = 'AL001';
    END IF;
    IF (SELECT status FROM approvals WHERE id = NEW.approval_id) IS DISTINCT FROM 'pending' THEN
        RAISE EXCEPTION 'approval is not pending' USING ERRCODE = 'AL002';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER reviews_guard BEFORE INSERT ON reviews
    FOR EACH ROW EXECUTE FUNCTION airlock_review_guard();

CREATE FUNCTION airlock_review_identity_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM approval_parties p
               WHERE p.approval_id = NEW.approval_id AND p.identity = NEW.identity) THEN
        RAISE EXCEPTION 'separation of duties' USING ERRCODE = 'AL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER review_identities_guard BEFORE INSERT ON review_identities
    FOR EACH ROW EXECUTE FUNCTION airlock_review_identity_guard();

CREATE TABLE audit_records (
    seq       BIGINT PRIMARY KEY,
    time      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    event     TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE FUNCTION airlock_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END $$;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION airlock_append_only();

-- The chain head: one row, locked by every appending transaction, so appends from all
-- replicas form one gap-free chain (seq + 1, prev_hash = head).
CREATE TABLE audit_head (
    id   INT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE audit_checkpoints (
    seq       BIGINT PRIMARY KEY,
    head_hash TEXT NOT NULL,
    time      TEXT NOT NULL,
    mac       TEXT NOT NULL
);

-- Notifications to reviewers, queued with the change they announce. A replica leases
-- the rows it works on (lease_until_ms), so no two replicas post the same one.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    approval_id     TEXT NOT NULL REFERENCES approvals (id),
    event           TEXT NOT NULL CHECK (event IN ('requested', 'updated')),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms  BIGINT,
    last_error      TEXT,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
CREATE INDEX outbox_by_approval ON outbox (approval_id, state);

CREATE TABLE deliveries (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    target      TEXT NOT NULL,
    message     TEXT NOT NULL,
    posted_ms   BIGINT NOT NULL,
    updated_ms  BIGINT,
    PRIMARY KEY (approval_id, target)
);

CREATE TABLE conversations (
    channel    TEXT NOT NULL,
    id         TEXT NOT NULL,
    reference  TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (channel, id)
);

-- Replay guards, shared by every replica: redeems that minted, decision batches appended.
CREATE TABLE redeem_replays (
    signature TEXT PRIMARY KEY,
    seen_ms   BIGINT NOT NULL
);
CREATE INDEX redeem_replays_by_age ON redeem_replays (seen_ms);

CREATE TABLE decision_batches (
    signature   TEXT PRIMARY KEY,
    received_ms BIGINT NOT NULL
);
CREATE INDEX decision_batches_by_age ON decision_batches (received_ms);
