//! Spec → compiled matchers, with Istio's validation rules (the `AuthorizationPolicy` webhook's
//! checks, so a spec Istio accepts compiles here and one it rejects fails here too).

use std::collections::BTreeSet;

use super::PolicyOptions;
use super::error::PolicyError;
use super::key::{ConditionKey, KeyError};
use super::matchers::{
    BindingPattern, Cidr, HostPattern, NamespacePattern, PathPattern, PathTemplate,
    PrincipalPattern, RequestPrincipalPattern, ServiceAccountPattern, StrPattern,
    TrustDomainPattern, contains_template,
};
use super::spec::{Action, ConditionSpec, OperationSpec, PolicySpec, RuleSpec, SourceSpec};
use crate::binding::Binding;

/// Claims whose string value Istio splits on spaces (Envoy jwt_authn
/// `normalize_payload_in_metadata.space_delimited_claims`).
const DEFAULT_SPACE_DELIMITED: [&str; 2] = ["scope", "permission"];

/// Istio (and the CRD) cap `serviceAccounts` at 16 values of at most 320 bytes.
const MAX_SERVICE_ACCOUNTS: usize = 16;
const MAX_SERVICE_ACCOUNT_LEN: usize = 320;

pub(crate) struct CompiledPolicy {
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) dry_run: bool,
    pub(crate) rules: Vec<Rule>,
}

pub(crate) struct Rule {
    /// Empty: any source. Otherwise some entry's conditions must all hold.
    pub(crate) from: Vec<Vec<Cond>>,
    /// Empty: any operation. Otherwise some entry's conditions must all hold.
    pub(crate) to: Vec<Vec<Cond>>,
    /// All must hold.
    pub(crate) when: Vec<Cond>,
}

/// `values` (some must match, when non-empty) and `notValues` (none may match).
pub(crate) struct Field<M> {
    pub(crate) values: Vec<M>,
    pub(crate) not_values: Vec<M>,
}

impl<M> Field<M> {
    /// `hit` says whether one pattern matches the request's attribute; for a missing attribute
    /// it is always false, so `values` fail and `notValues` pass, as in Istio.
    pub(crate) fn eval(&self, mut hit: impl FnMut(&M) -> bool) -> bool {
        (self.values.is_empty() || self.values.iter().any(&mut hit))
            && !self.not_values.iter().any(&mut hit)
    }

    /// [`Field::eval`] over an attribute that may be only partly known (a peer certificate of
    /// which only the first SANs are visible): `hit` may answer [`Tri::Unknown`].
    pub(crate) fn eval_tri(&self, mut hit: impl FnMut(&M) -> Tri) -> Tri {
        let positive = if self.values.is_empty() {
            Tri::Yes
        } else {
            Tri::any(self.values.iter().map(&mut hit))
        };
        positive.and(Tri::any(self.not_values.iter().map(&mut hit)).not())
    }
}

/// Kleene's three-valued logic for conditions over attributes a Wasm filter cannot always see
/// (the direct peer address when Envoy took the source from `x-forwarded-for`; a certificate's
/// second SAN when only the first is exposed). A DENY rule that is [`Tri::Unknown`] denies, an
/// ALLOW rule that is [`Tri::Unknown`] does not allow: the policy fails closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    No,
    Yes,
    Unknown,
}

impl Tri {
    pub(crate) fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Unknown,
        }
    }

    pub(crate) fn not(self) -> Tri {
        match self {
            Tri::No => Tri::Yes,
            Tri::Yes => Tri::No,
            Tri::Unknown => Tri::Unknown,
        }
    }

    /// Some item is `Yes` → `Yes`; else some `Unknown` → `Unknown`; else (or empty) `No`.
    pub(crate) fn any(items: impl Iterator<Item = Tri>) -> Tri {
        let mut result = Tri::No;
        for item in items {
            match item {
                Tri::Yes => return Tri::Yes,
                Tri::Unknown => result = Tri::Unknown,
                Tri::No => {}
            }
        }
        result
    }

    /// Every item `Yes` (or empty) → `Yes`; some `No` → `No`; else `Unknown`.
    pub(crate) fn all(items: impl Iterator<Item = Tri>) -> Tri {
        let mut result = Tri::Yes;
        for item in items {
            match item {
                Tri::No => return Tri::No,
                Tri::Unknown => result = Tri::Unknown,
                Tri::Yes => {}
            }
        }
        result
    }
}

