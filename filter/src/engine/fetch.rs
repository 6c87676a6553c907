//! The root's step: JWKS and OIDC-discovery fetches (dispatch, response, follow-up) and the
//! paused requests they wake. See the module docs of [`super`] for why the root does the I/O.

use std::time::Duration;

use log::{info, warn};

use super::auth::Subject;
use super::host::Host;
use super::metrics::Metrics;
use super::request::{self, Finish};
use super::state::{CALLBACK_SLACK_MS, FetchKind, Pending, State, Waiter, duration_ms};
use super::{Engine, FAST_TICK, TICK};
use crate::config::KeySource;
use crate::jwks::{self, JwksUri};
use crate::output::Denial;

impl Engine {
    /// The root's one step: poll every fetched source (adopt peers' keys, dispatch a due fetch
    /// when this VM wins the lease), then decide the waiters whose keys changed or whose
    /// deadline passed, export the counters, and set the tick period.
    pub fn pump<H: Host>(&self, host: &H, root_context_id: u32) {
        let Some(now) = host.now_ms() else { return };
        let due = match self.state.try_borrow_mut() {
            Ok(mut state) => state.due_fetches(host, now),
            Err(_) => return,
        };
        for rule in due {
            self.start_fetch(host, rule, now);
        }
        let ready = match self.state.try_borrow_mut() {
            Ok(mut state) => state.take_ready(now),
            Err(_) => return,
        };
        for waiter in ready {
            self.resume(host, waiter, now, root_context_id);
        }
        if let Ok(mut state) = self.state.try_borrow_mut() {
            state.flush_counters(host);
        }
        let waiting = self.state.try_borrow().is_ok_and(|s| s.has_waiters());
        // Always a tick: it also exports the counters kept in the VM (cache, allowed, no_token).
        self.set_tick(host, if waiting { FAST_TICK } else { TICK });
    }

    /// Decides a paused request again, on its behalf.
    fn resume<H: Host>(&self, host: &H, waiter: Waiter, now: u64, root_context_id: u32) {
        if host.set_effective_context(waiter.context_id).is_err() {
            // The request is gone.
            return;
        }
        let timed_out = self
            .state
            .try_borrow()
            .map_or(true, |s| s.timed_out(&waiter, now));
        let finish = if timed_out {
            request::deny(
                host,
                &waiter.config,
                Some(&self.state),
                &Denial::JwksUnavailable,
                &waiter_subject(&waiter),
            )
        } else {
            request::decide(
                host,
                &self.state,
                &waiter.config,
                waiter.context_id,
                waiter.found,
                waiter.progress,
                now,
            )
        };
        if finish == Finish::Continue
            && let Err(status) = host.resume_request()
        {
            warn!(
                "meshguard: could not resume request {}: {status}",
                waiter.context_id
            );
        }
        let _ = host.set_effective_context(root_context_id);
    }

