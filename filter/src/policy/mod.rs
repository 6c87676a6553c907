//! Istio `AuthorizationPolicy` semantics: specs (serde) compile once into matchers at configure
//! time; request time only evaluates them over a request view and the `VerifiedClaims`.
//!
//! # Evaluation (Istio's order)
//! 1. any matching DENY policy → deny (the first one in config order is reported);
//! 2. else, if at least one ALLOW policy exists and none matches → deny ("no ALLOW policy
//!    matched");
//! 3. else allow.
//!
//! AUDIT policies are only reported ([`Decision::audits`]). `dryRun` policies of any action are
//! evaluated and reported ([`Decision::dry_run`], [`Decision::dry_run_verdict`]) and never change
//! [`Decision::verdict`].
//!
//! A policy matches when one of its rules matches; no rules → never matches (an ALLOW policy
//! without rules therefore denies everything), `{}` → always matches. A rule matches when some
//! `from` AND some `to` AND every `when` match; absent `from`/`to` match anything. Fields inside
//! one source/operation are ANDed, values inside a field ORed; a `not*` field / `notValues`
//! matches when no value matches. A missing attribute (no JWT, plaintext peer, no header) never
//! satisfies positive values and always satisfies negative ones, so `notRequestPrincipals: ["*"]`
//! matches requests without a valid JWT and `notPrincipals: ["*"]` matches plaintext peers.
//!
//! The supported fields, keys and value syntax are documented in `docs/policies.md`.

mod compile;
mod error;
mod key;
mod matchers;
mod path;
mod request;
mod spec;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use serde_json::Value;

use crate::binding::Bindings;
use crate::jose::VerifiedClaims;

use compile::{CompiledPolicy, Cond, Field, Rule, Tri};
use matchers::StrPattern;

pub use error::PolicyError;
pub use key::{ConditionKey, KeyError};
pub use path::PathNormalization;
pub use request::{PeerIdentity, RequestAttributes};
pub(crate) use request::{xfcc_hash, xfcc_pairs};
pub use spec::{
    Action, ConditionSpec, FromSpec, OperationSpec, PolicySpec, ProviderSpec, RuleSpec, SourceSpec,
    ToSpec,
};

/// The 403 body Envoy's RBAC filter sends; the host uses it unless configured otherwise.
pub const DEFAULT_DENY_BODY: &str = "RBAC: access denied";

/// Istio's default trust domain (mesh config `trustDomain`).
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// Filter-wide options that change how attributes are derived (not what policies say).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyOptions {
    /// Trusted proxies in front of meshguard for `remoteIpBlocks`/`remote.ip`, like Envoy's
    /// `xff_num_trusted_hops` (Istio's `numTrustedProxies`): the client is the N-th address from
    /// the right of `x-forwarded-for`. 0 (default): the source address of the connection.
    #[serde(default)]
    pub xff_num_trusted_hops: u32,
    /// Claims split on spaces before matching, in addition to `scope` and `permission`.
    #[serde(default)]
    pub space_delimited_claims: Vec<String>,
    /// Take the peer identity from `x-forwarded-client-cert` instead of the connection's
    /// certificate. Off by default; only for meshguard behind a TLS-terminating proxy that
    /// sanitises and sets the header (Envoy `forward_client_cert_details: SANITIZE_SET`).
    #[serde(default)]
    pub forwarded_client_cert: Option<ForwardedClientCert>,
    /// Normalisation applied to the path before `paths`/`notPaths` match (Istio's `BASE` by
    /// default).
    #[serde(default)]
    pub path_normalization: PathNormalization,
    /// `hosts` also match the authority without its `:port` (meshguard's variant; Istio
    /// compares the authority as sent).
    #[serde(default)]
    pub hosts_ignore_port: bool,
    /// The mesh's trust domain (Istio mesh config `trustDomain`, default `cluster.local`).
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Istio mesh config `trustDomainAliases`: principals naming the trust domain, an alias or
    /// `cluster.local` also match the same workload in every other of these trust domains.
    #[serde(default)]
    pub trust_domain_aliases: Vec<String>,
}

fn default_trust_domain() -> String {
    DEFAULT_TRUST_DOMAIN.to_owned()
}