impl From<bool> for Tri {
    fn from(b: bool) -> Tri {
        if b { Tri::Yes } else { Tri::No }
    }
}

pub(crate) enum Cond {
    Principal(Field<PrincipalPattern>),
    Namespace(Field<NamespacePattern>),
    ServiceAccount(Field<ServiceAccountPattern>),
    TrustDomain(Field<TrustDomainPattern>),
    RequestPrincipal(Field<RequestPrincipalPattern>),
    SourceIp(Field<Cidr>),
    RemoteIp(Field<Cidr>),
    DestinationIp(Field<Cidr>),
    DestinationPort(Field<u16>),
    Host(Field<HostPattern>),
    Method(Field<StrPattern>),
    Path(Field<PathPattern>),
    Header {
        name: String,
        /// `request.experimental.inline.headers[...]`: match each `,`-separated element.
        per_element: bool,
        field: Field<StrPattern>,
    },
    Claim {
        path: Vec<String>,
        split_spaces: bool,
        field: Field<StrPattern>,
    },
    Sni(Field<StrPattern>),
    /// `request.auth.binding`: the request's checked token binding.
    Binding(Field<BindingPattern>),
}

/// Everything [`super::Policies`] keeps besides the policies themselves.
pub(crate) struct Compiled {
    pub(crate) policies: Vec<CompiledPolicy>,
    pub(crate) required_headers: Vec<String>,
    pub(crate) enforced_reads_path: bool,
    pub(crate) warnings: Vec<String>,
}

/// Logged at configure time for a policy that reads the direct peer address.
const DIRECT_IP_WARNING: &str = "ipBlocks/source.ip are the connection's direct peer; where Envoy takes the source address from X-Forwarded-For (use_remote_address: false with the header sent, or xff_num_trusted_hops > 0) meshguard cannot see that peer and the rule fails closed (a DENY rule matches, an ALLOW rule does not)";

/// Logged at configure time for a policy that reads the peer certificate's identities.
const PEER_WARNING: &str = "peer identities are every SAN of the client certificate; where Envoy exposes neither connection.peer_certificate (Envoy 1.36 does not) nor an X-Forwarded-Client-Cert Cert= it set itself (forward_client_cert_details: SANITIZE_SET with set_current_client_cert_details.cert), only the first SAN is visible and a rule it does not decide fails closed";

pub(crate) fn compile(
    specs: &[PolicySpec],
    options: &PolicyOptions,
) -> Result<Compiled, PolicyError> {
    if let Some(x) = &options.forwarded_client_cert
        && x.trusted_hop == 0
    {
        return Err(PolicyError::Option {
            option: "forwardedClientCert.trustedHop",
            problem: "must be at least 1 (1 = the element added by the proxy next to meshguard)",
        });
    }
    for name in &options.space_delimited_claims {
        if name.is_empty() {
            return Err(PolicyError::Option {
                option: "spaceDelimitedClaims",
                problem: "claim names must not be empty",
            });
        }
    }

    let mut names = BTreeSet::new();
    let mut policies = Vec::with_capacity(specs.len());
    let mut tracker = Tracker::default();
    let mut enforced_reads_path = false;
    let mut warnings = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        if spec.name.is_empty() {
            return Err(PolicyError::EmptyName { index });
        }
        if !names.insert(spec.name.as_str()) {
            return Err(PolicyError::DuplicateName {
                policy: spec.name.clone(),
            });
        }
        tracker.reads = Reads::default();
        let policy = compile_policy(spec, options, &mut tracker)?;
        if tracker.reads.path && !policy.dry_run {
            enforced_reads_path = true;
        }
        if tracker.reads.direct_ip {
            warnings.push(format!("policy {:?}: {DIRECT_IP_WARNING}", spec.name));
        }
        if tracker.reads.peer {
            warnings.push(format!("policy {:?}: {PEER_WARNING}", spec.name));
        }
        policies.push(policy);
    }
    Ok(Compiled {
        policies,
        required_headers: tracker.headers.into_iter().collect(),
        enforced_reads_path,
        warnings,
    })
}

