//! The approval transitions, written once for every backend over [`Ledger`]: create or
//! find, review, redeem, expire. Each reads what it decides on inside the transaction
//! (locked), applies the pure rules of [`crate::lifecycle`], and writes the outcome with
//! a compare-and-swap, its audit record(s) and the reviewer notifications, all in that
//! one transaction. Backends implement only the rows (`crate::store::Ledger`); the store
//! decides nothing.

use serde_json::{json, Value};

use crate::lifecycle::{self, due_transition, forbidden_identities, Reuse, Reviewer, Status, Tally, Vote};
use crate::store::ledger::{Ledger, ReviewRow, RowRefusal, StatusChange};
use crate::store::{
    Approval, CreateLimits, CreateOutcome, Expiry, NewApproval, RedeemRefusal, RedeemRequest, ReviewError, ReviewNote,
    StoreError,
};

/// Whether `a`'s time is up at `now_ms`.
pub fn is_due(a: &Approval, now_ms: i64) -> bool {
    due_transition(a.status, a.expires_ms, a.usable_until_ms, a.redeem_count, now_ms).is_some()
}

fn reload(l: &mut dyn Ledger, id: &str) -> Result<Approval, StoreError> {
    l.load(id)?.ok_or_else(|| StoreError::Corrupt(format!("approval {id} vanished")))
}

/// Approval `id` if a decision can still move it: it exists, is pending, and is not past
/// its deadline (one that is gets expired here, in the same transaction). Otherwise why not.
fn load_pending(l: &mut dyn Ledger, id: &str, now_ms: i64) -> Result<Result<Approval, ReviewError>, StoreError> {
    let Some(a) = l.load(id)? else { return Ok(Err(ReviewError::NotFound)) };
    if let Some(next) = expire_if_due(l, &a, now_ms)? {
        return Ok(Err(if next == Status::Expired { ReviewError::Expired } else { ReviewError::AlreadyDecided(next) }));
    }
    Ok(match a.status {
        Status::Pending => Ok(a),
        Status::Expired => Err(ReviewError::Expired),
        other => Err(ReviewError::AlreadyDecided(other)),
    })
}

/// Moves `a` to its due status if its time is up.
pub fn expire_if_due(l: &mut dyn Ledger, a: &Approval, now_ms: i64) -> Result<Option<Status>, StoreError> {
    let Some(next) = due_transition(a.status, a.expires_ms, a.usable_until_ms, a.redeem_count, now_ms) else {
        return Ok(None);
    };
    Ok(expire_to(l, a, next, now_ms)?.then_some(next))
}

/// Moves `a` to `next` if it is still as read (status, redeem count), with an audit
/// record; cards still asking for a decision must say it expired.
pub fn expire_to(l: &mut dyn Ledger, a: &Approval, next: Status, now_ms: i64) -> Result<bool, StoreError> {
    let change = StatusChange {
        id: &a.id,
        from: a.status,
        redeem_count: a.redeem_count,
        to: next,
        decided_ms: now_ms,
        usable_until_ms: None,
    };
    if !l.change_status(&change)? {
        return Ok(false);
    }
    l.append(
        "approval.expired",
        &json!({"approval_id": a.id, "agent": a.agent, "digest": a.digest, "from": a.status.as_str(),
                "to": next.as_str(), "redeem_count": a.redeem_count}),
    )?;
    if a.status == Status::Pending {
        l.enqueue(&a.id, "updated", now_ms)?;
    }
    Ok(true)
}

/// Applies `expiries` read earlier; returns the ids that moved.
pub fn expire(l: &mut dyn Ledger, expiries: Vec<Expiry>, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let mut done = Vec::new();
    for Expiry { approval, to } in expiries {
        if expire_to(l, &approval, to, now_ms)? {
            done.push(approval.id);
        }
    }
    Ok(done)
}

/// Expires every approval whose time is up, read and moved in one transaction.
pub fn expire_due(l: &mut dyn Ledger, now_ms: i64) -> Result<Vec<String>, StoreError> {
    let mut done = Vec::new();
    for a in l.past_deadline(now_ms)? {
        let Some(current) = l.load(&a.id)? else { continue };
        if expire_if_due(l, &current, now_ms)?.is_some() {
            done.push(current.id);
        }
    }
    Ok(done)
}

