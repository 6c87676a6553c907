//! The [`VerifiedClaims`] proof type and the registered-claim readers it is built from.

use core::fmt;

use serde_json::{Map, Value};

use super::alg::Algorithm;
use super::error::JoseError;

/// Claims of a token whose signature and registered claims were verified. Only the verifier
/// builds one (the constructor is private to `jose`), so holding one proves verification.
#[derive(Clone)]
pub struct VerifiedClaims {
    issuer: String,
    claims: Map<String, Value>,
    payload_b64: String,
    kid: Option<String>,
    alg: Algorithm,
    times: Times,
}

/// The NumericDate claims, as whole seconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
}

impl Times {
    /// Reads `exp`, `nbf` and `iat`; any that is present but not a valid NumericDate is an error.
    pub(crate) fn read(claims: &Map<String, Value>) -> Result<Times, JoseError> {
        Ok(Times {
            exp: numeric_date(claims, "exp")?,
            nbf: numeric_date(claims, "nbf")?,
            iat: numeric_date(claims, "iat")?,
        })
    }
}

impl VerifiedClaims {
    pub(super) fn new(
        issuer: String,
        claims: Map<String, Value>,
        payload_b64: String,
        kid: Option<String>,
        alg: Algorithm,
        times: Times,
    ) -> Self {
        VerifiedClaims {
            issuer,
            claims,
            payload_b64,
            kid,
            alg,
            times,
        }
    }

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

    /// A claim by path: `["sub"]`, or nested `["realm_access", "roles"]` (each further name is
    /// a member of the object before it). `None` when the path is empty, a name is absent or a
    /// step is not an object. Borrows the path as given (`&[&str]`, or the `&[String]` compiled
    /// at configure time), so a request never allocates for it (the walk is `claim_at`, below).
    pub fn claim<S: AsRef<str>>(&self, path: &[S]) -> Option<&Value> {
        claim_at(&self.claims, path)
    }

    /// All claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// The payload segment exactly as it appeared in the token (base64url, no padding), for
    /// forwarding it upstream (`outputPayloadToHeader`) without re-encoding.
    pub fn payload_b64(&self) -> &str {
        &self.payload_b64
    }

    /// The `kid` of the token header, when it had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the signature was verified with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// `exp`, in whole seconds since the epoch (fractions are dropped).
    pub fn expires_at(&self) -> Option<u64> {
        self.times.exp
    }

    /// `nbf`, in whole seconds since the epoch.
    pub fn not_before(&self) -> Option<u64> {
        self.times.nbf
    }

    /// `iat`, in whole seconds since the epoch.
    pub fn issued_at(&self) -> Option<u64> {
        self.times.iat
    }

    /// The NumericDate claims, for re-checking the time rules on a token cache hit.
    pub(crate) fn times(&self) -> Times {
        self.times
    }

    /// Test-only constructor for modules that consume claims (policy, output). The payload
    /// segment is the base64url of the JSON, `alg` is RS256 and there is no `kid`.
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
        let payload_b64 = super::b64::encode(Value::Object(claims.clone()).to_string().as_bytes());
        let times = Times::read(&claims).unwrap_or_default();
        VerifiedClaims::new(issuer, claims, payload_b64, None, Algorithm::Rs256, times)
    }
}

impl fmt::Debug for VerifiedClaims {
    /// Issuer, subject and header facts; the raw payload stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedClaims")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject())
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The one claim-path walker: `outputClaimToHeaders` (`a.b.c`, split at configure time), the
/// policies' `request.auth.claims[a][b]…` and `requiredClaims` (a path of one name) all read
/// claims through it, so "which value does this name mean" has a single answer.
pub(crate) fn claim_at<'c, S: AsRef<str>>(
    claims: &'c Map<String, Value>,
    path: &[S],
) -> Option<&'c Value> {
    let (first, rest) = path.split_first()?;
    let mut value = claims.get(first.as_ref())?;
    for part in rest {
        value = value.as_object()?.get(part.as_ref())?;
    }
    Some(value)
}

