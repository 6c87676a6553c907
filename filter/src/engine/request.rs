//! Deciding one request: used on `on_request_headers` and by the root when it resumes a paused
//! request (after `set_effective_context`), so both share one path. Authentication, the claim
//! headers, authorization with its dry-run/audit reporting, and the 401/403 answers.

use std::cell::RefCell;
use std::rc::Rc;

use log::{info, warn};

use super::attrs::HostRequest;
use super::auth::{Outcome, Progress, Subject, Verified, authenticate};
use super::host::Host;
use super::metrics::{Metrics, PolicyCounter};
use super::state::{State, VmKeys, Waiter, duration_ms};
use crate::binding::Bindings;
use crate::config::{CompiledConfig, DPOP_TOKEN_PREFIX};
use crate::extract::{self, Found, Source};
use crate::jose::{ProofKeys, VerifiedClaims};
use crate::output::{Challenge, Denial, Realm, claim_headers};
use crate::policy::{DenyReason, Verdict};

/// How a decision ended for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Let the request through (the headers are already rewritten).
    Continue,
    /// A local response was sent.
    Responded,
    /// The request is registered as a waiter and stays paused.
    Waiting,
}

fn set_header<H: Host>(host: &H, name: &str, value: &[u8]) {
    if let Err(status) = host.set_request_header(name, value) {
        warn!("meshguard: could not set request header {name}: {status}");
    }
}

fn remove_header<H: Host>(host: &H, name: &str) {
    if let Err(status) = host.remove_request_header(name) {
        warn!("meshguard: could not remove request header {name}: {status}");
    }
}

/// Anti-spoofing: removes every configured output header the client may have sent.
pub fn strip_output_headers<H: Host>(host: &H, config: &CompiledConfig) {
    for name in &config.strip_headers {
        remove_header(host, name);
    }
}

/// Reads the request's tokens (only the headers some rule reads). A CORS preflight has none
/// to verify when the configuration bypasses preflights (Istio's `jwt_authn` setting); only a
/// request with a token (or a custom token header) pays for that test.
///
/// A token header other than `Authorization` sent more than once is refused (401
/// `repeated_token_header`): the host hands over only the first value (proxy-wasm's
/// single-header read), so a second, forged copy would reach the upstream unverified, and
/// `jwt_authn` verifies (and refuses) every value. Only a request that carries such a header
/// pays for reading all headers; `Authorization` is joined by Envoy into one value.
pub fn find_tokens<H: Host>(
    host: &H,
    config: &CompiledConfig,
) -> Result<Vec<Found>, (Denial, Subject)> {
    let mut custom_header = false;
    let mut found = extract::extract(&config.locations, |name| {
        let value = host.request_header(name);
        if value.is_some() && is_custom_token_header(config, name) {
            custom_header = true;
        }
        value
    });
    if (custom_header || !found.is_empty())
        && config.bypass_cors_preflight
        && extract::is_cors_preflight(|name| host.request_header(name))
    {
        found.clear();
        return Ok(found);
    }
    if custom_header && let Some(name) = repeated_token_header(host, config) {
        // The log line names what the first (the only readable) value claims.
        let first = found.iter().find(|f| match f.source {
            Source::Header(i) => config
                .locations
                .headers
                .get(i)
                .is_some_and(|h| h.name == name),
            _ => false,
        });
        let subject = first.map_or_else(Subject::default, |f| {
            Subject::claimed(&f.token, &config.token_limits, None)
        });
        return Err((Denial::RepeatedTokenHeader(name.to_owned()), subject));
    }
    Ok(found)
}

/// A configured token header other than `Authorization`.
fn is_custom_token_header(config: &CompiledConfig, name: &str) -> bool {
    name != "authorization" && config.locations.headers.iter().any(|h| h.name == name)
}

/// The first custom token header that the request carries more than once.
fn repeated_token_header<'c, H: Host>(host: &H, config: &'c CompiledConfig) -> Option<&'c str> {
    let pairs = host.request_header_pairs();
    config
        .locations
        .headers
        .iter()
        .map(|h| h.name.as_str())
        .filter(|name| *name != "authorization")
        .find(|name| {
            pairs
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .nth(1)
                .is_some()
        })
}