fn insert(l: &mut dyn Ledger, new: &NewApproval, now_ms: i64) -> Result<(), StoreError> {
    let parties = lifecycle::Parties {
        agent: new.agent.id.clone(),
        owner: new.agent.owner.clone(),
        acts_for: new.agent.acts_for.clone(),
    };
    let parties: Vec<String> = forbidden_identities(&parties).into_iter().collect();
    l.insert_approval(new, &parties, now_ms)?;
    let mut event = new.create.clone();
    if let Some(obj) = event.as_object_mut() {
        obj.insert("approval_id".into(), json!(new.id));
        obj.insert("expires_at".into(), json!(crate::time::rfc3339(new.expires_at_ms)));
    }
    l.append("approval.created", &event)?;
    l.enqueue(&new.id, "requested", now_ms)
}

/// Whether a create-or-find may create: a find (`docs/protocol.md`, "Finding an existing
/// approval") answers exactly what create-or-find would, except that where it would
/// create it answers [`CreateOutcome::Absent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    CreateOrFind,
    FindOnly,
}

/// Creates an approval, or finds the live one for (agent, digest) / the asked id, or the
/// recent denial that answers this retry.
pub fn create_or_find(
    l: &mut dyn Ledger,
    new: &NewApproval,
    asked_id: Option<&str>,
    limits: CreateLimits,
    now_ms: i64,
) -> Result<CreateOutcome, StoreError> {
    create_or_find_as(l, new, asked_id, limits, now_ms, Mode::CreateOrFind)
}

/// [`create_or_find`], or with [`Mode::FindOnly`] the same lookups without the create.
pub fn create_or_find_as(
    l: &mut dyn Ledger,
    new: &NewApproval,
    asked_id: Option<&str>,
    limits: CreateLimits,
    now_ms: i64,
    mode: Mode,
) -> Result<CreateOutcome, StoreError> {
    if let Some(id) = asked_id {
        return match l.load(id)? {
            Some(a) if a.agent == new.agent.id && a.digest == new.digest => {
                if expire_if_due(l, &a, now_ms)?.is_some() {
                    return Ok(CreateOutcome::Found(reload(l, id)?));
                }
                Ok(CreateOutcome::Found(a))
            }
            _ => Ok(CreateOutcome::Mismatch),
        };
    }
    l.lock_agent(&new.agent.id)?;
    for id in l.live_ids(&new.agent.id, &new.digest)? {
        let Some(a) = l.load(&id)? else { continue };
        if expire_if_due(l, &a, now_ms)?.is_some() {
            continue;
        }
        return Ok(CreateOutcome::Found(a));
    }
    if let Some(denied) = recent_denial(l, new, limits.denied_retry_window_ms, now_ms)? {
        return Ok(CreateOutcome::RecentlyDenied(denied));
    }
    if mode == Mode::FindOnly {
        return Ok(CreateOutcome::Absent);
    }
    // Counted under the agent's lock, so concurrent creates cannot overshoot.
    if l.pending_of(&new.agent.id)? >= i64::from(limits.pending) {
        return Ok(CreateOutcome::TooManyPending { limit: limits.pending });
    }
    insert(l, new, now_ms)?;
    Ok(CreateOutcome::Created(reload(l, &new.id)?))
}

/// The approval of this (agent, digest) denied or cancelled within the last `window_ms`,
/// if any, with the retry counted on it. A human's "no" stands for the window: the
/// agent is told so on every identical retry, and reviewers are not asked again. (An
/// expired or redeemed approval does not answer a retry: expiry is not a "no", and a
/// used approval was a "yes" for one use.)
fn recent_denial(
    l: &mut dyn Ledger,
    new: &NewApproval,
    window_ms: i64,
    now_ms: i64,
) -> Result<Option<Approval>, StoreError> {
    if window_ms <= 0 {
        return Ok(None);
    }
    let Some(id) = l.denied_since(&new.agent.id, &new.digest, now_ms.saturating_sub(window_ms))? else {
        return Ok(None);
    };
    let retries = l.count_refused_retry(&id)?;
    let a = reload(l, &id)?;
    // Bounded evidence: the 1st, 2nd, 4th, 8th, ... retry.
    if retries > 0 && retries & (retries - 1) == 0 {
        l.append(
            "approval.retry_refused",
            &json!({"approval_id": a.id, "agent": a.agent, "digest": a.digest, "status": a.status.as_str(),
                    "decision_id": new.create.get("decision_id"), "retries": retries}),
        )?;
    }
    Ok(Some(a))
}