/// What the compiled policies read that matters at configure time: the headers to fetch up
/// front (all policies), and per policy the attributes behind its warnings and the `%00` check.
/// (Every other attribute is read lazily, only when a condition over it is evaluated.)
#[derive(Default)]
struct Tracker {
    reads: Reads,
    headers: BTreeSet<String>,
}

/// The attributes one policy reads that change how it is compiled or reported.
#[derive(Default)]
struct Reads {
    /// `:path` (`paths`): a path encoding NUL is refused when an enforced policy reads it.
    path: bool,
    /// The direct peer address (`ipBlocks`, `source.ip`), which may be undetermined.
    direct_ip: bool,
    /// The peer certificate's identities, of which only the first SANs may be visible (false
    /// when the trusted-XFCC option supplies them from a header instead).
    peer: bool,
}

impl Tracker {
    fn peer(&mut self, options: &PolicyOptions) {
        if options.forwarded_client_cert.is_some() {
            self.headers.insert("x-forwarded-client-cert".to_owned());
        } else {
            self.reads.peer = true;
        }
    }

    fn remote_ip(&mut self, options: &PolicyOptions) {
        if options.xff_num_trusted_hops > 0 {
            self.headers.insert("x-forwarded-for".to_owned());
        }
    }
}

/// Compilation state for one policy: its name (for errors) and the options.
struct Ctx<'a> {
    policy: &'a str,
    options: &'a PolicyOptions,
}

