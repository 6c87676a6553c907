//! Deciding one request with host calls: used by the HTTP context on `on_request_headers` and
//! by the root when it resumes a paused request (after `set_effective_context`). Only free
//! functions over [`abi`], so both callers share one path.

use std::cell::RefCell;
use std::rc::Rc;

use log::{info, warn};

use super::abi::{self, MapType};
use super::attrs::HostRequest;
use super::auth::{Outcome, Progress, Subject, Verified, authenticate};
use super::metrics::{Metrics, PolicyCounter};
use super::vm::{Vm, VmKeys, Waiter, duration_ms};
use crate::config::CompiledConfig;
use crate::extract::{self, Found, Source};
use crate::jose::VerifiedClaims;
use crate::output::{Denial, Realm, claim_headers};
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

/// A request header (lower-case name); absent when the host has none (or no request headers).
pub fn header(name: &str) -> Option<Vec<u8>> {
    abi::header(MapType::RequestHeaders, name).ok().flatten()
}

fn set_header(name: &str, value: &[u8]) {
    if let Err(status) = abi::set_header(MapType::RequestHeaders, name, value) {
        warn!("meshguard: could not set request header {name}: {status}");
    }
}

fn remove_header(name: &str) {
    if let Err(status) = abi::remove_header(MapType::RequestHeaders, name) {
        warn!("meshguard: could not remove request header {name}: {status}");
    }
}

/// Anti-spoofing: removes every configured output header the client may have sent.
pub fn strip_output_headers(config: &CompiledConfig) {
    for name in &config.strip_headers {
        remove_header(name);
    }
}

/// Reads the request's tokens (only the headers some rule reads).
pub fn find_tokens(config: &CompiledConfig) -> Vec<Found> {
    extract::extract(&config.locations, header)
}

/// Decides a request whose tokens are `found`. `now_ms` is host time.
pub fn decide(
    vm: &Rc<RefCell<Vm>>,
    config: &Rc<CompiledConfig>,
    context_id: u32,
    found: Vec<Found>,
    mut progress: Progress,
    now_ms: u64,
) -> Finish {
    let outcome = {
        let Ok(mut state) = vm.try_borrow_mut() else {
            return deny(config, None, &Denial::JwksUnavailable, &Subject::default());
        };
        let state = &mut *state;
        let mut keys = VmKeys {
            keys: &mut state.keys,
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
            accept(vm, config, &found, &verified);
            authorize(vm, config, verified.first().map(|v| &*v.claims))
        }
        Outcome::Denied(denial, subject) => deny(config, Some(vm), &denial, &subject),
        Outcome::Wait { rule } => {
            let timeout = config.rules.get(rule).map_or(0, |r| duration_ms(r.timeout));
            let queue = {
                let Ok(mut state) = vm.try_borrow_mut() else {
                    return deny(config, None, &Denial::JwksUnavailable, &Subject::default());
                };
                let generation = state.keys.get(rule).map_or(0, |k| k.generation());
                state.waiters.push(Waiter {
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
                let _ = abi::enqueue_shared_queue(queue, b"w");
            }
            Finish::Waiting
        }
    }
}

/// Success: remove the tokens (unless forwarded), write the claim headers, count.
fn accept(vm: &Rc<RefCell<Vm>>, config: &CompiledConfig, found: &[Found], verified: &[Verified]) {
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
            remove_token(config, candidate.source);
        }
        // The first token is the principal: its claim headers win over later tokens'.
        for (name, value) in claim_headers(rule, &v.claims) {
            if !written.contains(&name) {
                set_header(name, value.as_bytes());
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
fn authorize(
    vm: &Rc<RefCell<Vm>>,
    config: &CompiledConfig,
    principal: Option<&VerifiedClaims>,
) -> Finish {
    let policies = &config.policies;
    if policies.is_empty() {
        return Finish::Continue;
    }
    let request = HostRequest::new(policies.required_headers());
    let decision = policies.evaluate(&request, principal);
    let principal_text = principal.map_or_else(
        || "-".to_owned(),
        |c| format!("{}/{}", c.issuer(), c.subject().unwrap_or_default()),
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
            m.bump_policy(audit.policy, PolicyCounter::Audit);
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
                m.bump_policy(dry.policy, PolicyCounter::DryRunMatched);
            }
        }
        if decision.is_allowed()
            && let Some(Verdict::Deny(reason)) = decision.dry_run_verdict
        {
            info!("meshguard: dry-run would deny: {reason}");
            Metrics::bump(m.dry_run_would_deny);
        }
        if let Some(allowed) = decision.allowed_by {
            m.bump_policy(allowed.policy, PolicyCounter::Allowed);
        }
        match decision.verdict {
            Verdict::Deny(DenyReason::Policy(hit)) => {
                m.bump_policy(hit.policy, PolicyCounter::Denied);
            }
            Verdict::Deny(DenyReason::NoAllowMatched) => Metrics::bump(m.no_allow_matched),
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
                config,
                Some(vm),
                &Denial::Forbidden(reason.to_string()),
                &subject,
            )
        }
    }
}

fn remove_token(config: &CompiledConfig, source: Source) {
    match source {
        Source::Header(i) => {
            if let Some(location) = config.locations.headers.get(i) {
                remove_header(&location.name);
            }
        }
        Source::Param(i) => {
            if let (Some(location), Some(path)) = (config.locations.params.get(i), header(":path"))
            {
                set_header(":path", &extract::remove_param(&path, &location.name));
            }
        }
        Source::Cookie(i) => {
            if let (Some(location), Some(cookie)) =
                (config.locations.cookies.get(i), header("cookie"))
            {
                match extract::remove_cookie(&cookie, &location.name) {
                    Some(rest) => set_header("cookie", &rest),
                    None => remove_header("cookie"),
                }
            }
        }
    }
}

/// Sends the local response for `denial`, with one log line (reason, issuer, kid, sub; never
/// the token) and the counters.
pub fn deny(
    config: &CompiledConfig,
    vm: Option<&Rc<RefCell<Vm>>>,
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
        state.metrics.bump_reason(denial.reason());
        Metrics::bump_rule(&state.metrics.denied, subject.rule);
    }
    let scheme = header(":scheme").unwrap_or_default();
    let authority = header(":authority").unwrap_or_default();
    let path = header(":path").unwrap_or_default();
    let realm = Realm {
        scheme: &scheme,
        authority: &authority,
        path: extract::path_without_query(&path),
    };
    let response = denial.response(&realm, config.unauthorized_body, &config.forbidden_body);
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    if let Err(status) = abi::send_local_response(response.status, &headers, &response.body) {
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
