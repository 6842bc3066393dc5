//! Sign-in, its callback and sign-out. The `state` of a sign-in is both remembered by
//! the service and held in a cookie of the browser that started it, so a callback from
//! another browser (login CSRF) or a replayed one finds nothing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::pages::{render, MessagePage};
use super::session::{random_token, PendingLogin, LOGIN_TTL};
use super::signin::{pkce_pair, SignInError};
use super::web::{
    clear_cookie, cookie, form, refuse_post, safe_next, see_other, session, set_cookie, LOGIN_COOKIE, SESSION_COOKIE,
};
use super::Console;

fn failed(status: StatusCode, text: &str) -> Response {
    render(status, &MessagePage::anonymous("Sign-in failed", text, Some(("/console/login", "Try again"))))
}

/// `GET /console/login?next=…&step_up=1`: off to the IdP.
pub async fn start(State(console): State<Arc<Console>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    let step_up = q.get("step_up").is_some_and(|v| v == "1");
    let (Ok(verifier), Ok(nonce)) = (random_token(), random_token()) else {
        return failed(StatusCode::SERVICE_UNAVAILABLE, "The service has no randomness to start a sign-in with.");
    };
    let (verifier, challenge) = pkce_pair(verifier);
    let login = PendingLogin::new(verifier, nonce.clone(), next, step_up);
    let state = match console.sessions.begin_login(login) {
        Ok(s) => s,
        Err(e) => return failed(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let max_age = if step_up { console.config.step_up_max_age } else { console.config.session_ttl };
    match console.signin.authorize_url(&state, &nonce, &challenge, max_age, step_up).await {
        Ok(url) => {
            let cookie = set_cookie(LOGIN_COOKIE, &state, "/console/callback", LOGIN_TTL.as_secs());
            (StatusCode::SEE_OTHER, [(header::LOCATION, url), (header::SET_COOKIE, cookie)]).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "console: starting a sign-in failed");
            failed(StatusCode::SERVICE_UNAVAILABLE, "The identity provider could not be reached.")
        }
    }
}

/// `GET /console/callback?code=…&state=…`: back from the IdP.
pub async fn callback(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state = q.get("state").map(String::as_str).unwrap_or_default();
    let held = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if state.is_empty() || !bool::from(state.as_bytes().ct_eq(held.as_bytes())) {
        return failed(StatusCode::BAD_REQUEST, "This sign-in was not started in this browser.");
    }
    let Some(login) = console.sessions.finish_login(state) else {
        return failed(StatusCode::BAD_REQUEST, "This sign-in has expired or was already used.");
    };
    if let Some(error) = q.get("error") {
        tracing::warn!(error, "console: the identity provider refused a sign-in");
        return failed(StatusCode::FORBIDDEN, &format!("The identity provider answered: {error}."));
    }
    // RFC 9207: when the IdP names itself, it must be ours (mix-up defence).
    if q.get("iss").is_some_and(|iss| !console.signin.is_issuer(iss)) {
        return failed(StatusCode::BAD_REQUEST, "The answer came from another identity provider.");
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return failed(StatusCode::BAD_REQUEST, "The identity provider sent no authorization code.");
    };
    let fresh_within = login.step_up.then_some(console.config.step_up_max_age);
    let signed_in = match console.signin.finish(code, &login.verifier, &login.nonce, fresh_within).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "console: sign-in refused");
            let status = match e {
                SignInError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                SignInError::Refused(_) | SignInError::Invalid(_) => StatusCode::FORBIDDEN,
            };
            return failed(status, &e.to_string());
        }
    };
    let previous = cookie(&headers, SESSION_COOKIE);
    let token = match console.sessions.start(signed_in.reviewer, signed_in.auth_time, previous) {
        Ok(t) => t,
        Err(e) => return failed(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    tracing::info!(step_up = login.step_up, "console: reviewer signed in");
    let mut response = see_other(&login.next);
    let h = response.headers_mut();
    for c in [
        set_cookie(SESSION_COOKIE, &token, "/console", console.config.session_ttl.as_secs()),
        clear_cookie(LOGIN_COOKIE, "/console/callback"),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    response
}

/// `POST /console/logout` (`csrf`): ends the session.
pub async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some((token, session)) = session(&console, &headers) else {
        return see_other("/console/");
    };
    if let Some(why) = refuse_post(&console, &headers, &session, &form(&body)) {
        let mut page = MessagePage::anonymous("Form refused", why, Some(("/console/", "Back to the inbox")));
        page.who = session.reviewer.id.clone();
        page.csrf = session.csrf.clone();
        return render(StatusCode::FORBIDDEN, &page);
    }
    console.sessions.end(&token);
    let page =
        MessagePage::anonymous("Signed out", "You are signed out of the console.", Some(("/console/login", "Sign in")));
    let mut response = render(StatusCode::OK, &page);
    if let Ok(v) = header::HeaderValue::from_str(&clear_cookie(SESSION_COOKIE, "/console")) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