impl Ctx<'_> {
    fn structure(&self, at: String, problem: &'static str) -> PolicyError {
        PolicyError::Structure {
            policy: self.policy.to_owned(),
            at,
            problem,
        }
    }

    /// Checks a value list (no empty strings) and returns it, empty when absent.
    fn list<'s>(
        &self,
        values: &'s Option<Vec<String>>,
        at: &str,
    ) -> Result<&'s [String], PolicyError> {
        let values = values.as_deref().unwrap_or_default();
        if let Some(i) = values.iter().position(String::is_empty) {
            return Err(PolicyError::EmptyValue {
                policy: self.policy.to_owned(),
                at: format!("{at}[{i}]"),
            });
        }
        Ok(values)
    }

    /// Builds a field from a `values`/`notValues` pair (the members `{at}.{name}` and
    /// `{at}.{not_name}`) with a per-value compiler, which gets the value and its location
    /// (`{at}.{name}[i]`) for its error. `None` when both lists are empty.
    ///
    /// Why a function pointer and the non-generic [`Ctx::located`]: this is called from 26 places;
    /// with a closure per place each call would be its own copy of the whole loop (about 1 KB each
    /// in the module); this way one copy per matcher type remains, and only the conversion loop.
    fn field<M>(
        &self,
        at: &str,
        (values, name): (&Option<Vec<String>>, &str),
        (not_values, not_name): (&Option<Vec<String>>, &str),
        one: fn(&Self, &str, String) -> Result<M, PolicyError>,
    ) -> Result<Option<Field<M>>, PolicyError> {
        let Some([v, n]) = self.located(at, (values, name), (not_values, not_name))? else {
            return Ok(None);
        };
        let mut field = Field {
            values: Vec::with_capacity(v.len()),
            not_values: Vec::with_capacity(n.len()),
        };
        for (s, at) in v {
            field.values.push(one(self, s, at)?);
        }
        for (s, at) in n {
            field.not_values.push(one(self, s, at)?);
        }
        Ok(Some(field))
    }

    /// The checked lists of a `values`/`notValues` pair, each value with its location; `None`
    /// when both are empty (see [`Ctx::field`]).
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn located<'s>(
        &self,
        at: &str,
        (values, name): (&'s Option<Vec<String>>, &str),
        (not_values, not_name): (&'s Option<Vec<String>>, &str),
    ) -> Result<Option<[Vec<(&'s str, String)>; 2]>, PolicyError> {
        let values_at = format!("{at}.{name}");
        let not_values_at = format!("{at}.{not_name}");
        let v = self.list(values, &values_at)?;
        let n = self.list(not_values, &not_values_at)?;
        if v.is_empty() && n.is_empty() {
            return Ok(None);
        }
        let with_at = |list: &'s [String], list_at: &str| -> Vec<(&'s str, String)> {
            list.iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), format!("{list_at}[{i}]")))
                .collect()
        };
        Ok(Some([with_at(v, &values_at), with_at(n, &not_values_at)]))
    }

    fn principal(&self, value: &str, _at: String) -> Result<PrincipalPattern, PolicyError> {
        Ok(PrincipalPattern::new(value))
    }

    fn request_principal(
        &self,
        value: &str,
        _at: String,
    ) -> Result<RequestPrincipalPattern, PolicyError> {
        Ok(RequestPrincipalPattern::new(value))
    }

    fn namespace(&self, value: &str, _at: String) -> Result<NamespacePattern, PolicyError> {
        Ok(NamespacePattern::new(value))
    }

    fn trust_domain(&self, value: &str, _at: String) -> Result<TrustDomainPattern, PolicyError> {
        Ok(TrustDomainPattern::new(value))
    }

    fn host(&self, value: &str, _at: String) -> Result<HostPattern, PolicyError> {
        Ok(HostPattern::new(value, self.options.hosts_ignore_port))
    }

    /// Exact string semantics (claims, SNI): [`StrPattern::string`].
    fn string(&self, value: &str, _at: String) -> Result<StrPattern, PolicyError> {
        Ok(StrPattern::string(value))
    }

    /// Header semantics (methods, headers): [`StrPattern::header`].
    fn header(&self, value: &str, _at: String) -> Result<StrPattern, PolicyError> {
        Ok(StrPattern::header(value))
    }

    fn binding(&self, value: &str, at: String) -> Result<BindingPattern, PolicyError> {
        if value == "*" {
            return Ok(BindingPattern::Any);
        }
        Binding::parse(value)
            .map(BindingPattern::Is)
            .ok_or_else(|| PolicyError::BadBinding {
                policy: self.policy.to_owned(),
                at,
                value: value.to_owned(),
            })
    }

    fn cidr(&self, value: &str, at: String) -> Result<Cidr, PolicyError> {
        Cidr::parse(value).map_err(|reason| PolicyError::BadCidr {
            policy: self.policy.to_owned(),
            at,
            value: value.to_owned(),
            reason,
        })
    }

    fn port(&self, value: &str, at: String) -> Result<u16, PolicyError> {
        let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        match value.parse::<u16>() {
            Ok(p) if ok => Ok(p),
            _ => Err(PolicyError::BadPort {
                policy: self.policy.to_owned(),
                at,
                value: value.to_owned(),
            }),
        }
    }

    fn path(&self, value: &str, at: String) -> Result<PathPattern, PolicyError> {
        if contains_template(value) {
            PathTemplate::parse(value)
                .map(PathPattern::Template)
                .map_err(|reason| PolicyError::BadPathTemplate {
                    policy: self.policy.to_owned(),
                    at,
                    value: value.to_owned(),
                    reason,
                })
        } else {
            Ok(PathPattern::Str(StrPattern::string(value)))
        }
    }

    fn service_account(
        &self,
        value: &str,
        at: String,
    ) -> Result<ServiceAccountPattern, PolicyError> {
        let bad = |reason| PolicyError::BadServiceAccount {
            policy: self.policy.to_owned(),
            at: at.clone(),
            value: value.to_owned(),
            reason,
        };
        if value.len() > MAX_SERVICE_ACCOUNT_LEN {
            return Err(bad("longer than 320 characters"));
        }
        if value.contains('*') {
            return Err(bad("wildcards are not allowed"));
        }
        match value.split_once('/') {
            None => Err(bad(
                "must be \"<namespace>/<name>\": a meshguard policy has no namespace to default to",
            )),
            Some((ns, sa)) => {
                if sa.contains('/') {
                    Err(bad("must be \"<namespace>/<name>\" with exactly one '/'"))
                } else if ns.is_empty() {
                    Err(bad("the namespace is empty"))
                } else if sa.is_empty() {
                    Err(bad("the service account name is empty"))
                } else {
                    Ok(ServiceAccountPattern::new(ns, sa))
                }
            }
        }
    }
}

