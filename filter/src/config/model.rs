//! The serde model of the plugin configuration: exactly what a user writes.
//!
//! Field names follow Istio's `RequestAuthentication.jwtRules` (camelCase, as in the CRD) so a
//! user can paste their rules; our extensions are listed in `docs/config.md`. Every struct
//! denies unknown fields: a misspelt `outputClaimToHeader` must fail at `on_configure`, never be
//! silently ignored (an ignored security setting is a silent hole).

use serde::Deserialize;
use serde_json::Value;

use crate::policy::PathNormalization;

/// The whole plugin configuration (Envoy `configuration` / Istio `WasmPlugin.pluginConfig`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PluginConfig {
    /// Istio `RequestAuthentication.spec.jwtRules`: each entry is a [`JwtRule`], decoded one by
    /// one at compile time so that an error names its index (`jwtRules[1]: unknown field ...`).
    #[serde(default)]
    pub jwt_rules: Vec<Value>,
    /// Istio `AuthorizationPolicy` specs (plus our `name` and `dryRun`). Kept as JSON here and
    /// parsed one by one at compile time, so an error names its index (`policies[2]...`).
    #[serde(default)]
    pub policies: Vec<Value>,
    /// What a token whose `iss` matches no rule means: `reject` (401, Istio) or `ignore`.
    #[serde(default)]
    pub unknown_issuer: UnknownIssuer,
    /// Longest token accepted, in bytes (longer: 401 before any decoding work).
    #[serde(default)]
    pub max_token_bytes: Option<usize>,
    /// Whether a 401 carries a short text body with the reason (`WWW-Authenticate` always
    /// carries it).
    #[serde(default = "default_true")]
    pub unauthorized_body: bool,
    /// The body of a 403 (Envoy RBAC's text by default).
    #[serde(default)]
    pub forbidden_body: Option<String>,
    /// Trusted proxies in front of this one for `remoteIpBlocks` / `remote.ip` (Envoy's
    /// `xff_num_trusted_hops`, Istio's `numTrustedProxies`).
    #[serde(default)]
    pub trusted_xff_hops: u32,
    /// Take the peer identity from the `x-forwarded-client-cert` element appended by the proxy
    /// next to this one (meshguard behind a TLS-terminating proxy). Off by default.
    #[serde(default)]
    pub trust_xfcc: bool,
    /// Verified tokens remembered per worker VM (0 disables the cache).
    #[serde(default)]
    pub token_cache_entries: Option<usize>,
    /// How `:path` is normalised before `paths`/`notPaths` match (Istio's names; `BASE`, Istio's
    /// default, by default).
    #[serde(default)]
    pub path_normalization: PathNormalization,
    /// `hosts` also match the authority without its port (meshguard's variant; off: Istio's
    /// exact match).
    #[serde(default)]
    pub hosts_ignore_port: bool,
    /// Istio mesh config `trustDomain`.
    #[serde(default = "default_trust_domain")]
    pub trust_domain: String,
    /// Istio mesh config `trustDomainAliases`.
    #[serde(default)]
    pub trust_domain_aliases: Vec<String>,
    /// CORS preflights are not authenticated (Istio's `jwt_authn` setting); on by default.
    #[serde(default = "default_true")]
    pub bypass_cors_preflight: bool,
    /// Capacity of the process-wide DPoP proof replay cache, in entries (used only when a rule
    /// has `dpop`).
    #[serde(default)]
    pub dpop_replay_cache_entries: Option<usize>,
}

fn default_trust_domain() -> String {
    crate::policy::DEFAULT_TRUST_DOMAIN.to_owned()
}

/// One Istio `JWTRule`, plus meshguard's extensions (second group).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtRule {
    /// Required, except in a rule with `spiffe` (JWT-SVIDs may have no `iss`).
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Istio accepts both spellings (the CRD lists `jwks_uri` too).
    #[serde(default, alias = "jwks_uri")]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub jwks: Option<String>,
    /// When all three location lists are empty, Istio's defaults apply (`Authorization:
    /// Bearer ` and `access_token`).
    #[serde(default)]
    pub from_headers: Vec<HeaderLocation>,
    #[serde(default)]
    pub from_params: Vec<String>,
    #[serde(default)]
    pub from_cookies: Vec<String>,
    #[serde(default)]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    #[serde(default)]
    pub output_payload_to_header: Option<String>,
    #[serde(default)]
    pub forward_original_token: bool,
    /// A protobuf `Duration` in its JSON form: `"5s"`, `"1.5s"`.
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub space_delimited_claims: Vec<String>,

    // meshguard extensions
    #[serde(default)]
    pub jwks_cluster: Option<String>,
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub clock_skew_seconds: Option<u64>,
    #[serde(default)]
    pub require_expiration: Option<bool>,
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    #[serde(default)]
    pub typ: Option<Vec<String>>,
    #[serde(default)]
    pub required_claims: Vec<String>,
    #[serde(default)]
    pub jwks_cache_duration_seconds: Option<u64>,
    /// Refuse tokens without a certificate binding (`cnf.x5t#S256`, RFC 8705 §3). A binding a
    /// token carries is checked whatever this says.
    #[serde(default)]
    pub require_certificate_binding: bool,
    /// DPoP-bound tokens (RFC 9449): with this block the rule also reads `Authorization: DPoP
    /// <token>` and checks its proof.
    #[serde(default)]
    pub dpop: Option<DpopSettings>,
    /// JWT-SVIDs (SPIFFE): `jwks` / `jwksUri` is a SPIFFE bundle, `sub` a SPIFFE ID of this
    /// trust domain.
    #[serde(default)]
    pub spiffe: Option<SpiffeSettings>,
}

/// A rule's `spiffe` block (docs/config.md, "JWT-SVIDs").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpiffeSettings {
    /// The trust domain (`example.org`) whose JWT-SVIDs the rule accepts.
    pub trust_domain: String,
}

/// A rule's `dpop` block (docs/config.md, "Bound tokens").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DpopSettings {
    /// Refuse this rule's tokens presented as bearer tokens.
    #[serde(default)]
    pub required: bool,
    /// How old a proof's `iat` may be, in seconds (default 60).
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
    /// The origin (`https://api.example.com`) clients address when a proxy in front rewrites
    /// scheme or authority; `htu` is compared with it instead of `:scheme` and `:authority`.
    #[serde(default)]
    pub public_origin: Option<String>,
}

/// Istio `JWTHeader`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderLocation {
    pub name: String,
    #[serde(default)]
    pub prefix: String,
}

/// Istio `ClaimToHeader`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimToHeader {
    pub header: String,
    pub claim: String,
}

/// What to do with a token whose (unverified) `iss` matches no rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownIssuer {
    /// 401 "Jwt issuer is not configured" (Istio and Envoy `jwt_authn`).
    #[default]
    Reject,
    /// Treat the token as absent: authentication passes and the policies decide.
    Ignore,
}

fn default_true() -> bool {
    true
}
