//! [`PluginConfig`] → [`CompiledConfig`]: every check and every precomputation happens here.

use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::duration::parse_duration;
use super::model::{JwtRule, PluginConfig, UnknownIssuer};
use crate::dpop::{self, DpopRule, replay::ReplayCache};
use crate::extract::{Locations, Source};
use crate::jose::{self, Algorithm, AlgorithmSet, Jwks, TokenLimits, Validation};
use crate::jwks::{self, JwksUri, discovery_uri};
use crate::policy::{self, ForwardedClientCert, Policies, PolicyOptions, PolicySpec};

/// Envoy RBAC's 403 body.
pub const DEFAULT_FORBIDDEN_BODY: &str = policy::DEFAULT_DENY_BODY;
/// The token locations of a rule that names none (Istio and Envoy): `Authorization: Bearer <t>`
/// ...
pub const DEFAULT_TOKEN_HEADER: &str = "Authorization";
pub const DEFAULT_TOKEN_PREFIX: &str = "Bearer ";
/// The token location a rule with `dpop` adds: `Authorization: DPoP <token>` (RFC 9449 §7.1).
pub const DPOP_TOKEN_PREFIX: &str = "DPoP ";
/// ... and the `access_token` query parameter.
pub const DEFAULT_TOKEN_PARAM: &str = "access_token";
/// Bounds for `maxTokenBytes`: below a minimal JWT nothing works; above 64 KiB Envoy's own
/// header limits would have refused the request anyway.
const MIN_TOKEN_BYTES: usize = 64;
const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Bounds for `clockSkewSeconds` (one day) and `jwksCacheDurationSeconds` (one year).
const MAX_CLOCK_SKEW_SECS: u64 = 86_400;
const MAX_CACHE_SECS: u64 = 365 * 86_400;
/// Headers a claim must never be written to: hop-by-hop or framing headers (writing them
/// would corrupt the request) and `host`.
const FORBIDDEN_OUTPUT_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// The compiled configuration: immutable, built once per VM, shared as `Rc` by every request.
#[derive(Debug)]
pub struct CompiledConfig {
    /// One per `jwtRules` entry, in order; rule indices below refer to this list.
    pub rules: Vec<CompiledRule>,
    /// Every token location of every rule, merged (a location shared by rules is read once).
    pub locations: Locations,
    /// Lower-cased output headers of all rules: removed from EVERY request before anything
    /// else, so a client can never spoof a claim header.
    pub strip_headers: Vec<String>,
    pub unknown_issuer: UnknownIssuer,
    pub token_limits: TokenLimits,
    /// Whether a 401 has a text body (the reason).
    pub unauthorized_body: bool,
    pub forbidden_body: String,
    /// Capacity of each VM's verified-token cache (0: no cache).
    pub token_cache_entries: usize,
    /// The compiled authorization policies (empty: every authenticated request passes).
    pub policies: Policies,
    /// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is not
    /// authenticated: its tokens are ignored and the policies see no claims (Istio configures
    /// Envoy's `jwt_authn` with `bypass_cors_preflight: true`).
    pub bypass_cors_preflight: bool,
    /// The DPoP replay cache, when some rule has `dpop`.
    pub dpop_replay: Option<ReplayCache>,
    /// The `algs` of a DPoP challenge (RFC 9449 §7.1): every DPoP rule's proof algorithms,
    /// space-separated; empty without DPoP rules.
    pub dpop_algs: String,
}

/// One `jwtRules` entry, compiled.
#[derive(Debug)]
pub struct CompiledRule {
    pub issuer: String,
    pub validation: Validation,
    pub keys: KeySource,
    pub claim_headers: Vec<ClaimHeader>,
    /// Lower-cased `outputPayloadToHeader`.
    pub payload_header: Option<String>,
    pub forward_original_token: bool,
    /// How long a request may wait for this rule's keys (Istio `timeout`, default 5 s); also
    /// the JWKS fetch timeout.
    pub timeout: Duration,
    pub space_delimited_claims: Vec<String>,
    /// `requireCertificateBinding`: an unbound token is refused (a bound one is always checked).
    pub require_certificate_binding: bool,
    /// `dpop`: the rule reads `Authorization: DPoP` and checks proofs.
    pub dpop: Option<DpopRule>,
    /// `spiffe.trustDomain`: the rule verifies JWT-SVIDs of this trust domain (its keys are a
    /// SPIFFE bundle's `jwt-svid` keys; a token without `iss` is attributed by its `sub`).
    pub spiffe_trust_domain: Option<String>,
}

impl CompiledRule {
    /// The rule's name in metrics and logs: its issuer, or for a JWT-SVID rule without one
    /// `spiffe://<trust-domain>`.
    pub fn label(&self) -> String {
        match &self.spiffe_trust_domain {
            Some(td) if self.issuer.is_empty() => format!("spiffe://{td}"),
            _ => self.issuer.clone(),
        }
    }
}

/// Where a rule's keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// `jwks`: decoded at configure time.
    Inline(Rc<Jwks>),
    /// `jwksUri`: fetched through `cluster`.
    Remote(RemoteSource),
    /// Neither: `<issuer>/.well-known/openid-configuration` is fetched through `cluster` and
    /// its `jwks_uri` then through the same cluster.
    Discovery(RemoteSource),
}

/// A fetched document: which cluster, which `:authority`/`:path`, and how long it is cached.
#[derive(Debug)]
pub struct RemoteSource {
    /// For `Remote`, the `jwksUri`; for `Discovery`, the discovery document's URI.
    pub uri: JwksUri,
    pub uri_text: String,
    pub cluster: String,
    pub cache_duration_secs: u64,
}