impl Default for PolicyOptions {
    fn default() -> Self {
        PolicyOptions {
            xff_num_trusted_hops: 0,
            space_delimited_claims: Vec::new(),
            forwarded_client_cert: None,
            path_normalization: PathNormalization::default(),
            hosts_ignore_port: false,
            trust_domain: default_trust_domain(),
            trust_domain_aliases: Vec::new(),
        }
    }
}

/// Trusted `x-forwarded-client-cert` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardedClientCert {
    /// Which element to trust, counted from the right: 1 (default) is the one appended by the
    /// proxy directly in front of meshguard. Elements further left were written by hops that
    /// meshguard cannot vouch for. Only that element's `URI=` value is used.
    #[serde(default = "one")]
    pub trusted_hop: u32,
}

fn one() -> u32 {
    1
}

impl Default for ForwardedClientCert {
    fn default() -> Self {
        ForwardedClientCert { trusted_hop: 1 }
    }
}

/// A compiled, immutable policy set.
pub struct Policies {
    policies: Vec<CompiledPolicy>,
    options: PolicyOptions,
    required_headers: Vec<String>,
    enforced_reads_path: bool,
    has_enforced_allow: bool,
    has_dry_run: bool,
    warnings: Vec<String>,
}

impl fmt::Debug for Policies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policies")
            .field("names", &self.names().collect::<Vec<_>>())
            .field("required_headers", &self.required_headers)
            .finish_non_exhaustive()
    }
}

impl Default for Policies {
    /// No policies: every request is allowed.
    fn default() -> Self {
        Policies {
            policies: Vec::new(),
            options: PolicyOptions::default(),
            required_headers: Vec::new(),
            enforced_reads_path: false,
            has_enforced_allow: false,
            has_dry_run: false,
            warnings: Vec::new(),
        }
    }
}

/// Compiles the `policies` array. Errors name the policy, rule index and field.
pub fn compile(specs: &[PolicySpec], options: &PolicyOptions) -> Result<Policies, PolicyError> {
    let compiled = compile::compile(specs, options)?;
    let has_enforced_allow = compiled
        .policies
        .iter()
        .any(|p| p.action == Action::Allow && !p.dry_run);
    let has_dry_run = compiled.policies.iter().any(|p| p.dry_run);
    Ok(Policies {
        policies: compiled.policies,
        options: options.clone(),
        required_headers: compiled.required_headers,
        enforced_reads_path: compiled.enforced_reads_path,
        has_enforced_allow,
        has_dry_run,
        warnings: compiled.warnings,
    })
}

/// One policy and the index of its first matching rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyMatch<'p> {
    /// The policy's `name`.
    pub policy: &'p str,
    /// Index into its `rules`.
    pub rule: usize,
    /// The rule (of a DENY policy) reads an attribute meshguard cannot determine for this
    /// request (the direct peer address, a certificate SAN beyond the first) and counts as
    /// matched: the policy fails closed.
    pub fail_closed: bool,
}

/// Why a request is denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason<'p> {
    /// A DENY policy matched.
    Policy(PolicyMatch<'p>),
    /// ALLOW policies exist and none matched.
    NoAllowMatched,
    /// The path encodes a NUL byte (`%00`), which Envoy rejects; policies read the path, so the
    /// request is refused rather than matched against a path we cannot interpret.
    InvalidPath,
}

impl fmt::Display for DenyReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::Policy(m) if m.fail_closed => write!(
                f,
                "denied by policy {:?} rule {} (fail closed: it reads an attribute this request does not reveal)",
                m.policy, m.rule
            ),
            DenyReason::Policy(m) => write!(f, "denied by policy {:?} rule {}", m.policy, m.rule),
            DenyReason::NoAllowMatched => f.write_str("no ALLOW policy matched"),
            DenyReason::InvalidPath => f.write_str("the request path encodes a NUL byte"),
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'p> {
    /// Let the request through.
    Allow,
    /// Answer 403 (body [`DEFAULT_DENY_BODY`] unless configured).
    Deny(DenyReason<'p>),
}

/// A dry-run policy's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DryRunResult<'p> {
    /// The policy's `name`.
    pub policy: &'p str,
    /// Its action.
    pub action: Action,
    /// The first matching rule, `None` when it did not match.
    pub matched_rule: Option<usize>,
}

