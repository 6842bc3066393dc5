//! Events from outside the request: callout answers and failures, ticks, and time
//! passing (which fires due ticks and callout timeouts in order).

use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};

use super::Host;
use crate::host::abi::Status;
use crate::host::callout::{CallResponse, Callout, CalloutFailure};

impl Host {
    /// Callouts dispatched and not yet answered, oldest first.
    pub fn pending_callouts(&self) -> Vec<Callout> {
        self.store.data().pending_callouts.values().cloned().collect()
    }

    /// Every callout ever dispatched, answered or not.
    pub fn callouts(&self) -> Vec<Callout> {
        self.store.data().all_callouts.clone()
    }

    /// Answers callout `token` with a response (`:status` is added first) and runs
    /// `proxy_on_http_call_response` on the root context, as Envoy does.
    pub fn respond_callout(
        &mut self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<()> {
        let response = CallResponse::new(status, headers, body.as_ref());
        self.deliver_callout(token, Some(response))
    }

    /// Fails callout `token` the way a reset stream fails (0 headers, 0 body bytes, no
    /// response map: reading a response header then gets `BadArgument`).
    pub fn fail_callout(&mut self, token: u32) -> Result<()> {
        self.fail_callout_with(token, CalloutFailure::Reset)
    }

    /// Fails callout `token` as Envoy reports `failure`.
    pub fn fail_callout_with(&mut self, token: u32, failure: CalloutFailure) -> Result<()> {
        self.deliver_callout(token, CallResponse::for_failure(failure))
    }

    fn deliver_callout(&mut self, token: u32, response: Option<CallResponse>) -> Result<()> {
        let state = self.store.data_mut();
        if state.pending_callouts.remove(&token).is_none() {
            let pending: Vec<u32> = state.pending_callouts.keys().copied().collect();
            bail!("no pending callout with token {token} (pending: {pending:?})");
        }
        state.callout_deadlines.remove(&token);
        if let Some(failure) = &self.failure {
            bail!("the VM has failed ({failure}); Envoy no longer delivers callout responses");
        }
        let (headers, body, trailers) = match &response {
            Some(r) => (r.headers.len(), r.body.len(), r.trailers.len()),
            None => (0, 0, 0),
        };
        {
            let state = self.store.data_mut();
            state.status = match &response {
                Some(_) => (Status::Ok as u32, String::new()),
                None => (Status::BrokenConnection as u32, "reset".into()),
            };
            state.call_response = response;
        }
        let root = self.root_id as i32;
        let result = match self.exports.http_call_response.clone() {
            Some(f) => self.call("proxy_on_http_call_response", self.root_id, |s| {
                f.call(s, (root, token as i32, headers as i32, body as i32, trailers as i32))
            }),
            None => Ok(()),
        };
        {
            let state = self.store.data_mut();
            state.call_response = None;
            state.status.1.clear();
        }
        result?;
        self.pump()?;
        Ok(())
    }

    /// Runs `proxy_on_tick` on the root context now, whatever the period.
    pub fn tick(&mut self) -> Result<()> {
        if let Some(f) = self.exports.tick.clone() {
            let root = self.root_id;
            self.call("proxy_on_tick", root, |s| f.call(s, root as i32))?;
            self.pump()?;
        }
        Ok(())
    }

    /// The period the filter asked for with `set_tick_period`, if any.
    pub fn tick_period(&self) -> Option<Duration> {
        self.store.data().tick_period
    }

    pub fn now(&self) -> SystemTime {
        self.store.data().clock.now()
    }

    /// Jumps the wall clock (skew); no timers fire.
    pub fn set_time(&mut self, time: SystemTime) {
        self.store.data_mut().clock.set_wall(time);
    }

    /// Moves time forward as Envoy would live through it: every tick that falls due
    /// runs `on_tick`, and every callout whose timeout expires is answered with Envoy's
    /// 504 `upstream request timeout`, in time order.
    pub fn advance_time(&mut self, by: Duration) -> Result<()> {
        let target =
            self.store.data().clock.monotonic_nanos().saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        let mut first_error = None;
        loop {
            let (tick_due, callout_due) = {
                let s = self.store.data();
                let tick = s.next_tick.filter(|t| *t <= target);
                let callout = s
                    .callout_deadlines
                    .iter()
                    .filter(|(_, due)| **due <= target)
                    .min_by_key(|(_, due)| **due)
                    .map(|(token, due)| (*token, *due));
                (tick, callout)
            };
            let next = match (tick_due, callout_due) {
                (None, None) => break,
                (Some(t), Some((_, c))) => t.min(c),
                (Some(t), None) => t,
                (None, Some((_, c))) => c,
            };
            self.move_monotonic_to(next);
            if self.failure.is_some() {
                // A failed VM gets no more events; just let time pass.
                let s = self.store.data_mut();
                s.next_tick = None;
                s.callout_deadlines.clear();
                continue;
            }
            let outcome = if tick_due == Some(next) {
                let s = self.store.data_mut();
                let period = s.tick_period.map(|p| u64::try_from(p.as_nanos()).unwrap_or(u64::MAX)).unwrap_or(0);
                s.next_tick = (period > 0).then(|| next.saturating_add(period));
                self.tick()
            } else if let Some((token, _)) = callout_due {
                self.fail_callout_with(token, CalloutFailure::Timeout)
            } else {
                Ok(())
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        self.move_monotonic_to(target);
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn move_monotonic_to(&mut self, target: u64) {
        let clock = &mut self.store.data_mut().clock;
        let now = clock.monotonic_nanos();
        if target > now {
            clock.advance(Duration::from_nanos(target - now));
        }
    }
}