/// `outputClaimToHeaders` entry: the lower-cased header and the claim path (`a.b.c` split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub header: String,
    pub claim: Vec<String>,
}

impl CompiledConfig {
    /// Parses and compiles the plugin configuration (JSON bytes). Empty configuration means
    /// "no rules, no policies": every request passes, output headers are not stripped.
    pub fn from_json(bytes: &[u8]) -> Result<CompiledConfig, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ConfigError::new("", "configuration is not UTF-8"))?;
        let text = text.trim();
        // from_slice, not from_str (the text is valid UTF-8 either way, so the result and the
        // error positions are the same): the JWKS and token parsers read slices, and one reader
        // type means one copy of serde_json's parser in the module instead of two (~10 KB).
        let config: PluginConfig = if text.is_empty() {
            serde_json::from_slice(b"{}")
        } else {
            serde_json::from_slice(text.as_bytes())
        }
        .map_err(|e| ConfigError::new("", format!("invalid configuration JSON: {e}")))?;
        Self::compile(config)
    }

    /// Compiles an already parsed configuration.
    pub fn compile(config: PluginConfig) -> Result<CompiledConfig, ConfigError> {
        let mut token_limits = TokenLimits::default();
        if let Some(max) = config.max_token_bytes {
            if !(MIN_TOKEN_BYTES..=MAX_TOKEN_BYTES).contains(&max) {
                return Err(ConfigError::new(
                    "maxTokenBytes",
                    format!("{max} is outside [{MIN_TOKEN_BYTES}, {MAX_TOKEN_BYTES}]"),
                ));
            }
            token_limits.max_token_bytes = max;
        }
        let token_cache_entries = config
            .token_cache_entries
            .unwrap_or(crate::cache::DEFAULT_ENTRIES);
        if token_cache_entries > crate::cache::MAX_ENTRIES {
            return Err(ConfigError::new(
                "tokenCacheEntries",
                format!(
                    "{token_cache_entries} exceeds {}",
                    crate::cache::MAX_ENTRIES
                ),
            ));
        }
        let forbidden_body = config
            .forbidden_body
            .unwrap_or_else(|| DEFAULT_FORBIDDEN_BODY.to_owned());

        let mut rules = Vec::with_capacity(config.jwt_rules.len());
        let mut locations = Locations::default();
        for (index, raw) in config.jwt_rules.into_iter().enumerate() {
            let path = format!("jwtRules[{index}]");
            let rule = JwtRule::deserialize(raw)
                .map_err(|e| ConfigError::new(path.clone(), e.to_string()))?;
            if let Some(first) = rule.issuer.as_ref().and_then(|issuer| {
                rules
                    .iter()
                    .position(|r: &CompiledRule| &r.issuer == issuer)
            }) {
                return Err(ConfigError::new(
                    format!("{path}.issuer"),
                    format!(
                        "{:?} is already the issuer of jwtRules[{first}]: a token is attributed to the rule of its issuer, so issuers must be unique",
                        rule.issuer.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if let Some(td) = rule.spiffe.as_ref().map(|s| &s.trust_domain)
                && let Some(first) = rules
                    .iter()
                    .position(|r| r.spiffe_trust_domain.as_ref() == Some(td))
            {
                return Err(ConfigError::new(
                    format!("{path}.spiffe.trustDomain"),
                    format!(
                        "{td:?} is already the trust domain of jwtRules[{first}]: a JWT-SVID without iss is attributed to the rule of its trust domain, so trust domains must be unique"
                    ),
                ));
            }
            add_locations(&mut locations, &rule, index, &path)?;
            rules.push(compile_rule(rule, &path)?);
        }

        let strip_headers = collect_output_headers(&rules, &locations)?;

        let mut specs = Vec::with_capacity(config.policies.len());
        for (index, raw) in config.policies.into_iter().enumerate() {
            let spec = PolicySpec::deserialize(raw)
                .map_err(|e| ConfigError::new(format!("policies[{index}]"), e.to_string()))?;
            specs.push(spec);
        }
        let bad_td = |td: &String| td.is_empty() || td.contains('/');
        const BAD_TD: &str = "must be a non-empty trust domain without '/'";
        if bad_td(&config.trust_domain) {
            return Err(ConfigError::new("trustDomain", BAD_TD));
        }
        if let Some(i) = config.trust_domain_aliases.iter().position(bad_td) {
            return Err(ConfigError::new(format!("trustDomainAliases[{i}]"), BAD_TD));
        }
        // Istio's per-rule spaceDelimitedClaims apply to the claims the policies read; the
        // policy engine takes one list, so the rules' lists are merged into the options'.
        let mut options = PolicyOptions {
            xff_num_trusted_hops: config.trusted_xff_hops,
            space_delimited_claims: Vec::new(),
            forwarded_client_cert: config.trust_xfcc.then(ForwardedClientCert::default),
            path_normalization: config.path_normalization,
            hosts_ignore_port: config.hosts_ignore_port,
            trust_domain: config.trust_domain,
            trust_domain_aliases: config.trust_domain_aliases,
        };
        for rule in &rules {
            for claim in &rule.space_delimited_claims {
                if !options.space_delimited_claims.contains(claim) {
                    options.space_delimited_claims.push(claim.clone());
                }
            }
        }
        let policies = policy::compile(&specs, &options)
            .map_err(|e| ConfigError::new("policies", e.to_string()))?;

        let mut dpop_algs = AlgorithmSet::empty();
        for rule in &rules {
            if let Some(dpop) = &rule.dpop {
                for alg in dpop.algorithms.iter() {
                    dpop_algs.insert(alg);
                }
            }
        }
        let dpop_replay = if dpop_algs.is_empty() {
            if config.dpop_replay_cache_entries.is_some() {
                return Err(ConfigError::new(
                    "dpopReplayCacheEntries",
                    "only applies when a jwtRules entry has dpop",
                ));
            }
            None
        } else {
            let entries = config
                .dpop_replay_cache_entries
                .unwrap_or(dpop::replay::DEFAULT_ENTRIES);
            if !(1..=MAX_DPOP_REPLAY_ENTRIES).contains(&entries) {
                return Err(ConfigError::new(
                    "dpopReplayCacheEntries",
                    format!("{entries} is not within 1..={MAX_DPOP_REPLAY_ENTRIES}"),
                ));
            }
            Some(ReplayCache::new(entries))
        };
        let dpop_algs = dpop_algs
            .iter()
            .map(Algorithm::as_str)
            .collect::<Vec<_>>()
            .join(" ");

        Ok(CompiledConfig {
            rules,
            locations,
            strip_headers,
            unknown_issuer: config.unknown_issuer,
            token_limits,
            unauthorized_body: config.unauthorized_body,
            forbidden_body,
            token_cache_entries,
            policies,
            bypass_cors_preflight: config.bypass_cors_preflight,
            dpop_replay,
            dpop_algs,
        })
    }

    /// Whether a token found at `source` was presented under the DPoP authorization scheme.
    pub fn presents_dpop(&self, source: Source) -> bool {
        match source {
            Source::Header(i) => self
                .locations
                .headers
                .get(i)
                .is_some_and(|h| is_dpop_location(&h.name, &h.prefix)),
            _ => false,
        }
    }

    /// The rule whose `issuer` is exactly `iss`.
    pub fn rule_for_issuer(&self, iss: &str) -> Option<usize> {
        if iss.is_empty() {
            return None;
        }
        self.rules.iter().position(|r| r.issuer == iss)
    }

    /// Whether any output header has to be stripped / could be written.
    pub fn has_outputs(&self) -> bool {
        !self.strip_headers.is_empty()
    }
}

fn is_dpop_location(lower_name: &str, prefix: &str) -> bool {
    lower_name == "authorization" && prefix == DPOP_TOKEN_PREFIX
}

fn add_locations(
    locations: &mut Locations,
    rule: &JwtRule,
    index: usize,
    path: &str,
) -> Result<(), ConfigError> {
    if rule.dpop.is_some() {
        // RFC 9449 §7.1: the access token of a DPoP request travels under this scheme.
        locations.add_header(
            DEFAULT_TOKEN_HEADER.to_ascii_lowercase(),
            DPOP_TOKEN_PREFIX.to_owned(),
            index,
        );
    }
    let none_given =
        rule.from_headers.is_empty() && rule.from_params.is_empty() && rule.from_cookies.is_empty();
    if none_given {
        locations.add_header(
            DEFAULT_TOKEN_HEADER.to_ascii_lowercase(),
            DEFAULT_TOKEN_PREFIX.to_owned(),
            index,
        );
        locations.add_param(DEFAULT_TOKEN_PARAM.to_owned(), index);
        return Ok(());
    }
    for (i, header) in rule.from_headers.iter().enumerate() {
        let name = header.name.to_ascii_lowercase();
        check_header_name(&name, &format!("{path}.fromHeaders[{i}].name"))?;
        if is_dpop_location(&name, &header.prefix) {
            return Err(ConfigError::new(
                format!("{path}.fromHeaders[{i}]"),
                "the DPoP authorization scheme is read by the rule's dpop block, not as a token location",
            ));
        }
        locations.add_header(name, header.prefix.clone(), index);
    }
    for (i, name) in rule.from_params.iter().enumerate() {
        if name.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.fromParams[{i}]"),
                "must not be empty",
            ));
        }
        locations.add_param(name.clone(), index);
    }
    for (i, name) in rule.from_cookies.iter().enumerate() {
        let valid = !name.is_empty() && name.bytes().all(is_cookie_name_byte);
        if !valid {
            return Err(ConfigError::new(
                format!("{path}.fromCookies[{i}]"),
                format!("{name:?} is not a valid cookie name (RFC 6265 token)"),
            ));
        }
        locations.add_cookie(name.clone(), index);
    }
    Ok(())
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_cookie_name_byte(b: u8) -> bool {
    is_tchar(b)
}

fn check_header_name(name: &str, path: &str) -> Result<(), ConfigError> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ConfigError::new(
            path,
            format!("{name:?} is not a valid HTTP header name"),
        ));
    }
    Ok(())
}