/// Decides a request whose tokens are `found`. `now_ms` is host time.
pub fn decide<H: Host>(
    host: &H,
    vm: &RefCell<State>,
    config: &Rc<CompiledConfig>,
    context_id: u32,
    found: Vec<Found>,
    mut progress: Progress,
    now_ms: u64,
) -> Finish {
    let outcome = {
        let Ok(mut state) = vm.try_borrow_mut() else {
            return deny(
                host,
                config,
                None,
                &Denial::JwksUnavailable,
                &Subject::default(),
            );
        };
        let state = &mut *state;
        let mut keys = VmKeys {
            keys: &mut state.keys,
            host,
            now_ms,
        };
        authenticate(
            config,
            &found,
            &mut keys,
            &mut state.cache,
            now_ms / 1000,
            &mut progress,
        )
    };
    match outcome {
        Outcome::Authenticated(verified) => {
            // RFC 8705 §3 and RFC 9449: on every request, cache hits included (the connection
            // and the proof differ).
            let mut state = vm.try_borrow_mut().ok();
            let writer = state.as_ref().map_or(0, |state| state.me);
            let mut no_keys = ProofKeys::default();
            let keys = state
                .as_deref_mut()
                .map_or(&mut no_keys, |state| &mut state.proof_keys);
            let checked =
                super::binding::check(host, config, &found, &verified, now_ms / 1000, writer, keys);
            drop(state);
            let binding = match checked {
                Ok(binding) => binding,
                Err((denial, subject)) => {
                    return deny(host, config, Some(vm), &denial, &subject);
                }
            };
            accept(host, vm, config, &found, &verified);
            authorize(
                host,
                vm,
                config,
                verified.first().map(|v| &*v.claims),
                binding,
            )
        }
        Outcome::Denied(denial, subject) => deny(host, config, Some(vm), &denial, &subject),
        Outcome::Wait { rule } => {
            let timeout = config.rules.get(rule).map_or(0, |r| duration_ms(r.timeout));
            let queue = {
                let Ok(mut state) = vm.try_borrow_mut() else {
                    return deny(
                        host,
                        config,
                        None,
                        &Denial::JwksUnavailable,
                        &Subject::default(),
                    );
                };
                let generation = state.keys.get(rule).map_or(0, |k| k.generation());
                state.register_waiter(Waiter {
                    context_id,
                    config: Rc::clone(config),
                    found,
                    progress,
                    rule,
                    generation,
                    deadline_ms: now_ms.saturating_add(timeout),
                });
                state.wake_queue
            };
            // Get the root to fetch now rather than at its next tick.
            if let Some(queue) = queue {
                let _ = host.enqueue(queue, b"w");
            }
            Finish::Waiting
        }
    }
}

/// Success: remove the tokens (unless forwarded), write the claim headers, count.
fn accept<H: Host>(
    host: &H,
    vm: &RefCell<State>,
    config: &CompiledConfig,
    found: &[Found],
    verified: &[Verified],
) {
    // Counted in the VM, exported on the tick (no host call per anonymous request).
    if verified.is_empty()
        && let Ok(mut state) = vm.try_borrow_mut()
    {
        state.metrics.count_no_token();
    }
    let mut written: Vec<&str> = Vec::new();
    for v in verified {
        let Some(rule) = config.rules.get(v.rule) else {
            continue;
        };
        if !rule.forward_original_token
            && let Some(candidate) = found.get(v.found)
        {
            remove_token(host, config, candidate.source);
            // The proof goes with its token: it is of no use upstream without it.
            if config.presents_dpop(candidate.source) {
                remove_header(host, "dpop");
            }
        }
        // The first token is the principal: its claim headers win over later tokens'.
        for (name, value) in claim_headers(rule, &v.claims) {
            if !written.contains(&name) {
                set_header(host, name, value.as_bytes());
                written.push(name);
            }
        }
        // Counted in the VM, exported on the tick (one host call less per request).
        if let Ok(mut state) = vm.try_borrow_mut() {
            state.metrics.count_allowed(v.rule);
        }
    }
}

