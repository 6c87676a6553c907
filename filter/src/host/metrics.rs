//! Counters through proxy metrics (Envoy shows them as `wasmcustom.<name>`).
//!
//! Defined once per VM at configure time; denial reasons are defined on first use and then
//! cached (their set is open-ended: every `JoseError::reason()`), so still once per VM.
//! A metric the host refuses is simply not counted: observability must never fail a request.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Metric ids of one VM.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per rule: tokens verified and accepted.
    pub allowed: Vec<Option<u32>>,
    /// Per rule: requests denied over a token of that rule.
    pub denied: Vec<Option<u32>>,
    /// Per rule: JWKS fetches that produced keys / that failed.
    pub fetch_ok: Vec<Option<u32>>,
    pub fetch_failed: Vec<Option<u32>>,
    /// Per rule: refetches triggered by an unknown `kid`.
    pub unknown_kid_refetch: Vec<Option<u32>>,
    /// Requests without any token.
    pub no_token: Option<u32>,
    /// Denials per reason (`meshguard.denied.<reason>`), defined lazily.
    reasons: Vec<(&'static str, Option<u32>)>,
}

/// A metric-name-safe form of an issuer: `[A-Za-z0-9_-]` kept, everything else `_`.
pub fn metric_label(text: &str) -> String {
    text.chars()
        .take(96)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

impl Metrics {
    /// Defines the per-rule counters for issuers (in rule order).
    pub fn define<'a>(issuers: impl Iterator<Item = &'a str>) -> Metrics {
        let mut m = Metrics {
            no_token: counter("meshguard.jwt.no_token"),
            ..Metrics::default()
        };
        for issuer in issuers {
            let label = metric_label(issuer);
            m.allowed
                .push(counter(&format!("meshguard.jwt.{label}.allowed")));
            m.denied
                .push(counter(&format!("meshguard.jwt.{label}.denied")));
            m.fetch_ok
                .push(counter(&format!("meshguard.jwks.{label}.fetch_ok")));
            m.fetch_failed
                .push(counter(&format!("meshguard.jwks.{label}.fetch_failed")));
            m.unknown_kid_refetch.push(counter(&format!(
                "meshguard.jwks.{label}.unknown_kid_refetch"
            )));
        }
        m
    }

    /// Adds one to a counter, ignoring host errors.
    pub fn bump(id: Option<u32>) {
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Adds one to the per-rule counter `list[rule]`.
    pub fn bump_rule(list: &[Option<u32>], rule: Option<usize>) {
        if let Some(id) = rule.and_then(|r| list.get(r)).copied().flatten() {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    /// Adds one to `meshguard.denied.<reason>`.
    pub fn bump_reason(&mut self, reason: &'static str) {
        let id = match self.reasons.iter().find(|(r, _)| *r == reason) {
            Some((_, id)) => *id,
            None => {
                let id = counter(&format!("meshguard.denied.{reason}"));
                self.reasons.push((reason, id));
                id
            }
        };
        Self::bump(id);
    }
}