/// Istio's pattern for output headers: `^[-_A-Za-z0-9]+$`.
fn check_output_header(name: &str, path: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(ConfigError::new(
            path,
            format!("{name:?} must match ^[-_A-Za-z0-9]+$"),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if FORBIDDEN_OUTPUT_HEADERS.contains(&lower.as_str()) {
        return Err(ConfigError::new(
            path,
            format!("{name:?} is a connection or framing header and cannot carry a claim"),
        ));
    }
    Ok(lower)
}

fn compile_rule(rule: JwtRule, path: &str) -> Result<CompiledRule, ConfigError> {
    let issuer = match (&rule.issuer, &rule.spiffe) {
        (Some(issuer), _) if issuer.is_empty() => {
            return Err(ConfigError::new(
                format!("{path}.issuer"),
                "must not be empty",
            ));
        }
        (Some(issuer), _) => issuer.clone(),
        (None, Some(_)) => String::new(),
        (None, None) => {
            return Err(ConfigError::new(
                path,
                "missing field `issuer` (only a rule with spiffe may omit it)",
            ));
        }
    };
    let spiffe_trust_domain = compile_spiffe(&rule, path)?;
    for (i, aud) in rule.audiences.iter().enumerate() {
        if aud.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.audiences[{i}]"),
                "must not be empty",
            ));
        }
    }

    let timeout = match &rule.timeout {
        Some(text) => parse_duration(text)
            .map_err(|e| ConfigError::new(format!("{path}.timeout"), format!("{text:?} {e}")))?,
        None => jwks::DEFAULT_FETCH_TIMEOUT,
    };

    let algorithms = match &rule.algorithms {
        None => AlgorithmSet::all(),
        Some(names) => {
            if names.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.algorithms"),
                    "must not be empty (omit it to allow every supported algorithm)",
                ));
            }
            let mut set = AlgorithmSet::empty();
            for (i, name) in names.iter().enumerate() {
                let alg: Algorithm = name.parse().map_err(|e| {
                    ConfigError::new(
                        format!("{path}.algorithms[{i}]"),
                        format!("{name:?} is not allowed: {e}"),
                    )
                })?;
                set.insert(alg);
            }
            set
        }
    };

    let clock_skew_secs = rule
        .clock_skew_seconds
        .unwrap_or(jose::DEFAULT_CLOCK_SKEW_SECS);
    if clock_skew_secs > MAX_CLOCK_SKEW_SECS {
        return Err(ConfigError::new(
            format!("{path}.clockSkewSeconds"),
            format!("{clock_skew_secs} exceeds {MAX_CLOCK_SKEW_SECS} (one day)"),
        ));
    }
    if rule.max_lifetime_seconds == Some(0) {
        return Err(ConfigError::new(
            format!("{path}.maxLifetimeSeconds"),
            "must be at least 1 (omit it for no limit)",
        ));
    }
    let typ = match &rule.typ {
        None => Vec::new(),
        Some(list) => {
            if list.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.typ"),
                    "must not be empty (omit it to accept any typ)",
                ));
            }
            if let Some(i) = list.iter().position(String::is_empty) {
                return Err(ConfigError::new(
                    format!("{path}.typ[{i}]"),
                    "must not be empty",
                ));
            }
            list.clone()
        }
    };
    if let Some(i) = rule.required_claims.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            format!("{path}.requiredClaims[{i}]"),
            "must not be empty",
        ));
    }
    if let Some(i) = rule
        .space_delimited_claims
        .iter()
        .position(String::is_empty)
    {
        return Err(ConfigError::new(
            format!("{path}.spaceDelimitedClaims[{i}]"),
            "must not be empty",
        ));
    }

    // What the rule leaves out is `Validation::new`'s default (the one definition of each).
    let defaults = Validation::new(issuer.clone());
    let validation = Validation {
        audiences: rule.audiences.clone(),
        algorithms,
        clock_skew_secs,
        require_expiration: rule
            .require_expiration
            .unwrap_or(defaults.require_expiration),
        max_lifetime_secs: rule.max_lifetime_seconds,
        typ,
        required_claims: rule.required_claims.clone(),
        spiffe_trust_domain: spiffe_trust_domain.clone(),
        ..defaults
    };

    let keys = compile_keys(&rule, &issuer, path)?;
    let dpop = compile_dpop(&rule, validation.algorithms, clock_skew_secs, path)?;

    let mut claim_headers = Vec::with_capacity(rule.output_claim_to_headers.len());
    for (i, out) in rule.output_claim_to_headers.iter().enumerate() {
        let header = check_output_header(
            &out.header,
            &format!("{path}.outputClaimToHeaders[{i}].header"),
        )?;
        let claim: Vec<String> = out.claim.split('.').map(str::to_owned).collect();
        if claim.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                format!("{path}.outputClaimToHeaders[{i}].claim"),
                format!("{:?} is not a claim name or a dotted path a.b.c", out.claim),
            ));
        }
        claim_headers.push(ClaimHeader { header, claim });
    }
    let payload_header = match &rule.output_payload_to_header {
        Some(name) => Some(check_output_header(
            name,
            &format!("{path}.outputPayloadToHeader"),
        )?),
        None => None,
    };

    Ok(CompiledRule {
        issuer,
        validation,
        keys,
        claim_headers,
        payload_header,
        forward_original_token: rule.forward_original_token,
        timeout,
        space_delimited_claims: rule.space_delimited_claims,
        require_certificate_binding: rule.require_certificate_binding,
        dpop,
        spiffe_trust_domain,
    })
}