/// Evaluates the policies (after the claim headers are written: like Envoy's RBAC after
/// `jwt_authn`, policies see the request as the upstream will). One log line per enforced
/// denial, per AUDIT match and per dry-run match; per-policy counters.
fn authorize<H: Host>(
    host: &H,
    vm: &RefCell<State>,
    config: &CompiledConfig,
    principal: Option<&VerifiedClaims>,
    binding: Bindings,
) -> Finish {
    let policies = &config.policies;
    if policies.is_empty() {
        return Finish::Continue;
    }
    let request = HostRequest::new(host, policies.required_headers());
    let decision = policies.evaluate_bound(&request, principal, binding);
    let principal_text = principal.map_or_else(
        || "-".to_owned(),
        |c| match c.issuer() {
            // A JWT-SVID without `iss`: its principal is its SPIFFE ID.
            "" => c.subject().unwrap_or_default().to_owned(),
            iss => format!("{iss}/{}", c.subject().unwrap_or_default()),
        },
    );
    if let Ok(state) = vm.try_borrow() {
        let m = &state.metrics;
        for audit in &decision.audits {
            info!(
                "meshguard: AUDIT policy={} rule={} principal={}",
                loggable(Some(audit.policy)),
                audit.rule,
                loggable(Some(&principal_text))
            );
            m.bump_policy(host, audit.policy, PolicyCounter::Audit);
        }
        for dry in &decision.dry_run {
            if let Some(rule) = dry.matched_rule {
                info!(
                    "meshguard: dry-run policy={} action={} rule={} matched principal={}",
                    loggable(Some(dry.policy)),
                    dry.action.as_str(),
                    rule,
                    loggable(Some(&principal_text))
                );
                m.bump_policy(host, dry.policy, PolicyCounter::DryRunMatched);
            }
        }
        if decision.is_allowed()
            && let Some(Verdict::Deny(reason)) = decision.dry_run_verdict
        {
            info!("meshguard: dry-run would deny: {reason}");
            Metrics::bump(host, m.dry_run_would_deny);
        }
        if let Some(allowed) = decision.allowed_by {
            m.bump_policy(host, allowed.policy, PolicyCounter::Allowed);
        }
        match decision.verdict {
            Verdict::Deny(DenyReason::Policy(hit)) => {
                m.bump_policy(host, hit.policy, PolicyCounter::Denied);
            }
            Verdict::Deny(DenyReason::NoAllowMatched) => Metrics::bump(host, m.no_allow_matched),
            _ => {}
        }
    }
    match decision.verdict {
        Verdict::Allow => Finish::Continue,
        Verdict::Deny(reason) => {
            let subject = Subject {
                issuer: principal.map(|c| c.issuer().to_owned()),
                kid: principal.and_then(|c| c.kid().map(str::to_owned)),
                sub: principal.and_then(|c| c.subject().map(str::to_owned)),
                rule: None,
            };
            deny(
                host,
                config,
                Some(vm),
                &Denial::Forbidden(reason.to_string()),
                &subject,
            )
        }
    }
}

fn remove_token<H: Host>(host: &H, config: &CompiledConfig, source: Source) {
    match source {
        Source::Header(i) => {
            if let Some(location) = config.locations.headers.get(i) {
                remove_header(host, &location.name);
            }
        }
        Source::Param(i) => {
            if let (Some(location), Some(path)) =
                (config.locations.params.get(i), host.request_header(":path"))
            {
                set_header(host, ":path", &extract::remove_param(&path, &location.name));
            }
        }
        Source::Cookie(i) => {
            if let (Some(location), Some(cookie)) = (
                config.locations.cookies.get(i),
                host.request_header("cookie"),
            ) {
                match extract::remove_cookie(&cookie, &location.name) {
                    Some(rest) => set_header(host, "cookie", &rest),
                    None => remove_header(host, "cookie"),
                }
            }
        }
    }
}

/// Sends the local response for `denial`, with one log line (reason, issuer, kid, sub; never
/// the token) and the counters.
pub fn deny<H: Host>(
    host: &H,
    config: &CompiledConfig,
    vm: Option<&RefCell<State>>,
    denial: &Denial,
    subject: &Subject,
) -> Finish {
    info!(
        "meshguard: {} {} reason={} issuer={} kid={} sub={} rule={}",
        denial.status(),
        denial,
        denial.reason(),
        loggable(subject.issuer.as_deref()),
        loggable(subject.kid.as_deref()),
        loggable(subject.sub.as_deref()),
        subject
            .rule
            .map_or_else(|| "-".to_owned(), |r| r.to_string()),
    );
    if let Some(vm) = vm
        && let Ok(mut state) = vm.try_borrow_mut()
    {
        state.metrics.bump_reason(host, denial.reason());
        Metrics::bump_rule(host, &state.metrics.denied, subject.rule);
    }
    let scheme = host.request_header(":scheme").unwrap_or_default();
    let authority = host.request_header(":authority").unwrap_or_default();
    let path = host.request_header(":path").unwrap_or_default();
    let realm = Realm {
        scheme: &scheme,
        authority: &authority,
        path: extract::path_without_query(&path),
    };
    // RFC 9449 §7.1: a DPoP presentation, or a refusal about DPoP, is challenged as DPoP.
    let dpop = !config.dpop_algs.is_empty()
        && (denial.is_dpop()
            || host
                .request_header("authorization")
                .is_some_and(|value| value.starts_with(DPOP_TOKEN_PREFIX.as_bytes())));
    let challenge = if dpop {
        Challenge::Dpop {
            algs: &config.dpop_algs,
        }
    } else {
        Challenge::Bearer
    };
    let response = denial.response(
        &realm,
        challenge,
        config.unauthorized_body,
        &config.forbidden_body,
    );
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    if let Err(status) = host.send_local_response(response.status, &headers, &response.body) {
        warn!(
            "meshguard: could not send the {} response: {status}",
            response.status
        );
    }
    Finish::Responded
}

/// A claimed (unverified) value made safe for one log line: printable ASCII only, at most 128
/// characters, `-` when absent.
fn loggable(value: Option<&str>) -> String {
    match value {
        None => "-".to_owned(),
        Some(text) => text
            .chars()
            .take(128)
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect(),
    }
}