impl Ctx<'_> {
    /// A `values`/`notValues` pair with Istio's trust-domain migration applied (mesh config
    /// `trustDomain` + `trustDomainAliases`); the lists are checked first, so an error names
    /// the value as written.
    #[allow(clippy::type_complexity)]
    fn with_aliases(
        &self,
        at: &str,
        (values, name): (&Option<Vec<String>>, &str),
        (not_values, not_name): (&Option<Vec<String>>, &str),
        expand: fn(&[String], &[String]) -> Vec<String>,
    ) -> Result<(Option<Vec<String>>, Option<Vec<String>>), PolicyError> {
        self.list(values, &format!("{at}.{name}"))?;
        self.list(not_values, &format!("{at}.{not_name}"))?;
        let bundle = self.trust_domains();
        let apply = |list: &Option<Vec<String>>| list.as_deref().map(|v| expand(v, &bundle));
        Ok((apply(values), apply(not_values)))
    }

    /// Istio's trust-domain bundle: the trust domain, then its aliases.
    fn trust_domains(&self) -> Vec<String> {
        std::iter::once(&self.options.trust_domain)
            .chain(&self.options.trust_domain_aliases)
            .cloned()
            .collect()
    }
}

/// Istio's `Bundle.ReplaceTrustDomainAliases` (pilot/pkg/security/trustdomain/bundle.go): a
/// principal `<td>/ns/<ns>/sa/<sa>` whose trust domain is in the bundle (with Istio's `*`
/// prefix/suffix matching either way), or is `cluster.local`, stands for the same workload in
/// every trust domain of the bundle. Other values are kept as written.
fn principals_with_aliases(values: &[String], bundle: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(values.len());
    for principal in values {
        let parts: Vec<&str> = principal.split('/').collect();
        let td = match parts.as_slice() {
            [td, _, _, _, _] if *td != "*" => *td,
            _ => {
                out.push(principal.clone());
                continue;
            }
        };
        if !(bundle.iter().any(|b| td_match(td, b)) || td == super::DEFAULT_TRUST_DOMAIN) {
            out.push(principal.clone());
            continue;
        }
        let rest = parts.get(1..).unwrap_or_default().join("/");
        let mut expanded: Vec<String> = Vec::new();
        for b in bundle {
            let p = if suffix_match(b, td) {
                principal.clone()
            } else {
                format!("{b}/{rest}")
            };
            if !expanded.contains(&p) {
                expanded.push(p);
            }
        }
        out.extend(expanded);
    }
    out
}

/// Istio's `Bundle.ExpandTrustDomainAliases`: a value that is one of the bundle's trust domains
/// stands for all of them.
fn trust_domains_with_aliases(values: &[String], bundle: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        let add: &[String] = if bundle.contains(v) {
            bundle
        } else {
            std::slice::from_ref(v)
        };
        for a in add {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
    }
    out
}

/// Istio's `trustdomain.stringMatch` for one pattern: equal, `*`, or a `*` prefix or suffix
/// match with the pattern on either side.
fn td_match(a: &str, b: &str) -> bool {
    a == b
        || b == "*"
        || prefix_match(a, b)
        || prefix_match(b, a)
        || suffix_match(a, b)
        || suffix_match(b, a)
}

