//! [`PluginConfig`] → [`CompiledConfig`]: every check and every precomputation happens here.

use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use super::duration::parse_duration;
use super::model::{JwtRule, PluginConfig, UnknownIssuer};
use crate::jose::{Algorithm, AlgorithmSet, Jwks, TokenLimits, Validation};
use crate::jwks::{JwksUri, discovery_uri};

/// Istio's default JWKS fetch timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Envoy `jwt_authn`'s default JWKS cache duration (10 min).
const DEFAULT_CACHE_SECS: u64 = 600;
/// Envoy `jwt_authn`'s default clock skew.
const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
/// Envoy RBAC's 403 body.
pub const DEFAULT_FORBIDDEN_BODY: &str = "RBAC: access denied";
/// The default location when a rule names none (Istio and Envoy): `Authorization: Bearer <t>`.
const DEFAULT_HEADER: &str = "authorization";
const DEFAULT_PREFIX: &str = "Bearer ";
/// ... and the `access_token` query parameter.
const DEFAULT_PARAM: &str = "access_token";
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

/// All token locations of all rules.
#[derive(Debug, Default)]
pub struct Locations {
    pub headers: Vec<HeaderLocation>,
    pub params: Vec<NamedLocation>,
    pub cookies: Vec<NamedLocation>,
}

/// A header location: lower-cased name, exact prefix, and the rules that read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderLocation {
    pub name: String,
    pub prefix: String,
    pub rules: Vec<usize>,
}

/// A query parameter or cookie location and the rules that read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedLocation {
    pub name: String,
    pub rules: Vec<usize>,
}

impl Locations {
    fn add_header(&mut self, name: String, prefix: String, rule: usize) {
        match self
            .headers
            .iter_mut()
            .find(|h| h.name == name && h.prefix == prefix)
        {
            Some(h) => push_unique(&mut h.rules, rule),
            None => self.headers.push(HeaderLocation {
                name,
                prefix,
                rules: vec![rule],
            }),
        }
    }

    fn add_named(list: &mut Vec<NamedLocation>, name: String, rule: usize) {
        match list.iter_mut().find(|l| l.name == name) {
            Some(l) => push_unique(&mut l.rules, rule),
            None => list.push(NamedLocation {
                name,
                rules: vec![rule],
            }),
        }
    }

    /// Whether the request's `Cookie` header must be read.
    pub fn needs_cookie(&self) -> bool {
        !self.cookies.is_empty()
    }

    /// Whether the request's `:path` must be read for tokens.
    pub fn needs_path(&self) -> bool {
        !self.params.is_empty()
    }
}

fn push_unique(list: &mut Vec<usize>, value: usize) {
    if !list.contains(&value) {
        list.push(value);
    }
}

impl CompiledConfig {
    /// Parses and compiles the plugin configuration (JSON bytes). Empty configuration means
    /// "no rules, no policies": every request passes, output headers are not stripped.
    pub fn from_json(bytes: &[u8]) -> Result<CompiledConfig, ConfigError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ConfigError::new("", "configuration is not UTF-8"))?;
        let text = text.trim();
        let config: PluginConfig = if text.is_empty() {
            serde_json::from_str("{}")
        } else {
            serde_json::from_str(text)
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
        let forbidden_body = config
            .forbidden_body
            .unwrap_or_else(|| DEFAULT_FORBIDDEN_BODY.to_owned());

        let mut rules = Vec::with_capacity(config.jwt_rules.len());
        let mut locations = Locations::default();
        for (index, raw) in config.jwt_rules.into_iter().enumerate() {
            let path = format!("jwtRules[{index}]");
            let rule = JwtRule::deserialize(raw)
                .map_err(|e| ConfigError::new(path.clone(), e.to_string()))?;
            if let Some(first) = rules
                .iter()
                .position(|r: &CompiledRule| r.issuer == rule.issuer)
            {
                return Err(ConfigError::new(
                    format!("{path}.issuer"),
                    format!(
                        "{:?} is already the issuer of jwtRules[{first}]: a token is attributed to the rule of its issuer, so issuers must be unique",
                        rule.issuer
                    ),
                ));
            }
            add_locations(&mut locations, &rule, index, &path)?;
            rules.push(compile_rule(rule, &path)?);
        }

        let strip_headers = collect_output_headers(&rules, &locations)?;

        if let Some(first) = config.policies.first() {
            let _ = first;
            return Err(ConfigError::new(
                "policies",
                "authorization policies are not supported by this build yet: refusing to start rather than ignore them",
            ));
        }
        let _ = (config.trusted_xff_hops, config.trust_xfcc);

        Ok(CompiledConfig {
            rules,
            locations,
            strip_headers,
            unknown_issuer: config.unknown_issuer,
            token_limits,
            unauthorized_body: config.unauthorized_body,
            forbidden_body,
        })
    }

    /// The rule whose `issuer` is exactly `iss`.
    pub fn rule_for_issuer(&self, iss: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.issuer == iss)
    }

    /// Whether any output header has to be stripped / could be written.
    pub fn has_outputs(&self) -> bool {
        !self.strip_headers.is_empty()
    }
}