/// The outcome of [`Policies::evaluate`], borrowing policy names from the [`Policies`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'p> {
    /// What to enforce.
    pub verdict: Verdict<'p>,
    /// The ALLOW policy that let the request through, when ALLOW policies exist.
    pub allowed_by: Option<PolicyMatch<'p>>,
    /// Enforced AUDIT policies that matched (log and count these requests).
    pub audits: Vec<PolicyMatch<'p>>,
    /// Every dry-run policy with its outcome, in config order.
    pub dry_run: Vec<DryRunResult<'p>>,
    /// The verdict had the dry-run policies been enforced too (`None` without dry-run policies).
    pub dry_run_verdict: Option<Verdict<'p>>,
}

impl Decision<'_> {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

impl Policies {
    /// Whether there are no policies (everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Policy names in config order (for per-policy metrics registration).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name.as_str())
    }

    /// Lower-case names of the request headers the policies read (sorted, deduplicated),
    /// including `x-forwarded-for` / `x-forwarded-client-cert` when the options make them
    /// attribute sources.
    pub fn required_headers(&self) -> &[String] {
        &self.required_headers
    }

    /// What the operator should know about how the compiled policies decide, one line per
    /// policy and topic (logged at configure time): rules that may fail closed.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The options the policies were compiled with.
    pub fn options(&self) -> &PolicyOptions {
        &self.options
    }

    /// Evaluates every policy over one request. `claims` is `None` when the request carries no
    /// valid JWT. The token has no checked binding (see [`Policies::evaluate_bound`]).
    pub fn evaluate<R: RequestAttributes + ?Sized>(
        &self,
        req: &R,
        claims: Option<&VerifiedClaims>,
    ) -> Decision<'_> {
        self.evaluate_bound(req, claims, Bindings::NONE)
    }

    /// [`Policies::evaluate`] for a token whose bindings the engine checked: `binding` is what
    /// `request.auth.binding` reads (empty: no token, or an unbound one).
    pub fn evaluate_bound<R: RequestAttributes + ?Sized>(
        &self,
        req: &R,
        claims: Option<&VerifiedClaims>,
        binding: Bindings,
    ) -> Decision<'_> {
        let ctx = EvalCtx::new(req, claims, binding, &self.options);
        let mut decision = Decision {
            verdict: Verdict::Allow,
            allowed_by: None,
            audits: Vec::new(),
            dry_run: Vec::new(),
            dry_run_verdict: None,
        };
        if self.enforced_reads_path && matches!(ctx.path(), PathState::Invalid) {
            decision.verdict = Verdict::Deny(DenyReason::InvalidPath);
            if self.has_dry_run {
                decision.dry_run_verdict = Some(decision.verdict);
            }
            return decision;
        }

        let mut deny: Option<PolicyMatch<'_>> = None;
        let mut allow: Option<PolicyMatch<'_>> = None;
        let mut shadow_deny: Option<PolicyMatch<'_>> = None;
        let mut shadow_allow: Option<PolicyMatch<'_>> = None;
        let mut shadow_allow_exists = self.has_enforced_allow;
        for policy in &self.policies {
            let enforced = !policy.dry_run;
            // Without dry-run policies, skip work that cannot change the outcome.
            if enforced && !self.has_dry_run {
                match policy.action {
                    Action::Deny if deny.is_some() => continue,
                    Action::Allow if deny.is_some() || allow.is_some() => continue,
                    _ => {}
                }
            }
            let matched = policy
                .first_match(&ctx)
                .map(|(rule, fail_closed)| PolicyMatch {
                    policy: policy.name.as_str(),
                    rule,
                    fail_closed,
                });
            if !enforced {
                decision.dry_run.push(DryRunResult {
                    policy: policy.name.as_str(),
                    action: policy.action,
                    matched_rule: matched.map(|m| m.rule),
                });
            }
            match (policy.action, enforced) {
                (Action::Deny, true) => {
                    deny = deny.or(matched);
                    shadow_deny = shadow_deny.or(matched);
                }
                (Action::Deny, false) => shadow_deny = shadow_deny.or(matched),
                (Action::Allow, true) => {
                    allow = allow.or(matched);
                    shadow_allow = shadow_allow.or(matched);
                }
                (Action::Allow, false) => {
                    shadow_allow_exists = true;
                    shadow_allow = shadow_allow.or(matched);
                }
                (Action::Audit, true) => decision.audits.extend(matched),
                (Action::Audit, false) | (Action::Custom, _) => {}
            }
        }
        decision.verdict = verdict(deny, self.has_enforced_allow, allow);
        decision.allowed_by = if decision.verdict == Verdict::Allow {
            allow
        } else {
            None
        };
        if self.has_dry_run {
            decision.dry_run_verdict =
                Some(verdict(shadow_deny, shadow_allow_exists, shadow_allow));
        }
        decision
    }
}