fn prefix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_suffix('*').is_some_and(|p| a.starts_with(p))
}

fn suffix_match(a: &str, pattern: &str) -> bool {
    pattern.strip_prefix('*').is_some_and(|p| a.ends_with(p))
}

fn compile_policy(
    spec: &PolicySpec,
    options: &PolicyOptions,
    tracker: &mut Tracker,
) -> Result<CompiledPolicy, PolicyError> {
    let policy = spec.name.as_str();
    if spec.action == Action::Custom {
        return Err(PolicyError::Custom {
            policy: policy.to_owned(),
            provider: spec.provider.as_ref().and_then(|p| p.name.clone()),
        });
    }
    if spec.provider.is_some() {
        return Err(PolicyError::ProviderWithoutCustom {
            policy: policy.to_owned(),
        });
    }
    for (present, field) in [
        (spec.selector.is_some(), "selector"),
        (spec.target_ref.is_some(), "targetRef"),
        (spec.target_refs.is_some(), "targetRefs"),
    ] {
        if present {
            return Err(PolicyError::ResourceField {
                policy: policy.to_owned(),
                field,
            });
        }
    }
    let rules_spec = spec.rules.as_deref().unwrap_or_default();
    if spec.action == Action::Deny && rules_spec.is_empty() {
        return Err(PolicyError::DenyWithoutRules {
            policy: policy.to_owned(),
        });
    }
    let ctx = Ctx { policy, options };
    let mut rules = Vec::with_capacity(rules_spec.len());
    for (i, rule) in rules_spec.iter().enumerate() {
        rules.push(compile_rule(&ctx, rule, i, tracker)?);
    }
    Ok(CompiledPolicy {
        name: policy.to_owned(),
        action: spec.action,
        dry_run: spec.dry_run,
        rules,
    })
}

fn compile_rule(
    ctx: &Ctx<'_>,
    rule: &RuleSpec,
    i: usize,
    tracker: &mut Tracker,
) -> Result<Rule, PolicyError> {
    let mut from = Vec::new();
    if let Some(list) = &rule.from {
        if list.is_empty() {
            return Err(ctx.structure(format!("rules[{i}].from"), "`from` must not be empty"));
        }
        for (j, entry) in list.iter().enumerate() {
            let at = format!("rules[{i}].from[{j}].source");
            let Some(source) = &entry.source else {
                return Err(ctx.structure(at, "`from.source` must not be nil"));
            };
            from.push(compile_source(ctx, source, &at, tracker)?);
        }
    }
    let mut to = Vec::new();
    if let Some(list) = &rule.to {
        if list.is_empty() {
            return Err(ctx.structure(format!("rules[{i}].to"), "`to` must not be empty"));
        }
        for (j, entry) in list.iter().enumerate() {
            let at = format!("rules[{i}].to[{j}].operation");
            let Some(op) = &entry.operation else {
                return Err(ctx.structure(at, "`to.operation` must not be nil"));
            };
            to.push(compile_operation(ctx, op, &at, tracker)?);
        }
    }
    let mut when = Vec::new();
    for (j, cond) in rule.when.as_deref().unwrap_or_default().iter().enumerate() {
        when.push(compile_condition(
            ctx,
            cond,
            &format!("rules[{i}].when[{j}]"),
            tracker,
        )?);
    }
    Ok(Rule { from, to, when })
}