/// Bounds of a SPIFFE bundle's `spiffe_refresh_hint` as the refetch interval, in seconds: the
/// hint is clamped into them as a `Cache-Control: max-age` is (a hint of 0 would refetch on
/// every request, one of a year would never rotate).
pub const SPIFFE_REFRESH_HINT_MIN_SECS: u64 = jwks::MAX_AGE_FLOOR_SECS;
pub const SPIFFE_REFRESH_HINT_MAX_SECS: u64 = jwks::MAX_AGE_CEILING_SECS;

/// The `spiffe` block: a valid trust domain, audiences, `exp` required.
fn compile_spiffe(rule: &JwtRule, path: &str) -> Result<Option<String>, ConfigError> {
    let Some(settings) = &rule.spiffe else {
        return Ok(None);
    };
    let td = &settings.trust_domain;
    if !jose::valid_trust_domain(td) {
        return Err(ConfigError::new(
            format!("{path}.spiffe.trustDomain"),
            format!(
                "{td:?} is not a SPIFFE trust domain name (1 to 255 characters of a-z 0-9 . - _, no scheme or port)"
            ),
        ));
    }
    if rule.audiences.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.audiences"),
            "must not be empty in a rule with spiffe: a JWT-SVID is bound to its audience (JWT-SVID spec §3)",
        ));
    }
    if rule.require_expiration == Some(false) {
        return Err(ConfigError::new(
            format!("{path}.requireExpiration"),
            "cannot be false in a rule with spiffe: a JWT-SVID must have exp (JWT-SVID spec §3)",
        ));
    }
    if rule.jwks.is_none() && rule.jwks_uri.is_none() {
        return Err(ConfigError::new(
            path,
            "a rule with spiffe needs its SPIFFE bundle: jwks (inline) or jwksUri",
        ));
    }
    Ok(Some(td.clone()))
}