/// Records a review and decides the approval when the quorum rules say so. A refusal
/// is an answer (`Ok(Err(..))`), so whatever the transaction did before it (an expiry
/// found on the way) still commits.
pub fn review(
    l: &mut dyn Ledger,
    id: &str,
    reviewer: &Reviewer,
    vote: Vote,
    note: &ReviewNote,
    now_ms: i64,
) -> Result<Result<Approval, ReviewError>, StoreError> {
    let ReviewNote { comment, channel, evidence } = note;
    let a = match load_pending(l, id, now_ms)? {
        Ok(a) => a,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let reviewer_id = lifecycle::normalize_identity(&reviewer.id);
    if a.reviews.iter().any(|r| r.reviewer == reviewer_id) {
        return Ok(Err(ReviewError::DuplicateVote));
    }
    let identities = reviewer.identities();
    // Quorum counts distinct *humans*: a reviewer sharing any identity (id or alias)
    // with an earlier review of this approval is the same person under another name
    // (an API key and an OIDC login, say).
    for identity in &identities {
        if l.reviewed_by(id, identity)? {
            return Ok(Err(ReviewError::DuplicateVote));
        }
    }
    // Separation of duties: refused here, and by the store's constraints whatever happens.
    for identity in &identities {
        if l.is_party(id, identity)? {
            return Ok(Err(ReviewError::SeparationOfDuties));
        }
    }
    let row = ReviewRow {
        approval_id: id,
        reviewer: &reviewer_id,
        identities: &identities,
        vote,
        comment: comment.as_deref(),
        channel,
        time_ms: now_ms,
    };
    match l.insert_review(&row)? {
        Ok(()) => {}
        Err(RowRefusal::SeparationOfDuties) => return Ok(Err(ReviewError::SeparationOfDuties)),
        Err(RowRefusal::Duplicate) => return Ok(Err(ReviewError::DuplicateVote)),
        Err(RowRefusal::NotPending) => {
            let now = reload(l, id)?.status;
            return Ok(Err(ReviewError::AlreadyDecided(now)));
        }
    }
    l.append(
        "review",
        &json!({"approval_id": id, "reviewer": reviewer_id, "aliases": reviewer.aliases, "groups": reviewer.groups,
                "vote": vote.as_str(), "comment": comment, "channel": channel, "evidence": evidence,
                "agent": a.agent, "digest": a.digest}),
    )?;
    let reviews = reload(l, id)?.reviews;
    let decided = match lifecycle::tally(reviews.iter().map(|r| (r.reviewer.as_str(), r.vote)), a.quorum) {
        Tally::Open => None,
        Tally::Approved => Some(Status::Approved),
        Tally::Denied => Some(Status::Denied),
    };
    if let Some(next) = decided {
        let reuse = Reuse::parse(Some(&a.reuse)).unwrap_or(Reuse::Once);
        let usable = (next == Status::Approved).then(|| lifecycle::usable_until(reuse, now_ms, a.expires_ms));
        let change = StatusChange {
            id,
            from: Status::Pending,
            redeem_count: a.redeem_count,
            to: next,
            decided_ms: now_ms,
            usable_until_ms: usable,
        };
        if !l.change_status(&change)? {
            return Ok(Err(ReviewError::AlreadyDecided(next)));
        }
        let approvers: Vec<&str> =
            reviews.iter().filter(|r| r.vote == Vote::Approve).map(|r| r.reviewer.as_str()).collect();
        let kind = if next == Status::Approved { "approval.approved" } else { "approval.denied" };
        l.append(
            kind,
            &json!({"approval_id": id, "agent": a.agent, "digest": a.digest, "approvers": approvers,
                    "decided_by": reviewer_id, "quorum": a.quorum,
                    "usable_until": usable.map(crate::time::rfc3339)}),
        )?;
    }
    l.enqueue(id, "updated", now_ms)?;
    Ok(Ok(reload(l, id)?))
}

/// Consumes an approved approval for one use, remembering the request's signature with
/// the consumption it guards.
pub fn redeem(
    l: &mut dyn Ledger,
    req: &RedeemRequest,
    now_ms: i64,
) -> Result<Result<Approval, RedeemRefusal>, StoreError> {
    if l.redeem_seen(&req.signature, now_ms - crate::store::REPLAY_HORIZON_MS)? {
        return Ok(Err(RedeemRefusal::Consumed));
    }
    let Some(a) = l.load(&req.approval_id)? else {
        return Ok(Err(RedeemRefusal::Mismatch));
    };
    if a.agent != req.agent || a.digest != req.digest {
        return Ok(Err(RedeemRefusal::Mismatch));
    }
    let status = expire_if_due(l, &a, now_ms)?.unwrap_or(a.status);
    if let Some(refusal) = RedeemRefusal::of_status(status) {
        return Ok(Err(refusal));
    }
    let once = Reuse::parse(Some(&a.reuse)).unwrap_or(Reuse::Once) == Reuse::Once;
    if !l.count_redeem(&a.id, once, now_ms)? {
        return Ok(Err(RedeemRefusal::Consumed));
    }
    l.remember_redeem(&req.signature, now_ms, now_ms - crate::store::REPLAY_HORIZON_MS)?;
    l.append(
        "approval.redeemed",
        &json!({"approval_id": a.id, "decision_id": req.decision_id, "agent": a.agent, "digest": a.digest,
                "redeem": a.redeem_count + 1, "reuse": a.reuse, "approvers": a.approvers()}),
    )?;
    if let Some(profile) = &req.mint.profile {
        l.append(
            "credential.minted",
            &json!({"approval_id": a.id, "decision_id": req.decision_id, "agent": a.agent, "digest": a.digest,
                    "profile": profile, "details": req.mint.details}),
        )?;
    }
    Ok(Ok(reload(l, &a.id)?))
}

/// Appends gateway decision records once per batch signature.
pub fn append_decisions(
    l: &mut dyn Ledger,
    batch: &str,
    records: &[Value],
    dropped: u64,
    now_ms: i64,
) -> Result<Option<usize>, StoreError> {
    if !l.remember_batch(batch, now_ms, now_ms - crate::store::REPLAY_HORIZON_MS)? {
        return Ok(None);
    }
    for record in records {
        l.append("decision", record)?;
    }
    if dropped > 0 {
        l.append("decision.dropped", &json!({"dropped": dropped}))?;
    }
    Ok(Some(records.len()))
}

/// Cancels a pending approval on behalf of `by` (already found allowed to): compare-
/// and-swap to cancelled, its audit record (who and why) and an update for the cards still
/// asking for a decision. A decision, expiry or other cancel that got there first wins:
/// the answer then says what it became.
pub fn cancel(
    l: &mut dyn Ledger,
    id: &str,
    by: &Reviewer,
    reason: &str,
    now_ms: i64,
) -> Result<Result<Approval, ReviewError>, StoreError> {
    let a = match load_pending(l, id, now_ms)? {
        Ok(a) => a,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let change = StatusChange {
        id,
        from: Status::Pending,
        redeem_count: a.redeem_count,
        to: Status::Cancelled,
        decided_ms: now_ms,
        usable_until_ms: None,
    };
    if !l.change_status(&change)? {
        return Ok(Err(ReviewError::AlreadyDecided(reload(l, id)?.status)));
    }
    l.append(
        "approval.cancelled",
        &json!({"approval_id": a.id, "agent": a.agent, "digest": a.digest, "by": lifecycle::normalize_identity(&by.id),
                "reason": reason}),
    )?;
    l.enqueue(&a.id, "updated", now_ms)?;
    Ok(Ok(reload(l, id)?))
}