fn compile_source(
    ctx: &Ctx<'_>,
    s: &SourceSpec,
    at: &str,
    tracker: &mut Tracker,
) -> Result<Vec<Cond>, PolicyError> {
    let has = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let sa = has(&s.service_accounts) || has(&s.not_service_accounts);
    if sa
        && (has(&s.principals)
            || has(&s.not_principals)
            || has(&s.namespaces)
            || has(&s.not_namespaces))
    {
        return Err(ctx.structure(
            at.to_owned(),
            "cannot set serviceAccounts with namespaces or principals",
        ));
    }
    for (list, name) in [
        (&s.service_accounts, "serviceAccounts"),
        (&s.not_service_accounts, "notServiceAccounts"),
    ] {
        if list
            .as_ref()
            .is_some_and(|v| v.len() > MAX_SERVICE_ACCOUNTS)
        {
            return Err(ctx.structure(format!("{at}.{name}"), "may not have more than 16 values"));
        }
    }
    let mut conds = Vec::new();
    let (principals, not_principals) = ctx.with_aliases(
        at,
        (&s.principals, "principals"),
        (&s.not_principals, "notPrincipals"),
        principals_with_aliases,
    )?;
    if let Some(field) = ctx.field(
        at,
        (&principals, "principals"),
        (&not_principals, "notPrincipals"),
        Ctx::principal,
    )? {
        tracker.peer(ctx.options);
        conds.push(Cond::Principal(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&s.request_principals, "requestPrincipals"),
        (&s.not_request_principals, "notRequestPrincipals"),
        Ctx::request_principal,
    )? {
        conds.push(Cond::RequestPrincipal(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&s.namespaces, "namespaces"),
        (&s.not_namespaces, "notNamespaces"),
        Ctx::namespace,
    )? {
        tracker.peer(ctx.options);
        conds.push(Cond::Namespace(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&s.service_accounts, "serviceAccounts"),
        (&s.not_service_accounts, "notServiceAccounts"),
        Ctx::service_account,
    )? {
        tracker.peer(ctx.options);
        conds.push(Cond::ServiceAccount(field));
    }
    let (trust_domains, not_trust_domains) = ctx.with_aliases(
        at,
        (&s.trust_domains, "trustDomains"),
        (&s.not_trust_domains, "notTrustDomains"),
        trust_domains_with_aliases,
    )?;
    if let Some(field) = ctx.field(
        at,
        (&trust_domains, "trustDomains"),
        (&not_trust_domains, "notTrustDomains"),
        Ctx::trust_domain,
    )? {
        tracker.peer(ctx.options);
        conds.push(Cond::TrustDomain(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&s.ip_blocks, "ipBlocks"),
        (&s.not_ip_blocks, "notIpBlocks"),
        Ctx::cidr,
    )? {
        tracker.reads.direct_ip = true;
        conds.push(Cond::SourceIp(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&s.remote_ip_blocks, "remoteIpBlocks"),
        (&s.not_remote_ip_blocks, "notRemoteIpBlocks"),
        Ctx::cidr,
    )? {
        tracker.remote_ip(ctx.options);
        conds.push(Cond::RemoteIp(field));
    }
    if conds.is_empty() {
        return Err(ctx.structure(at.to_owned(), "`from.source` must not be empty"));
    }
    Ok(conds)
}

fn compile_operation(
    ctx: &Ctx<'_>,
    o: &OperationSpec,
    at: &str,
    tracker: &mut Tracker,
) -> Result<Vec<Cond>, PolicyError> {
    let mut conds = Vec::new();
    if let Some(field) = ctx.field(
        at,
        (&o.hosts, "hosts"),
        (&o.not_hosts, "notHosts"),
        Ctx::host,
    )? {
        conds.push(Cond::Host(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&o.ports, "ports"),
        (&o.not_ports, "notPorts"),
        Ctx::port,
    )? {
        conds.push(Cond::DestinationPort(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&o.methods, "methods"),
        (&o.not_methods, "notMethods"),
        Ctx::header,
    )? {
        conds.push(Cond::Method(field));
    }
    if let Some(field) = ctx.field(
        at,
        (&o.paths, "paths"),
        (&o.not_paths, "notPaths"),
        Ctx::path,
    )? {
        tracker.reads.path = true;
        conds.push(Cond::Path(field));
    }
    if conds.is_empty() {
        return Err(ctx.structure(at.to_owned(), "`to.operation` must not be empty"));
    }
    Ok(conds)
}

fn compile_condition(
    ctx: &Ctx<'_>,
    c: &ConditionSpec,
    at: &str,
    tracker: &mut Tracker,
) -> Result<Cond, PolicyError> {
    let key_at = format!("{at}.key");
    if c.key.is_empty() {
        return Err(ctx.structure(key_at, "`key` must not be empty"));
    }
    let key = ConditionKey::parse(&c.key).map_err(|e| {
        let (policy, at, key) = (ctx.policy.to_owned(), key_at.clone(), c.key.clone());
        match e {
            KeyError::Malformed(reason) => PolicyError::BadKey {
                policy,
                at,
                key,
                reason,
            },
            KeyError::Unsupported(reason) => PolicyError::UnsupportedKey {
                policy,
                at,
                key,
                reason,
            },
            KeyError::Unknown => PolicyError::UnknownKey { policy, at, key },
        }
    })?;
    let no_values = || PolicyError::NoValues {
        policy: ctx.policy.to_owned(),
        at: at.to_owned(),
        key: c.key.clone(),
    };
    macro_rules! field {
        ($one:expr) => {
            field!($one, (c.values.clone(), c.not_values.clone()))
        };
        ($one:expr, $lists:expr) => {{
            let (values, not_values) = $lists;
            ctx.field(at, (&values, "values"), (&not_values, "notValues"), $one)?
                .ok_or_else(no_values)?
        }};
    }
    let aliased = |expand| {
        ctx.with_aliases(
            at,
            (&c.values, "values"),
            (&c.not_values, "notValues"),
            expand,
        )
    };
    let cond = match key {
        ConditionKey::SourceIp => {
            tracker.reads.direct_ip = true;
            Cond::SourceIp(field!(Ctx::cidr))
        }
        ConditionKey::RemoteIp => {
            tracker.remote_ip(ctx.options);
            Cond::RemoteIp(field!(Ctx::cidr))
        }
        ConditionKey::DestinationIp => Cond::DestinationIp(field!(Ctx::cidr)),
        ConditionKey::DestinationPort => Cond::DestinationPort(field!(Ctx::port)),
        ConditionKey::SourceNamespace => {
            tracker.peer(ctx.options);
            Cond::Namespace(field!(Ctx::namespace))
        }
        ConditionKey::SourcePrincipal => {
            tracker.peer(ctx.options);
            Cond::Principal(field!(Ctx::principal, aliased(principals_with_aliases)?))
        }
        ConditionKey::SourceServiceAccount => {
            tracker.peer(ctx.options);
            Cond::ServiceAccount(field!(Ctx::service_account))
        }
        ConditionKey::SourceTrustDomain => {
            tracker.peer(ctx.options);
            Cond::TrustDomain(field!(
                Ctx::trust_domain,
                aliased(trust_domains_with_aliases)?
            ))
        }
        ConditionKey::RequestPrincipal => Cond::RequestPrincipal(field!(Ctx::request_principal)),
        ConditionKey::Audiences => Cond::Claim {
            path: vec!["aud".to_owned()],
            split_spaces: false,
            field: field!(Ctx::string),
        },
        ConditionKey::Presenter => Cond::Claim {
            path: vec!["azp".to_owned()],
            split_spaces: false,
            field: field!(Ctx::string),
        },
        ConditionKey::Sni => Cond::Sni(field!(Ctx::string)),
        ConditionKey::AuthBinding => Cond::Binding(field!(Ctx::binding)),
        ConditionKey::Header { name, per_element } => {
            tracker.headers.insert(name.clone());
            Cond::Header {
                name,
                per_element,
                field: field!(Ctx::header),
            }
        }
        ConditionKey::Claim(path) => {
            let split_spaces = match path.as_slice() {
                [single] => {
                    DEFAULT_SPACE_DELIMITED.contains(&single.as_str())
                        || ctx
                            .options
                            .space_delimited_claims
                            .iter()
                            .any(|c| c == single)
                }
                _ => false,
            };
            Cond::Claim {
                path,
                split_spaces,
                field: field!(Ctx::string),
            }
        }
    };
    Ok(cond)
}
