//! Console sessions and sign-ins in progress, held in memory: a session is a random
//! 256-bit token in an HttpOnly cookie, looked up by its SHA-256 (the map never holds a
//! usable token). A restart signs everyone out, which is the safe direction. Both maps
//! are bounded: when full of live sessions a new one is refused (only the IdP can make
//! sessions); when full of sign-ins in progress, the oldest gives way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::lifecycle::Reviewer;

/// Most sessions at once.
const MAX_SESSIONS: usize = 10_000;
/// Most sign-ins in progress at once.
const MAX_LOGINS: usize = 1_000;
/// How long a sign-in may take at the IdP.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

/// A signed-in reviewer.
#[derive(Clone, Debug)]
pub struct Session {
    /// The reviewer, joined with their `[[reviewers]]` entry like an API bearer.
    pub reviewer: Reviewer,
    /// When the IdP last authenticated them (`auth_time`, Unix seconds); `None` when the
    /// ID token did not say, which no step-up accepts.
    pub auth_time: Option<i64>,
    /// The token every form of this session carries.
    pub csrf: String,
    expires: Instant,
}

/// A sign-in sent to the IdP and not back yet, keyed by its `state`.
#[derive(Clone, Debug)]
pub struct PendingLogin {
    /// PKCE code verifier.
    pub verifier: String,
    /// Expected `nonce` of the ID token.
    pub nonce: String,
    /// Where to go afterwards (a console path).
    pub next: String,
    /// Whether a fresh authentication was asked for (step-up).
    pub step_up: bool,
    started: Instant,
}

impl PendingLogin {
    /// A sign-in starting now.
    pub fn new(verifier: String, nonce: String, next: String, step_up: bool) -> PendingLogin {
        PendingLogin { verifier, nonce, next, step_up, started: Instant::now() }
    }
}

/// Why a session or sign-in could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The operating system gave no randomness.
    #[error("no randomness available: {0}")]
    Random(String),
    /// Too many live sessions or sign-ins.
    #[error("too many {0} in progress; try again later")]
    Full(&'static str),
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<[u8; 32], Session>,
    logins: HashMap<[u8; 32], PendingLogin>,
}

/// Every session and sign-in of this process.
pub struct Sessions {
    inner: Mutex<Inner>,
    ttl: Duration,
}

/// 32 random bytes, base64url without padding.
pub fn random_token() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| SessionError::Random(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Sessions lasting `ttl` from sign-in.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions { inner: Mutex::new(Inner::default()), ttl }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session; answers its cookie token. `replaces` (the browser's previous
    /// session token, if any) ends, so a sign-in never keeps a token planted before it.
    pub fn start(
        &self,
        reviewer: Reviewer,
        auth_time: Option<i64>,
        replaces: Option<&str>,
    ) -> Result<String, SessionError> {
        let token = random_token()?;
        let session = Session { reviewer, auth_time, csrf: random_token()?, expires: Instant::now() + self.ttl };
        let mut inner = self.lock();
        if let Some(old) = replaces {
            inner.sessions.remove(&key(old));
        }
        if inner.sessions.len() >= MAX_SESSIONS {
            let now = Instant::now();
            inner.sessions.retain(|_, s| s.expires > now);
            if inner.sessions.len() >= MAX_SESSIONS {
                return Err(SessionError::Full("sessions"));
            }
        }
        inner.sessions.insert(key(&token), session);
        Ok(token)
    }

    /// The live session of `token`.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut inner = self.lock();
        let k = key(token);
        match inner.sessions.get(&k) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                inner.sessions.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn end(&self, token: &str) {
        self.lock().sessions.remove(&key(token));
    }

    /// Remembers a sign-in under a fresh `state`; answers the state.
    pub fn begin_login(&self, login: PendingLogin) -> Result<String, SessionError> {
        let state = random_token()?;
        let mut inner = self.lock();
        if inner.logins.len() >= MAX_LOGINS {
            inner.logins.retain(|_, l| l.started.elapsed() < LOGIN_TTL);
            // Still full: the oldest sign-in gives way. Refusing instead would let anyone
            // who can load the sign-in URL a thousand times lock every reviewer out.
            if inner.logins.len() >= MAX_LOGINS {
                if let Some(oldest) = inner.logins.iter().min_by_key(|(_, l)| l.started).map(|(k, _)| *k) {
                    inner.logins.remove(&oldest);
                }
            }
        }
        inner.logins.insert(key(&state), login);
        Ok(state)
    }

    /// Takes the sign-in of `state` (once: a replayed callback finds nothing).
    pub fn finish_login(&self, state: &str) -> Option<PendingLogin> {
        self.lock().logins.remove(&key(state)).filter(|l| l.started.elapsed() < LOGIN_TTL)
    }
}

impl Session {
    /// Whether `presented` is this session's form token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Seconds since the IdP authenticated the reviewer, at `now_secs`.
    pub fn auth_age(&self, now_secs: i64) -> Option<i64> {
        self.auth_time.map(|t| now_secs.saturating_sub(t).max(0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bob() -> Reviewer {
        Reviewer { id: "bob@corp.example".into(), groups: vec![], aliases: vec![] }
    }

    #[test]
    fn a_session_is_found_by_its_token_only_and_ends() {
        let s = Sessions::new(Duration::from_secs(60));
        let t = s.start(bob(), Some(1), None).unwrap();
        let session = s.get(&t).unwrap();
        assert_eq!(session.reviewer.id, "bob@corp.example");
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches("") && !session.csrf_matches("x"));
        assert!(s.get("forged").is_none());
        let again = s.start(bob(), Some(2), Some(&t)).unwrap();
        assert!(s.get(&t).is_none(), "a new sign-in ends the session it replaces");
        s.end(&again);
        assert!(s.get(&again).is_none());
    }

    #[test]
    fn a_flood_of_sign_ins_evicts_the_oldest_not_the_newest() {
        let s = Sessions::new(Duration::from_secs(60));
        let pending = || PendingLogin::new("v".into(), "n".into(), "/console/".into(), false);
        let first = s.begin_login(pending()).unwrap();
        for _ in 0..MAX_LOGINS {
            s.begin_login(pending()).unwrap();
        }
        let last = s.begin_login(pending()).unwrap();
        assert!(s.finish_login(&first).is_none(), "the oldest gave way");
        assert!(s.finish_login(&last).is_some(), "a new sign-in always starts");
    }

    #[test]
    fn sessions_expire_and_logins_are_taken_once() {
        let s = Sessions::new(Duration::ZERO);
        let t = s.start(bob(), None, None).unwrap();
        assert!(s.get(&t).is_none(), "expired");
        let state = s.begin_login(PendingLogin::new("v".into(), "n".into(), "/console/".into(), false)).unwrap();
        assert_eq!(s.finish_login(&state).unwrap().nonce, "n");
        assert!(s.finish_login(&state).is_none(), "a replayed callback finds nothing");
    }
}