/// Istio's order over the matches found: DENY, then "ALLOW exists but none matched", then allow.
fn verdict<'p>(
    deny: Option<PolicyMatch<'p>>,
    allow_exists: bool,
    allow: Option<PolicyMatch<'p>>,
) -> Verdict<'p> {
    match deny {
        Some(m) => Verdict::Deny(DenyReason::Policy(m)),
        None if allow_exists && allow.is_none() => Verdict::Deny(DenyReason::NoAllowMatched),
        None => Verdict::Allow,
    }
}

impl CompiledPolicy {
    /// The first matching rule, and whether it matched only by failing closed. A rule whose
    /// outcome is undetermined counts as matched for DENY (it denies) and as not matched
    /// otherwise (an ALLOW does not allow, an AUDIT does not report).
    fn first_match<R: RequestAttributes + ?Sized>(
        &self,
        ctx: &EvalCtx<'_, R>,
    ) -> Option<(usize, bool)> {
        let fail_closed = self.action == Action::Deny;
        self.rules
            .iter()
            .enumerate()
            .find_map(|(i, rule)| match rule.matches(ctx) {
                Tri::Yes => Some((i, false)),
                Tri::Unknown if fail_closed => Some((i, true)),
                Tri::Unknown | Tri::No => None,
            })
    }
}

impl Rule {
    fn matches<R: RequestAttributes + ?Sized>(&self, ctx: &EvalCtx<'_, R>) -> Tri {
        let all = |conds: &Vec<Cond>| Tri::all(conds.iter().map(|c| c.matches(ctx)));
        let some = |entries: &Vec<Vec<Cond>>| {
            if entries.is_empty() {
                Tri::Yes
            } else {
                Tri::any(entries.iter().map(all))
            }
        };
        let from = some(&self.from);
        if from == Tri::No {
            return Tri::No;
        }
        from.and(some(&self.to)).and(all(&self.when))
    }
}

/// A peer-identity field (`principals`, `namespaces`, ...) over every identity of the peer, as
/// Envoy RBAC's `authenticated` matcher: a pattern hits when any URI SAN, DNS SAN or the
/// subject matches it. When only the first SANs are known, a miss is undetermined.
fn peer_field<M>(
    field: &Field<M>,
    peer: Option<&PeerIdentity>,
    matches: impl Fn(&M, &str) -> bool,
) -> Tri {
    let Some(peer) = peer else {
        return field.eval(|_| false).into();
    };
    field.eval_tri(|pattern| {
        if peer.names().any(|name| matches(pattern, name)) {
            Tri::Yes
        } else if peer.complete {
            Tri::No
        } else {
            Tri::Unknown
        }
    })
}

impl Cond {
    fn matches<R: RequestAttributes + ?Sized>(&self, ctx: &EvalCtx<'_, R>) -> Tri {
        match self {
            Cond::Principal(f) => peer_field(f, ctx.peer(), |p, v| p.matches(v)),
            Cond::Namespace(f) => peer_field(f, ctx.peer(), |p, v| p.matches(v)),
            Cond::ServiceAccount(f) => peer_field(f, ctx.peer(), |p, v| p.matches(v)),
            Cond::TrustDomain(f) => peer_field(f, ctx.peer(), |p, v| p.matches(v)),
            Cond::SourceIp(f) => match ctx.direct_peer_ip() {
                Direct::Unknown => Tri::Unknown,
                Direct::Known(ip) => f.eval(|c| ip.is_some_and(|ip| c.contains(ip))).into(),
            },
            _ => self.matches_known(ctx).into(),
        }
    }