fn add_locations(
    locations: &mut Locations,
    rule: &JwtRule,
    index: usize,
    path: &str,
) -> Result<(), ConfigError> {
    let none_given =
        rule.from_headers.is_empty() && rule.from_params.is_empty() && rule.from_cookies.is_empty();
    if none_given {
        locations.add_header(DEFAULT_HEADER.to_owned(), DEFAULT_PREFIX.to_owned(), index);
        Locations::add_named(&mut locations.params, DEFAULT_PARAM.to_owned(), index);
        return Ok(());
    }
    for (i, header) in rule.from_headers.iter().enumerate() {
        let name = header.name.to_ascii_lowercase();
        check_header_name(&name, &format!("{path}.fromHeaders[{i}].name"))?;
        locations.add_header(name, header.prefix.clone(), index);
    }
    for (i, name) in rule.from_params.iter().enumerate() {
        if name.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.fromParams[{i}]"),
                "must not be empty",
            ));
        }
        Locations::add_named(&mut locations.params, name.clone(), index);
    }
    for (i, name) in rule.from_cookies.iter().enumerate() {
        let valid = !name.is_empty() && name.bytes().all(is_cookie_name_byte);
        if !valid {
            return Err(ConfigError::new(
                format!("{path}.fromCookies[{i}]"),
                format!("{name:?} is not a valid cookie name (RFC 6265 token)"),
            ));
        }
        Locations::add_named(&mut locations.cookies, name.clone(), index);
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
    if rule.issuer.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.issuer"),
            "must not be empty",
        ));
    }
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
        None => DEFAULT_TIMEOUT,
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

    let clock_skew_secs = rule.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW_SECS);
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

    let validation = Validation {
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        algorithms,
        clock_skew_secs,
        require_expiration: rule.require_expiration.unwrap_or(true),
        max_lifetime_secs: rule.max_lifetime_seconds,
        typ,
        required_claims: rule.required_claims.clone(),
    };

    let keys = compile_keys(&rule, path)?;

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
        issuer: rule.issuer,
        validation,
        keys,
        claim_headers,
        payload_header,
        forward_original_token: rule.forward_original_token,
        timeout,
        space_delimited_claims: rule.space_delimited_claims,
    })
}

fn compile_keys(rule: &JwtRule, path: &str) -> Result<KeySource, ConfigError> {
    let remote_only = |field: &str| {
        ConfigError::new(
            format!("{path}.{field}"),
            "only applies to a fetched JWKS (jwksUri or OIDC discovery), not to an inline jwks",
        )
    };
    let cache_duration_secs = rule
        .jwks_cache_duration_seconds
        .unwrap_or(DEFAULT_CACHE_SECS);
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
            let keys = Jwks::parse(jwks.as_bytes())
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
            let uri_text = discovery_uri(&rule.issuer);
            let uri = JwksUri::parse(&uri_text).map_err(|e| {
                ConfigError::new(
                    path,
                    format!(
                        "has neither jwks nor jwksUri, and OIDC discovery needs an http(s) issuer: {:?} {e}",
                        rule.issuer
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
