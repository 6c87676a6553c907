//! Plugin configuration: the serde model (Istio vocabulary: `jwtRules`, `policies`) and its
//! compiled, immutable form shared read-only by every request.
//!
//! [`CompiledConfig::from_json`] runs once per VM in `on_configure`. Everything a request needs
//! is prepared there — inline keys decoded, [`Validation`](crate::jose::Validation) built per
//! rule, token locations merged and lower-cased, the list of output headers to strip — so that
//! request time only reads. Any invalid value is a [`ConfigError`] naming the field path and the
//! reason; the host logs it once and refuses to start (never runs half-configured).

mod compile;
mod duration;
mod model;

pub use compile::{
    ClaimHeader, CompiledConfig, CompiledRule, DEFAULT_FORBIDDEN_BODY, DEFAULT_TOKEN_HEADER,
    DEFAULT_TOKEN_PARAM, DEFAULT_TOKEN_PREFIX, DPOP_TOKEN_PREFIX, KeySource, RemoteSource,
    SPIFFE_REFRESH_HINT_MAX_SECS, SPIFFE_REFRESH_HINT_MIN_SECS,
};
pub use duration::{DurationError, parse_duration};
pub use model::{JwtRule, PluginConfig, UnknownIssuer};

use core::fmt;

/// A configuration that cannot run: `path` names the field (`jwtRules[0].algorithms[1]`), `why`
/// says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub why: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, why: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            why: why.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.why)
        } else {
            write!(f, "{}: {}", self.path, self.why)
        }
    }
}

impl std::error::Error for ConfigError {}