/// Most `dpop.maxAgeSeconds` (one hour): a proof is meant for one request, now.
const MAX_DPOP_AGE_SECS: u64 = 3_600;
/// Bounds of `dpopReplayCacheEntries` (1 Mi entries: 24 MiB of shared data).
const MAX_DPOP_REPLAY_ENTRIES: usize = 1 << 20;

fn compile_dpop(
    rule: &JwtRule,
    algorithms: AlgorithmSet,
    skew_secs: u64,
    path: &str,
) -> Result<Option<DpopRule>, ConfigError> {
    let Some(settings) = &rule.dpop else {
        return Ok(None);
    };
    let max_age_secs = settings
        .max_age_seconds
        .unwrap_or(dpop::DEFAULT_MAX_AGE_SECS);
    if !(1..=MAX_DPOP_AGE_SECS).contains(&max_age_secs) {
        return Err(ConfigError::new(
            format!("{path}.dpop.maxAgeSeconds"),
            format!("{max_age_secs} is not within 1..={MAX_DPOP_AGE_SECS}"),
        ));
    }
    let public_origin = match &settings.public_origin {
        None => None,
        Some(text) => Some(dpop::uri::origin(text).ok_or_else(|| {
            ConfigError::new(
                format!("{path}.dpop.publicOrigin"),
                format!("{text:?} is not an http(s) origin such as \"https://api.example.com\""),
            )
        })?),
    };
    Ok(Some(DpopRule {
        required: settings.required,
        max_age_secs,
        skew_secs,
        public_origin,
        algorithms,
    }))
}

fn compile_keys(rule: &JwtRule, issuer: &str, path: &str) -> Result<KeySource, ConfigError> {
    let remote_only = |field: &str| {
        ConfigError::new(
            format!("{path}.{field}"),
            "only applies to a fetched JWKS (jwksUri or OIDC discovery), not to an inline jwks",
        )
    };
    let cache_duration_secs = rule
        .jwks_cache_duration_seconds
        .unwrap_or(jwks::DEFAULT_CACHE_DURATION_SECS);
    if cache_duration_secs == 0 || cache_duration_secs > MAX_CACHE_SECS {
        return Err(ConfigError::new(
            format!("{path}.jwksCacheDurationSeconds"),
            format!("{cache_duration_secs} is outside [1, {MAX_CACHE_SECS}]"),
        ));
    }
    if rule.jwks_cluster.as_ref().is_some_and(String::is_empty) {
        return Err(ConfigError::new(
            format!("{path}.jwksCluster"),
            "must not be empty (omit it for Istio's outbound|<port>||<host>)",
        ));
    }
    match (&rule.jwks, &rule.jwks_uri) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            path,
            "only one of jwks and jwksUri can be set",
        )),
        (Some(jwks), None) => {
            if rule.jwks_cluster.is_some() {
                return Err(remote_only("jwksCluster"));
            }
            if rule.jwks_cache_duration_seconds.is_some() {
                return Err(remote_only("jwksCacheDurationSeconds"));
            }
            let keys = if rule.spiffe.is_some() {
                jose::SpiffeBundle::parse(jwks.as_bytes()).map(|bundle| bundle.jwks)
            } else {
                Jwks::parse(jwks.as_bytes())
            }
            .map_err(|e| ConfigError::new(format!("{path}.jwks"), e.to_string()))?;
            Ok(KeySource::Inline(Rc::new(keys)))
        }
        (None, Some(uri_text)) => {
            let uri = JwksUri::parse(uri_text).map_err(|e| {
                ConfigError::new(format!("{path}.jwksUri"), format!("{uri_text:?} {e}"))
            })?;
            let cluster = rule
                .jwks_cluster
                .clone()
                .unwrap_or_else(|| uri.istio_cluster());
            Ok(KeySource::Remote(RemoteSource {
                uri,
                uri_text: uri_text.clone(),
                cluster,
                cache_duration_secs,
            }))
        }
        (None, None) => {
            let uri_text = discovery_uri(issuer);
            let uri = JwksUri::parse(&uri_text).map_err(|e| {
                ConfigError::new(
                    path,
                    format!(
                        "has neither jwks nor jwksUri, and OIDC discovery needs an http(s) issuer: {issuer:?} {e}",
                    ),
                )
            })?;
            let cluster = rule
                .jwks_cluster
                .clone()
                .unwrap_or_else(|| uri.istio_cluster());
            Ok(KeySource::Discovery(RemoteSource {
                uri,
                uri_text,
                cluster,
                cache_duration_secs,
            }))
        }
    }
}