/// The largest NumericDate accepted: `i64::MAX` seconds, the end of any signed 64-bit clock.
/// A later date is no time at all (`1e300`), and accepting it would make `exp` mean "never"
/// and `requireExpiration` meaningless, so it is refused as invalid, not saturated.
const MAX_NUMERIC_DATE: u64 = i64::MAX.unsigned_abs();

/// Reads a NumericDate (RFC 7519 §2): a JSON number of seconds, integer or not. Negative,
/// non-number, non-finite (impossible from serde_json, but checked) and unrepresentable
/// (beyond [`MAX_NUMERIC_DATE`]) values are invalid. Fractions are truncated.
pub(super) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, JoseError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let invalid = JoseError::InvalidClaim(name);
    let Value::Number(number) = value else {
        return Err(invalid);
    };
    if let Some(secs) = number.as_u64() {
        return if secs <= MAX_NUMERIC_DATE {
            Ok(Some(secs))
        } else {
            Err(invalid)
        };
    }
    match number.as_f64() {
        // 2^63 is the first f64 above `i64::MAX`; below it `as` truncates exactly (NaN and the
        // infinities are outside the range).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(secs) if (0.0..9_223_372_036_854_775_808.0).contains(&secs) => Ok(Some(secs as u64)),
        _ => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn date(v: Value) -> Result<Option<u64>, JoseError> {
        let map = json!({ "exp": v }).as_object().unwrap().clone();
        numeric_date(&map, "exp")
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(date(json!(1_300_819_380)), Ok(Some(1_300_819_380)));
        assert_eq!(date(json!(1_300_819_380.9)), Ok(Some(1_300_819_380)));
        assert_eq!(date(json!(0)), Ok(Some(0)));
        // Beyond any representable time: refused, not saturated (it would mean "never").
        assert_eq!(date(json!(1e300)), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(date(json!(u64::MAX)), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(
            date(json!(i64::MAX.unsigned_abs() + 1)),
            Err(JoseError::InvalidClaim("exp"))
        );
        assert_eq!(
            date(json!(9_223_372_036_854_775_808.0)),
            Err(JoseError::InvalidClaim("exp"))
        );
        assert_eq!(
            date(json!(i64::MAX)),
            Ok(Some(i64::MAX.unsigned_abs())),
            "the last representable second"
        );
        assert_eq!(
            date(json!(9_223_372_036_854_774_784.0)),
            Ok(Some(9_223_372_036_854_774_784)),
            "the largest f64 below 2^63"
        );
        assert_eq!(date(json!(-1)), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(date(json!(-0.5)), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(
            date(json!("1300819380")),
            Err(JoseError::InvalidClaim("exp"))
        );
        assert_eq!(date(json!(null)), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(date(json!(true)), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(date(json!([1])), Err(JoseError::InvalidClaim("exp")));
        assert_eq!(numeric_date(&Map::new(), "exp"), Ok(None));
    }

    #[test]
    fn for_tests_keeps_the_contract() {
        let c = VerifiedClaims::for_tests(json!({
            "iss": "i", "sub": "s", "azp": "p", "aud": ["a", 1, "b"],
            "realm_access": {"roles": ["r"]}, "exp": 10
        }));
        assert_eq!(c.issuer(), "i");
        assert_eq!(c.subject(), Some("s"));
        assert_eq!(c.presenter(), Some("p"));
        assert_eq!(c.audiences(), vec!["a", "b"]);
        assert_eq!(c.claim(&["realm_access", "roles"]), Some(&json!(["r"])));
        assert_eq!(c.claim::<&str>(&[]), None);
        assert_eq!(
            c.claim(&["realm_access".to_owned(), "roles".to_owned()]),
            Some(&json!(["r"]))
        );
        assert_eq!(c.claim(&["realm_access", "roles", "x"]), None);
        assert_eq!(c.claim(&["sub", "x"]), None);
        assert_eq!(c.expires_at(), Some(10));
        let decoded = super::super::b64::decode(c.payload_b64()).unwrap();
        let back: Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(&back, &Value::Object(c.claims().clone()));
        assert!(!format!("{c:?}").contains("realm_access"));
    }
}