    /// Dispatches the fetch of `rule`'s keys (or its OIDC discovery document first).
    fn start_fetch<H: Host>(&self, host: &H, rule: usize, now: u64) {
        let Some(compiled) = self.config.rules.get(rule) else {
            return;
        };
        let (source, kind, uri) = match &compiled.keys {
            KeySource::Inline(_) => return,
            KeySource::Remote(source) => (source, FetchKind::Jwks, source.uri.clone()),
            KeySource::Discovery(source) => {
                let discovered = self
                    .state
                    .try_borrow()
                    .ok()
                    .and_then(|s| s.discovered.get(rule).cloned().flatten());
                match discovered {
                    Some(jwks_uri) => (source, FetchKind::Jwks, jwks_uri),
                    None => (source, FetchKind::Discovery, source.uri.clone()),
                }
            }
        };
        self.dispatch(
            host,
            rule,
            &source.cluster,
            &uri,
            kind,
            compiled.timeout,
            now,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch<H: Host>(
        &self,
        host: &H,
        rule: usize,
        cluster: &str,
        uri: &JwksUri,
        kind: FetchKind,
        timeout: Duration,
        now: u64,
    ) {
        let headers = [
            (":method", "GET"),
            (":authority", uri.authority.as_str()),
            (":path", uri.path.as_str()),
            (":scheme", uri.scheme.as_str()),
            ("accept", "application/json"),
            ("user-agent", "meshguard"),
        ];
        let result = host.http_call(cluster, &headers, timeout);
        let Ok(mut state) = self.state.try_borrow_mut() else {
            return;
        };
        match result {
            Ok(token) => state.fetch_dispatched(Pending {
                token,
                rule,
                kind,
                expires_ms: now
                    .saturating_add(duration_ms(timeout))
                    .saturating_add(CALLBACK_SLACK_MS),
            }),
            Err(status) => {
                warn!(
                    "meshguard: JWKS fetch for jwtRules[{rule}] not dispatched to cluster {cluster:?}: {status}"
                );
                state.fetch_failed(host, rule, now);
            }
        }
    }

    /// An HTTP call of the root answered. Waiters are decided from the wake-up queue rather
    /// than here, so that a resumed request never runs inside the callback of the fetch.
    pub fn on_http_call_response<H: Host>(
        &self,
        host: &H,
        root_context_id: u32,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        self.on_fetch_response(host, token, num_headers, body_size);
        let queue = self.state.try_borrow().ok().and_then(|s| s.wake_queue);
        match queue {
            Some(queue) if host.enqueue(queue, b"f").is_ok() => {}
            _ => self.pump(host, root_context_id),
        }
    }

    /// A fetch of ours answered (or failed: Envoy answers a reset/timeout with no headers).
    fn on_fetch_response<H: Host>(
        &self,
        host: &H,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let Some(now) = host.now_ms() else { return };
        let Some(pending) = self
            .state
            .try_borrow_mut()
            .ok()
            .and_then(|mut s| s.take_pending(token))
        else {
            return;
        };
        // A reset call arrives with no headers, and then Envoy has no response header map at
        // all (reading one answers BAD_ARGUMENT): with no headers, read none.
        let has_headers = num_headers > 0;
        let text_header = |name: &str| {
            has_headers
                .then(|| host.http_response_header(name))
                .flatten()
                .and_then(|v| String::from_utf8(v).ok())
        };
        let status = text_header(":status").and_then(|s| s.parse::<u32>().ok());
        let body = if status == Some(200) && body_size <= jwks::MAX_BODY_BYTES {
            host.http_response_body(body_size)
        } else {
            None
        };
        let result = jwks::parse_response(status, body.as_deref(), body_size);
        let max_age = text_header("cache-control").and_then(|v| jwks::max_age_secs(&v));
        let follow_up = match self.state.try_borrow_mut() {
            Ok(mut state) => apply_fetch_result(
                host,
                &mut state,
                pending.rule,
                pending.kind,
                result,
                max_age,
                now,
            ),
            Err(_) => return,
        };
        // Discovery found the jwks_uri: this VM still holds the lease, fetch the keys now.
        if let Some((cluster, uri, timeout)) = follow_up {
            self.dispatch(
                host,
                pending.rule,
                &cluster,
                &uri,
                FetchKind::Jwks,
                timeout,
                now,
            );
        }
    }
}

/// Who a paused request is about, for the log line when it is answered without a decision
/// (deadline, configuration replaced): its rule's issuer, and the `kid` and `sub` of the token
/// that claims that issuer.
pub(super) fn waiter_subject(waiter: &Waiter) -> Subject {
    let limits = &waiter.config.token_limits;
    let issuer = waiter
        .config
        .rules
        .get(waiter.rule)
        .map(|r| r.issuer.clone());
    let claimed = waiter
        .found
        .iter()
        .map(|f| Subject::claimed(&f.token, limits, Some(waiter.rule)))
        .find(|s| s.issuer.is_some() && s.issuer == issuer)
        .unwrap_or_default();
    Subject {
        rule: Some(waiter.rule),
        issuer,
        ..claimed
    }
}

/// Feeds a fetch outcome to the rule's state machine and counters. Returns the JWKS fetch to
/// dispatch next when a discovery document named its `jwks_uri`.
fn apply_fetch_result<H: Host>(
    host: &H,
    state: &mut State,
    rule: usize,
    kind: FetchKind,
    result: Result<&[u8], jwks::FetchError>,
    max_age: Option<u64>,
    now: u64,
) -> Option<(String, JwksUri, Duration)> {
    let me = state.me;
    let compiled = state.config.rules.get(rule)?;
    let issuer = compiled.label();
    let timeout = compiled.timeout;
    // A SPIFFE bundle's `spiffe_refresh_hint` sets its refetch interval (over any
    // Cache-Control), clamped as a max-age is.
    let max_age = match (&kind, &result, &compiled.spiffe_trust_domain) {
        (FetchKind::Jwks, Ok(body), Some(_)) => crate::jose::SpiffeBundle::parse(body)
            .ok()
            .and_then(|bundle| bundle.refresh_hint_secs)
            .map(|hint| {
                hint.clamp(
                    crate::config::SPIFFE_REFRESH_HINT_MIN_SECS,
                    crate::config::SPIFFE_REFRESH_HINT_MAX_SECS,
                )
            })
            .or(max_age),
        _ => max_age,
    };
    let cluster = match &compiled.keys {
        KeySource::Remote(source) | KeySource::Discovery(source) => source.cluster.clone(),
        KeySource::Inline(_) => return None,
    };
    match (kind, result) {
        (FetchKind::Jwks, Ok(body)) => {
            let keys = state.keys.get_mut(rule)?;
            match keys.fetch_succeeded(now, body, max_age, &mut super::HostStore(host), me) {
                Ok(()) => {
                    Metrics::bump_rule(host, &state.metrics.fetch_ok, Some(rule));
                    info!(
                        "meshguard: JWKS for issuer {issuer} fetched ({} bytes)",
                        body.len()
                    );
                }
                Err(why) => {
                    // fetch_succeeded already recorded the failure (backoff).
                    Metrics::bump_rule(host, &state.metrics.fetch_failed, Some(rule));
                    warn!("meshguard: JWKS for issuer {issuer} refused: {why}");
                }
            }
            None
        }
        (FetchKind::Discovery, Ok(body)) => {
            let found = jwks::parse_discovery(body, &issuer).and_then(|uri| {
                JwksUri::parse(&uri).map_err(|e| jwks::FetchError::BadBody(e.to_string()))
            });
            match found {
                Ok(uri) => {
                    if let Some(slot) = state.discovered.get_mut(rule) {
                        *slot = Some(uri.clone());
                    }
                    Some((cluster, uri, timeout))
                }
                Err(e) => {
                    warn!("meshguard: JWKS fetch for issuer {issuer} failed: OIDC discovery: {e}");
                    state.fetch_failed(host, rule, now);
                    None
                }
            }
        }
        (_, Err(e)) => {
            warn!("meshguard: JWKS fetch for issuer {issuer} failed: {e}");
            state.fetch_failed(host, rule, now);
            None
        }
    }
}