    /// Conditions over attributes that are always either known or absent.
    fn matches_known<R: RequestAttributes + ?Sized>(&self, ctx: &EvalCtx<'_, R>) -> bool {
        match self {
            Cond::Principal(_)
            | Cond::Namespace(_)
            | Cond::ServiceAccount(_)
            | Cond::TrustDomain(_)
            | Cond::SourceIp(_) => false,
            Cond::RequestPrincipal(f) => {
                let claims = ctx.claims;
                f.eval(|p| claims.is_some_and(|c| p.matches(c.issuer(), c.subject())))
            }
            Cond::RemoteIp(f) => {
                let ip = ctx.remote_ip();
                f.eval(|c| ip.is_some_and(|ip| c.contains(ip)))
            }
            Cond::DestinationIp(f) => {
                let ip = ctx.destination_ip();
                f.eval(|c| ip.is_some_and(|ip| c.contains(ip)))
            }
            Cond::DestinationPort(f) => {
                let port = ctx.destination_port();
                f.eval(|p| port == Some(*p))
            }
            Cond::Host(f) => {
                let host = ctx.host();
                f.eval(|p| host.is_some_and(|h| p.matches(h)))
            }
            Cond::Method(f) => {
                let method = ctx.method();
                f.eval(|p| method.is_some_and(|m| p.matches(m)))
            }
            Cond::Path(f) => match ctx.path() {
                PathState::Ok(path) => f.eval(|p| p.matches(path)),
                PathState::Missing | PathState::Invalid => f.eval(|_| false),
            },
            Cond::Sni(f) => {
                let sni = ctx.sni();
                f.eval(|p| sni.is_some_and(|s| p.matches(s)))
            }
            Cond::Binding(f) => {
                let binding = ctx.binding;
                f.eval(|p| p.matches(binding))
            }
            Cond::Header {
                name,
                per_element,
                field,
            } => {
                let values = ctx.req.header_values(name);
                field.eval(|p| {
                    values.iter().any(|v| {
                        if *per_element && !matches!(p, StrPattern::Present) {
                            v.split(',').any(|e| p.matches(e))
                        } else {
                            p.matches(v)
                        }
                    })
                })
            }
            Cond::Claim {
                path,
                split_spaces,
                field,
            } => {
                let value = ctx.claims.and_then(|c| c.claim(path));
                field.eval(|p| value.is_some_and(|v| claim_matches(v, p, *split_spaces)))
            }
        }
    }
}

/// Istio matches a claim that is a string, or a list with a matching string element. meshguard
/// also compares numbers and booleans by their JSON text (`true`, `42`), which Envoy's string
/// matcher would never match. `scope`-like claims are split on spaces first.
fn claim_matches(value: &Value, pattern: &StrPattern, split_spaces: bool) -> bool {
    match value {
        Value::String(s) if split_spaces => s
            .split(' ')
            .filter(|t| !t.is_empty())
            .any(|t| pattern.matches(t)),
        Value::Array(items) => items.iter().any(|item| scalar_matches(item, pattern)),
        other => scalar_matches(other, pattern),
    }
}

