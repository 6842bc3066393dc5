-- Notifications to reviewers (Teams, Slack, webhooks), queued in the same transaction as
-- the change they announce, so a crash between the two cannot drop one.

-- One row per event to announce; the dispatcher works through them oldest first, one at
-- a time per approval, and retries with backoff.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    approval_id     TEXT NOT NULL REFERENCES approvals (id),
    event           TEXT NOT NULL CHECK (event IN ('requested', 'updated')),
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
CREATE INDEX outbox_by_approval ON outbox (approval_id, state);

-- Each message posted for an approval, and what updating it needs. Its presence is what
-- keeps a retry or a restart from posting the same approval twice to one target.
CREATE TABLE deliveries (
    approval_id TEXT NOT NULL REFERENCES approvals (id),
    target      TEXT NOT NULL,
    message     TEXT NOT NULL,
    posted_ms   INTEGER NOT NULL,
    updated_ms  INTEGER,
    PRIMARY KEY (approval_id, target)
);

-- Conversations a chat bot may post to, learnt from install events.
CREATE TABLE conversations (
    channel    TEXT NOT NULL,
    id         TEXT NOT NULL,
    reference  TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (channel, id)
);
