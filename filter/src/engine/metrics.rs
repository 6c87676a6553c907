//! Counters through proxy metrics (Envoy shows them as `wasmcustom.<name>`).
//!
//! Defined once per VM at configure time; denial reasons are defined on first use and then
//! cached (their set is open-ended: every `JoseError::reason()`), so still once per VM.
//! A metric the host refuses is simply not counted: observability must never fail a request.
//!
//! Counters bumped on every request (cache hit/miss/eviction, `allowed`, `no_token`) are counted in the VM
//! and exported as deltas on the root's tick (and when the root ends): a host call per request
//! for a counter is ~0.3 µs, a tenth of what a cached request costs. The others (denials,
//! fetches, policies) are rarer and go to the host at once.

use super::Host;

/// Metric ids of one VM.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per rule: tokens verified and accepted (exported on the tick, see `allowed_unexported`).
    pub allowed: Vec<Option<u32>>,
    /// Per rule: `allowed` counted since the last export.
    allowed_unexported: Vec<u64>,
    /// Per rule: requests denied over a token of that rule.
    pub denied: Vec<Option<u32>>,
    /// Per rule: JWKS fetches that produced keys / that failed.
    pub fetch_ok: Vec<Option<u32>>,
    pub fetch_failed: Vec<Option<u32>>,
    /// Per rule: refetches triggered by an unknown `kid`.
    pub unknown_kid_refetch: Vec<Option<u32>>,
    /// Requests without any token (exported on the tick).
    pub no_token: Option<u32>,
    /// `no_token` counted since the last export.
    no_token_unexported: u64,
    /// Per policy (config order): [denied, allowed, audit, dry_run_matched].
    pub policies: Vec<(String, [Option<u32>; 4])>,
    /// Requests denied because ALLOW policies exist and none matched.
    pub no_allow_matched: Option<u32>,
    /// Requests the dry-run policies would have denied.
    pub dry_run_would_deny: Option<u32>,
    /// Verified-token cache: hits, misses, evictions (exported as deltas on the root's tick).
    pub cache_hit: Option<u32>,
    pub cache_miss: Option<u32>,
    pub cache_eviction: Option<u32>,
    /// Denials per reason (`meshguard.denied.<reason>`), defined lazily.
    reasons: Vec<(&'static str, Option<u32>)>,
}

/// Index into a policy's counters.
#[derive(Debug, Clone, Copy)]
pub enum PolicyCounter {
    Denied = 0,
    Allowed = 1,
    Audit = 2,
    DryRunMatched = 3,
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

fn counter<H: Host>(host: &H, name: &str) -> Option<u32> {
    host.define_counter(name)
}

impl Metrics {
    /// Defines the per-rule counters for issuers (in rule order).
    pub fn define<'a, H: Host>(host: &H, issuers: impl Iterator<Item = &'a str>) -> Metrics {
        let mut m = Metrics {
            no_token: counter(host, "meshguard.jwt.no_token"),
            cache_hit: counter(host, "meshguard.cache.hit"),
            cache_miss: counter(host, "meshguard.cache.miss"),
            cache_eviction: counter(host, "meshguard.cache.eviction"),
            ..Metrics::default()
        };
        for issuer in issuers {
            let label = metric_label(issuer);
            m.allowed
                .push(counter(host, &format!("meshguard.jwt.{label}.allowed")));
            m.allowed_unexported.push(0);
            m.denied
                .push(counter(host, &format!("meshguard.jwt.{label}.denied")));
            m.fetch_ok
                .push(counter(host, &format!("meshguard.jwks.{label}.fetch_ok")));
            m.fetch_failed.push(counter(
                host,
                &format!("meshguard.jwks.{label}.fetch_failed"),
            ));
            m.unknown_kid_refetch.push(counter(
                host,
                &format!("meshguard.jwks.{label}.unknown_kid_refetch"),
            ));
        }
        m
    }

    /// Defines the per-policy counters (`meshguard.policy.<name>.<what>`).
    pub fn define_policies<'a, H: Host>(&mut self, host: &H, names: impl Iterator<Item = &'a str>) {
        for name in names {
            let label = metric_label(name);
            let ids = ["denied", "allowed", "audit", "dry_run_matched"]
                .map(|what| counter(host, &format!("meshguard.policy.{label}.{what}")));
            self.policies.push((name.to_owned(), ids));
        }
        if !self.policies.is_empty() {
            self.no_allow_matched = counter(host, "meshguard.policy.no_allow_matched");
            self.dry_run_would_deny = counter(host, "meshguard.policy.dry_run_would_deny");
        }
    }

    /// Counts one accepted token of `rule` in the VM (exported by [`Metrics::flush_allowed`]).
    pub fn count_allowed(&mut self, rule: usize) {
        if let Some(n) = self.allowed_unexported.get_mut(rule) {
            *n = n.saturating_add(1);
        }
    }

    /// Counts one request without a token in the VM (exported by [`Metrics::flush_per_request`]).
    pub fn count_no_token(&mut self) {
        self.no_token_unexported = self.no_token_unexported.saturating_add(1);
    }

    /// Exports the `allowed` and `no_token` counts since the last call as host metric increments
    /// (none for a counter that did not move).
    pub fn flush_per_request<H: Host>(&mut self, host: &H) {
        for (id, n) in self.allowed.iter().zip(self.allowed_unexported.iter_mut()) {
            if *n > 0 {
                Self::add(host, *id, std::mem::take(n));
            }
        }
        if self.no_token_unexported > 0 {
            Self::add(
                host,
                self.no_token,
                std::mem::take(&mut self.no_token_unexported),
            );
        }
    }

    /// Adds one to a policy's counter.
    pub fn bump_policy<H: Host>(&self, host: &H, name: &str, which: PolicyCounter) {
        if let Some((_, ids)) = self.policies.iter().find(|(n, _)| n == name) {
            Self::bump(host, ids.get(which as usize).copied().flatten());
        }
    }

    /// Adds `delta` to a counter, ignoring host errors.
    pub fn add<H: Host>(host: &H, id: Option<u32>, delta: u64) {
        if let (Some(id), Ok(delta)) = (id, i64::try_from(delta))
            && delta > 0
        {
            host.increment_counter(id, delta);
        }
    }

    /// Adds one to a counter, ignoring host errors.
    pub fn bump<H: Host>(host: &H, id: Option<u32>) {
        if let Some(id) = id {
            host.increment_counter(id, 1);
        }
    }

    /// Adds one to the per-rule counter `list[rule]`.
    pub fn bump_rule<H: Host>(host: &H, list: &[Option<u32>], rule: Option<usize>) {
        if let Some(id) = rule.and_then(|r| list.get(r)).copied().flatten() {
            host.increment_counter(id, 1);
        }
    }

    /// Adds one to `meshguard.denied.<reason>`.
    pub fn bump_reason<H: Host>(&mut self, host: &H, reason: &'static str) {
        let id = match self.reasons.iter().find(|(r, _)| *r == reason) {
            Some((_, id)) => *id,
            None => {
                let id = counter(host, &format!("meshguard.denied.{reason}"));
                self.reasons.push((reason, id));
                id
            }
        };
        Self::bump(host, id);
    }
}