fn scalar_matches(value: &Value, pattern: &StrPattern) -> bool {
    match value {
        Value::String(s) => pattern.matches(s),
        Value::Bool(true) => pattern.matches("true"),
        Value::Bool(false) => pattern.matches("false"),
        Value::Number(n) => pattern.matches(&n.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

/// The directly connected peer's address, when it can be told apart from an
/// `x-forwarded-for`-derived one.
#[derive(Debug, Clone, Copy)]
enum Direct {
    /// The connection's peer (`None`: the host gave no address).
    Known(Option<IpAddr>),
    /// Envoy took the source address from `x-forwarded-for` (it reports port 0): the direct
    /// peer is not visible to a Wasm filter.
    Unknown,
}

enum PathState<'a> {
    Missing,
    Invalid,
    Ok(Cow<'a, str>),
}

/// Per-request attribute cache: every derived attribute is computed at most once per
/// evaluation, whatever the number of policies reading it.
struct EvalCtx<'a, R: RequestAttributes + ?Sized> {
    req: &'a R,
    claims: Option<&'a VerifiedClaims>,
    /// The token's checked bindings (`request.auth.binding`).
    binding: Bindings,
    options: &'a PolicyOptions,
    host: OnceCell<Option<&'a str>>,
    method: OnceCell<Option<&'a str>>,
    path: OnceCell<PathState<'a>>,
    peer: OnceCell<Option<&'a PeerIdentity>>,
    /// The identity from a trusted `x-forwarded-client-cert` (owned: parsed per request).
    forwarded_peer: OnceCell<Option<PeerIdentity>>,
    source_address: OnceCell<Option<SocketAddr>>,
    remote_ip: OnceCell<Option<IpAddr>>,
    destination_ip: OnceCell<Option<IpAddr>>,
    destination_port: OnceCell<Option<u16>>,
    sni: OnceCell<Option<&'a str>>,
}

impl<'a, R: RequestAttributes + ?Sized> EvalCtx<'a, R> {
    fn new(
        req: &'a R,
        claims: Option<&'a VerifiedClaims>,
        binding: Bindings,
        options: &'a PolicyOptions,
    ) -> Self {
        EvalCtx {
            req,
            claims,
            binding,
            options,
            host: OnceCell::new(),
            method: OnceCell::new(),
            path: OnceCell::new(),
            peer: OnceCell::new(),
            forwarded_peer: OnceCell::new(),
            source_address: OnceCell::new(),
            remote_ip: OnceCell::new(),
            destination_ip: OnceCell::new(),
            destination_port: OnceCell::new(),
            sni: OnceCell::new(),
        }
    }

    fn host(&self) -> Option<&'a str> {
        *self.host.get_or_init(|| self.req.host())
    }

    fn method(&self) -> Option<&'a str> {
        *self.method.get_or_init(|| self.req.method())
    }

    fn path(&self) -> &PathState<'a> {
        self.path.get_or_init(|| match self.req.path() {
            None => PathState::Missing,
            Some(raw) => match path::normalize(raw, self.options.path_normalization) {
                Ok(p) => PathState::Ok(p),
                Err(path::InvalidPath) => PathState::Invalid,
            },
        })
    }

    fn peer(&self) -> Option<&PeerIdentity> {
        match &self.options.forwarded_client_cert {
            None => *self.peer.get_or_init(|| self.req.peer()),
            Some(x) => self
                .forwarded_peer
                .get_or_init(|| {
                    self.req
                        .header("x-forwarded-client-cert")
                        .and_then(|h| request::xfcc_identity(h, x.trusted_hop))
                })
                .as_ref(),
        }
    }

    fn source_address(&self) -> Option<SocketAddr> {
        *self
            .source_address
            .get_or_init(|| self.req.source_address())
    }

    /// `ipBlocks` / `source.ip`: Istio's RBAC `direct_remote_ip`, the connection's peer.
    fn direct_peer_ip(&self) -> Direct {
        match self.source_address() {
            None => Direct::Known(None),
            Some(a) if a.port() == 0 => Direct::Unknown,
            Some(a) => Direct::Known(Some(a.ip())),
        }
    }

    /// `remoteIpBlocks` / `remote.ip`: Istio's RBAC `remote_ip`, Envoy's `source.address`
    /// (which Envoy may have taken from `x-forwarded-for`), or meshguard's own trusted-hops
    /// reading of the header.
    fn remote_ip(&self) -> Option<IpAddr> {
        *self.remote_ip.get_or_init(|| {
            let source = self.source_address().map(|a| a.ip());
            let hops = self.options.xff_num_trusted_hops;
            if hops == 0 {
                return source;
            }
            request::xff_client(self.req.header("x-forwarded-for"), hops).or(source)
        })
    }

    fn destination_ip(&self) -> Option<IpAddr> {
        *self
            .destination_ip
            .get_or_init(|| self.req.destination_ip())
    }

    fn destination_port(&self) -> Option<u16> {
        *self
            .destination_port
            .get_or_init(|| self.req.destination_port())
    }

    fn sni(&self) -> Option<&'a str> {
        *self.sni.get_or_init(|| self.req.sni())
    }
}
