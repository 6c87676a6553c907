//! Claim checks and the [`VerifiedClaims`] proof type.
//!
//! CONTRACT STUB (the jose owner replaces the internals, keeping these signatures):

use serde_json::{Map, Value};

/// Claims of a token whose signature and registered claims were verified. Only the verifier
/// builds one (the constructor is private to `jose`), so holding one proves verification.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    issuer: String,
    claims: Map<String, Value>,
}

impl VerifiedClaims {
    /// The verified `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `sub`, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// `azp`, when it is a string (Istio's `request.auth.presenter`).
    pub fn presenter(&self) -> Option<&str> {
        self.claims.get("azp").and_then(Value::as_str)
    }

    /// `aud` as a list (a string `aud` is a list of one).
    pub fn audiences(&self) -> Vec<&str> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// A claim by path: `["sub"]`, or nested `["realm_access", "roles"]`.
    pub fn claim(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.claims.get(*first)?;
        for part in rest {
            value = value.as_object()?.get(*part)?;
        }
        Some(value)
    }

    /// All claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Test-only constructor for modules that consume claims (policy, output).
    #[cfg(any(test, feature = "test-util"))]
    pub fn for_tests(claims: Value) -> Self {
        let claims = match claims {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let issuer = claims
            .get("iss")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        VerifiedClaims { issuer, claims }
    }
}