/// The output headers of every rule, lower-cased and de-duplicated; an output header that is
/// also a token location would be stripped before extraction, so it is refused.
fn collect_output_headers(
    rules: &[CompiledRule],
    locations: &Locations,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let names = rule
            .claim_headers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    format!("jwtRules[{index}].outputClaimToHeaders[{i}].header"),
                    &c.header,
                )
            })
            .chain(
                rule.payload_header
                    .iter()
                    .map(|h| (format!("jwtRules[{index}].outputPayloadToHeader"), h)),
            );
        for (path, name) in names {
            let is_location = locations.headers.iter().any(|h| &h.name == name)
                || (locations.needs_cookie() && name == "cookie");
            if is_location {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "{name:?} is also a token location: it is stripped from every request, so the token could never be read"
                    ),
                ));
            }
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::HeaderLocation;

    const JWKS: &str = meshguard_test_support::ISTIO_SAMPLES_JWKS;

    fn ok(json: &str) -> CompiledConfig {
        CompiledConfig::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(json: &str) -> String {
        CompiledConfig::from_json(json.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("accepted: {json}"))
            .to_string()
    }

    fn inline_rule(extra: &str) -> String {
        format!(
            r#"{{"jwtRules":[{{"issuer":"i","jwks":{}{extra}}}]}}"#,
            serde_json::to_string(JWKS).unwrap()
        )
    }

    #[test]
    fn empty_config_is_valid() {
        for text in ["", "  ", "{}"] {
            let c = ok(text);
            assert!(c.rules.is_empty() && c.strip_headers.is_empty() && c.policies.is_empty());
        }
    }

    /// `Ed25519` (RFC 9864) is another name of EdDSA; ES512 is listable.
    #[test]
    fn algorithms_take_ed25519_and_es512() {
        let c = ok(
            r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","algorithms":["Ed25519","ES512"]}]}"#,
        );
        let set = c.rules[0].validation.algorithms;
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Algorithm::Es512, Algorithm::EdDsa]
        );
    }

    #[test]
    fn full_istio_example_compiles() {
        let c = ok(r#"{
          "jwtRules": [{
            "issuer": "https://idp.example.com",
            "audiences": ["api.example.com"],
            "jwksUri": "https://idp.example.com/.well-known/jwks.json",
            "fromHeaders": [{"name": "Authorization", "prefix": "Bearer "}],
            "fromParams": ["access_token"],
            "fromCookies": ["np_scope_token"],
            "outputClaimToHeaders": [{"header": "X-User-Id", "claim": "sub"}, {"header": "x-roles", "claim": "realm.roles"}],
            "outputPayloadToHeader": "x-jwt-payload",
            "forwardOriginalToken": false,
            "timeout": "1.5s",
            "spaceDelimitedClaims": ["roles"],
            "jwksCluster": "idp",
            "algorithms": ["ES256", "EdDSA", "RS256", "PS256"],
            "clockSkewSeconds": 30,
            "requireExpiration": true,
            "maxLifetimeSeconds": 86400,
            "typ": ["JWT", "at+jwt"],
            "requiredClaims": ["sub"],
            "jwksCacheDurationSeconds": 300
          }],
          "policies": [{"name": "require-jwt", "action": "ALLOW", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}],
          "unknownIssuer": "reject",
          "unauthorizedBody": false,
          "forbiddenBody": "nope",
          "trustedXffHops": 2,
          "trustXfcc": true,
          "pathNormalization": "DECODE_AND_MERGE_SLASHES",
          "hostsIgnorePort": true,
          "trustDomain": "td1",
          "trustDomainAliases": ["cluster.local", "old-td"],
          "bypassCorsPreflight": false
        }"#);
        let rule = &c.rules[0];
        assert_eq!(rule.timeout, Duration::from_millis(1500));
        assert_eq!(rule.validation.clock_skew_secs, 30);
        assert_eq!(rule.validation.audiences, vec!["api.example.com"]);
        assert!(rule.validation.algorithms.contains(Algorithm::EdDsa));
        assert!(!rule.validation.algorithms.contains(Algorithm::Es384));
        assert_eq!(rule.claim_headers[0].header, "x-user-id");
        assert_eq!(rule.claim_headers[1].claim, vec!["realm", "roles"]);
        assert_eq!(
            c.strip_headers,
            vec!["x-user-id", "x-roles", "x-jwt-payload"]
        );
        let KeySource::Remote(source) = &rule.keys else {
            panic!("not remote")
        };
        assert_eq!(source.cluster, "idp");
        assert_eq!(source.uri.path, "/.well-known/jwks.json");
        assert_eq!(source.cache_duration_secs, 300);
        assert_eq!(c.locations.headers[0].name, "authorization");
        assert_eq!(c.locations.cookies[0].name, "np_scope_token");
        assert!(!c.unauthorized_body);
        assert_eq!(c.forbidden_body, "nope");
        assert_eq!(c.policies.names().collect::<Vec<_>>(), vec!["require-jwt"]);
        let options = c.policies.options();
        assert_eq!(options.space_delimited_claims, vec!["roles".to_owned()]);
        assert_eq!(options.xff_num_trusted_hops, 2);
        assert_eq!(
            options.forwarded_client_cert,
            Some(ForwardedClientCert::default())
        );
        assert_eq!(
            options.path_normalization,
            policy::PathNormalization::DecodeAndMergeSlashes
        );
        assert!(options.hosts_ignore_port);
        assert_eq!(options.trust_domain, "td1");
        assert_eq!(options.trust_domain_aliases, ["cluster.local", "old-td"]);
        assert!(!c.bypass_cors_preflight);
    }

    #[test]
    fn istio_defaults_for_policies() {
        let c = ok("{}");
        let options = c.policies.options();
        assert_eq!(options.path_normalization, policy::PathNormalization::Base);
        assert!(!options.hosts_ignore_port);
        assert_eq!(options.trust_domain, "cluster.local");
        assert!(options.trust_domain_aliases.is_empty());
        assert!(c.bypass_cors_preflight);
    }

    #[test]
    fn defaults() {
        let c = ok(&inline_rule(""));
        let rule = &c.rules[0];
        assert_eq!(rule.timeout, jwks::DEFAULT_FETCH_TIMEOUT);
        assert_eq!(rule.validation, Validation::new("i"));
        assert!(matches!(rule.keys, KeySource::Inline(_)));
        assert_eq!(
            c.locations.headers,
            vec![HeaderLocation {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
                rules: vec![0]
            }]
        );
        assert_eq!(c.locations.params[0].name, "access_token");
        assert!(c.locations.cookies.is_empty());
        assert_eq!(c.unknown_issuer, UnknownIssuer::Reject);
        assert!(c.unauthorized_body);
        assert_eq!(c.forbidden_body, DEFAULT_FORBIDDEN_BODY);
        assert_eq!(c.token_limits, TokenLimits::default());
        assert_eq!(c.token_cache_entries, crate::cache::DEFAULT_ENTRIES);
        assert_eq!(ok(r#"{"tokenCacheEntries":0}"#).token_cache_entries, 0);

        let c = ok(r#"{"jwtRules":[{"issuer":"https://idp.example.com:8443/realms/x"}]}"#);
        let KeySource::Discovery(source) = &c.rules[0].keys else {
            panic!("not discovery")
        };
        assert_eq!(source.cluster, "outbound|8443||idp.example.com");
        assert_eq!(
            source.uri.path,
            "/realms/x/.well-known/openid-configuration"
        );
        let c = ok(r#"{"jwtRules":[{"issuer":"i","jwks_uri":"http://idp/k"}]}"#);
        let KeySource::Remote(source) = &c.rules[0].keys else {
            panic!("not remote")
        };
        assert_eq!(source.cluster, "outbound|80||idp");
    }

    #[test]
    fn only_named_locations_when_some_are_given() {
        let c = ok(r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://idp/k","fromCookies":["t"]}]}"#);
        assert!(c.locations.headers.is_empty() && c.locations.params.is_empty());
        assert_eq!(c.locations.cookies[0].name, "t");
    }

    #[test]
    fn shared_locations_are_merged() {
        let c = ok(r#"{"jwtRules":[
            {"issuer":"a","jwksUri":"http://idp/k"},
            {"issuer":"b","jwksUri":"http://idp/k","fromHeaders":[{"name":"AUTHORIZATION","prefix":"Bearer "}]}
        ]}"#);
        assert_eq!(c.locations.headers.len(), 1);
        assert_eq!(c.locations.headers[0].rules, vec![0, 1]);
        assert_eq!(c.rule_for_issuer("b"), Some(1));
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"jwtRule":[]}"#, "unknown field `jwtRule`"),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","outputClaimToHeader":[]}]}"#,
                "jwtRules[0]: unknown field `outputClaimToHeader`",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","algorithms":["RS256","HS256"]}]}"#,
                "jwtRules[0].algorithms[1]: \"HS256\" is not allowed: Jwt header [alg] HMAC",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","algorithms":["none"]}]}"#,
                "jwtRules[0].algorithms[0]: \"none\" is not allowed",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","algorithms":["Ed448"]}]}"#,
                "jwtRules[0].algorithms[0]: \"Ed448\" is not allowed: Jwt header [alg] is not supported",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","algorithms":[]}]}"#,
                "jwtRules[0].algorithms: must not be empty",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","jwks":"{}"}]}"#,
                "jwtRules[0]: only one of jwks and jwksUri can be set",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwks":"{\"keys\":[]}"}]}"#,
                "jwtRules[0].jwks: Jwks has no usable key",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwks":"nope"}]}"#,
                "jwtRules[0].jwks: Jwks is an invalid JSON",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","timeout":"500ms"}]}"#,
                "jwtRules[0].timeout: \"500ms\" uses a Go-style unit",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","timeout":"5"}]}"#,
                "jwtRules[0].timeout: \"5\" must be a protobuf Duration",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"ftp://a/"}]}"#,
                "jwtRules[0].jwksUri: \"ftp://a/\" must start with http://",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i"}]}"#,
                "jwtRules[0]: has neither jwks nor jwksUri",
            ),
            (
                r#"{"jwtRules":[{"issuer":"","jwksUri":"http://a/"}]}"#,
                "jwtRules[0].issuer: must not be empty",
            ),
            (
                r#"{"jwtRules":[{"jwksUri":"http://a/"}]}"#,
                "jwtRules[0]: missing field `issuer`",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/"},{"issuer":"i","jwksUri":"http://b/"}]}"#,
                "jwtRules[1].issuer: \"i\" is already the issuer of jwtRules[0]",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","outputClaimToHeaders":[{"header":"x y","claim":"sub"}]}]}"#,
                "jwtRules[0].outputClaimToHeaders[0].header: \"x y\" must match",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","outputClaimToHeaders":[{"header":"Host","claim":"sub"}]}]}"#,
                "jwtRules[0].outputClaimToHeaders[0].header: \"Host\" is a connection",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","outputClaimToHeaders":[{"header":"x","claim":"a..b"}]}]}"#,
                "jwtRules[0].outputClaimToHeaders[0].claim",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","outputClaimToHeaders":[{"header":"authorization","claim":"sub"}]}]}"#,
                "jwtRules[0].outputClaimToHeaders[0].header: \"authorization\" is also a token location",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","outputPayloadToHeader":"a:b"}]}"#,
                "jwtRules[0].outputPayloadToHeader",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","fromHeaders":[{"name":""}]}]}"#,
                "jwtRules[0].fromHeaders[0].name",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","fromCookies":["a;b"]}]}"#,
                "jwtRules[0].fromCookies[0]",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","fromParams":[""]}]}"#,
                "jwtRules[0].fromParams[0]: must not be empty",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","clockSkewSeconds":100000}]}"#,
                "jwtRules[0].clockSkewSeconds",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","jwksCacheDurationSeconds":0}]}"#,
                "jwtRules[0].jwksCacheDurationSeconds",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","jwksCluster":""}]}"#,
                "jwtRules[0].jwksCluster: must not be empty",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","typ":[]}]}"#,
                "jwtRules[0].typ: must not be empty",
            ),
            (
                r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","maxLifetimeSeconds":0}]}"#,
                "jwtRules[0].maxLifetimeSeconds",
            ),
            (r#"{"unknownIssuer":"allow"}"#, "unknown variant `allow`"),
            (r#"{"maxTokenBytes":10}"#, "maxTokenBytes: 10 is outside"),
            (
                r#"{"tokenCacheEntries":99999999}"#,
                "tokenCacheEntries: 99999999 exceeds",
            ),
            (r#"{"tokenCacheEntries":-1}"#, "invalid configuration JSON"),
            (
                r#"{"policies":[{"name":"p","action":"CUSTOM","rules":[{}]}]}"#,
                "policies: policy \"p\": action CUSTOM",
            ),
            (
                r#"{"policies":[{"name":"p","rulez":[]}]}"#,
                "policies[0]: unknown field `rulez`",
            ),
            (r#"{"policyOptions":{}}"#, "unknown field `policyOptions`"),
            (r#"{"pathNormalization":"FULL"}"#, "unknown variant `FULL`"),
            (
                r#"{"trustDomain":""}"#,
                "trustDomain: must be a non-empty trust domain without '/'",
            ),
            (
                r#"{"trustDomainAliases":["ok","a/b"]}"#,
                "trustDomainAliases[1]: must be a non-empty trust domain without '/'",
            ),
            ("[1]", "invalid configuration JSON"),
            ("\u{0}", "invalid configuration JSON"),
        ];
        for (json, want) in cases {
            let got = err(json);
            assert!(got.contains(want), "{json}\n  got:  {got}\n  want: {want}");
        }
        let inline_with_cluster = inline_rule(r#","jwksCluster":"x""#);
        assert!(err(&inline_with_cluster).contains("jwtRules[0].jwksCluster: only applies"));
        let cookie_output = r#"{"jwtRules":[{"issuer":"i","jwksUri":"http://a/","fromCookies":["t"],"outputClaimToHeaders":[{"header":"Cookie","claim":"sub"}]}]}"#;
        assert!(err(cookie_output).contains("is also a token location"));
        assert!(
            CompiledConfig::from_json(b"\xff")
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
    }

    /// docs/config.md states the defaults and bounds as numbers; they must be the constants.
    #[test]
    fn docs_state_the_defaults() {
        let doc = include_str!("../../../docs/config.md");
        let text = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        // The cells of a field's table row: ["", field, type, default, ...].
        let row = |field: &str| -> Vec<String> {
            let start = format!("| `{field}` |");
            let line = doc
                .lines()
                .find(|l| l.starts_with(&start))
                .unwrap_or_else(|| panic!("docs/config.md has no row for {field}"));
            line.split('|').map(|c| c.trim().to_owned()).collect()
        };
        let default_and_type = |field: &str, default: String, bound: String| {
            let cells = row(field);
            assert_eq!(cells[3], default, "default of {field}");
            assert!(
                cells[2].contains(&bound),
                "{field}: {:?} lacks {bound}",
                cells[2]
            );
        };
        default_and_type(
            "maxTokenBytes",
            format!("`{}`", jose::DEFAULT_MAX_TOKEN_BYTES),
            format!("{MIN_TOKEN_BYTES}–{MAX_TOKEN_BYTES}"),
        );
        default_and_type(
            "tokenCacheEntries",
            format!("`{}`", crate::cache::DEFAULT_ENTRIES),
            crate::cache::MAX_ENTRIES.to_string(),
        );
        default_and_type(
            "timeout",
            format!("`\"{}s\"`", jwks::DEFAULT_FETCH_TIMEOUT.as_secs()),
            "protobuf Duration".to_owned(),
        );
        assert_eq!(jwks::DEFAULT_FETCH_TIMEOUT.subsec_nanos(), 0);
        default_and_type(
            "clockSkewSeconds",
            format!("`{}`", jose::DEFAULT_CLOCK_SKEW_SECS),
            MAX_CLOCK_SKEW_SECS.to_string(),
        );
        default_and_type(
            "jwksCacheDurationSeconds",
            format!("`{}`", jwks::DEFAULT_CACHE_DURATION_SECS),
            MAX_CACHE_SECS.to_string(),
        );
        let hours = |secs: u64| {
            assert_eq!(secs % 3600, 0);
            secs / 3600
        };
        let kib = |bytes: usize| {
            assert_eq!(bytes % 1024, 0);
            bytes / 1024
        };
        for phrase in [
            format!(
                "clamped to [{} s, {} h]",
                jwks::MAX_AGE_FLOOR_SECS,
                hours(jwks::MAX_AGE_CEILING_SECS)
            ),
            format!("up to {} h past expiry", hours(jwks::STALE_IF_ERROR_SECS)),
            format!(
                "exponential backoff {} s → {} s",
                jwks::BACKOFF_INITIAL_SECS,
                jwks::BACKOFF_MAX_SECS
            ),
            format!(
                "at most once per {} s per issuer",
                jwks::UNKNOWN_KID_INTERVAL_SECS
            ),
            format!("body of at most {} KiB", kib(jwks::MAX_BODY_BYTES)),
            format!(
                "tokens over {} KiB are not cached",
                kib(crate::cache::MAX_CACHED_TOKEN_BYTES)
            ),
        ] {
            assert!(
                text.contains(&phrase),
                "docs/config.md no longer says {phrase:?}"
            );
        }
    }
}
