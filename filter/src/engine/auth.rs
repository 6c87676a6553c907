//! The authentication decision, host-free: tokens found → rule attribution → keys → verify.
//!
//! The host supplies keys through [`KeyAccess`] (backed by the per-VM JWKS state machines) and
//! acts on the [`Outcome`]: continue, answer 401, or pause the request until the keys of one
//! rule change. A paused request is decided again from the start with the same [`Found`]
//! tokens and its [`Progress`] (verification is deterministic, and re-verifying the tokens of
//! an already-ready rule after a rare wait is cheaper than keeping partial state).

use std::rc::Rc;

use crate::cache::{CacheKey, TokenCache};
use crate::config::{CompiledConfig, UnknownIssuer};
use crate::extract::Found;
use crate::jose::{
    Claimed, JoseError, Jwks, TokenLimits, UnverifiedToken, VerifiedClaims, trust_domain_of,
    verify_owned,
};
use crate::jwks::{KidMiss, Lookup};
use crate::output::Denial;

/// The keys of each rule, as the host's per-VM state machines see them now.
pub trait KeyAccess {
    fn lookup(&mut self, rule: usize) -> Lookup<Jwks>;
    fn unknown_kid(&mut self, rule: usize) -> KidMiss;
}

/// What a paused request remembers between attempts.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Rules for which this request already waited for an unknown-`kid` refetch: a second
    /// unknown `kid` after that refetch is final (401), never another wait.
    pub kid_refetched: Vec<usize>,
}

/// A verified token: its rule, its index in the [`Found`] list, and its claims.
#[derive(Debug, Clone)]
pub struct Verified {
    pub rule: usize,
    pub found: usize,
    pub claims: Rc<VerifiedClaims>,
}

/// Who a denial is about, for the one log line (never the token itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub rule: Option<usize>,
    /// Unverified `iss`, `kid` and `sub` as the token claimed them (sanitised by the logger).
    pub issuer: Option<String>,
    pub kid: Option<String>,
    pub sub: Option<String>,
}

impl Subject {
    /// What `token` claims about itself ([`Claimed::peek`]), for the log line of a denial
    /// decided without a parsed token (a parse refusal, a cache hit refused for time, a request
    /// refused before authentication).
    pub fn claimed(token: &str, limits: &TokenLimits, rule: Option<usize>) -> Subject {
        let Claimed { issuer, kid, sub } = Claimed::peek(token, limits);
        Subject {
            rule,
            issuer,
            kid,
            sub,
        }
    }
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every token verified (the list may be empty: no token, Istio lets the policies decide).
    /// The first is the request principal.
    Authenticated(Vec<Verified>),
    Denied(Denial, Box<Subject>),
    /// The keys of `rule` are not ready: pause until they change or the rule's timeout.
    Wait {
        rule: usize,
    },
}

/// Decides the request's tokens. `now_secs` is host time.
///
/// A token this VM already verified is answered from `cache` (same rule, keys still holding,
/// times re-checked: see [`crate::cache`]) without parsing or signature work; a miss is
/// verified afresh and, when accepted, cached.
pub fn authenticate(
    config: &CompiledConfig,
    found: &[Found],
    keys: &mut dyn KeyAccess,
    cache: &mut TokenCache,
    now_secs: u64,
    progress: &mut Progress,
) -> Outcome {
    let mut verified = Vec::with_capacity(found.len());
    for (index, candidate) in found.iter().enumerate() {
        let key = cache.is_enabled().then(|| cache.key(&candidate.token));
        if let Some(key) = &key {
            match cached(config, candidate, key, keys, cache, now_secs) {
                Cached::Hit(rule, claims) => {
                    verified.push(Verified {
                        rule,
                        found: index,
                        claims,
                    });
                    continue;
                }
                Cached::Decided(outcome) => return outcome,
                Cached::Miss => {}
            }
        }
        let parsed = match &key {
            Some(key) => key.parse(&config.token_limits),
            None => UnverifiedToken::parse(&candidate.token, &config.token_limits),
        };
        let mut token = match parsed {
            Ok(token) => token,
            Err(error) => {
                // Header-based refusals (`alg`, `crit`, …) still name what the token claims.
                let subject = Subject::claimed(&candidate.token, &config.token_limits, None);
                return Outcome::Denied(Denial::Token(error), Box::new(subject));
            }
        };
        let subject = |token: &UnverifiedToken, rule: Option<usize>| {
            Box::new(Subject {
                rule,
                issuer: token.issuer().map(str::to_owned),
                kid: token.kid().map(str::to_owned),
                sub: token
                    .unverified_claims()
                    .get("sub")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            })
        };
        // A token goes to the rule of its `iss`; a JWT-SVID without `iss` to the `spiffe` rule of
        // its `sub`'s trust domain. Either rule must read the location it was found at.
        let readers = candidate.rules(&config.locations);
        let rule_where = |pick: &dyn Fn(&crate::config::CompiledRule) -> bool| {
            readers
                .iter()
                .copied()
                .find(|r| config.rules.get(*r).is_some_and(pick))
        };
        let rule = match token.issuer() {
            Some(iss) => rule_where(&|rule| !rule.issuer.is_empty() && rule.issuer == iss),
            None => token
                .unverified_claims()
                .get("sub")
                .and_then(|sub| sub.as_str())
                .and_then(|sub| trust_domain_of(sub).ok())
                .and_then(|td| rule_where(&|rule| rule.spiffe_trust_domain.as_deref() == Some(td))),
        };
        let Some(rule) = rule else {
            match config.unknown_issuer {
                UnknownIssuer::Ignore => continue,
                UnknownIssuer::Reject => {
                    return Outcome::Denied(Denial::UnknownIssuer, subject(&token, None));
                }
            }
        };
        let Some(compiled) = config.rules.get(rule) else {
            return Outcome::Denied(Denial::UnknownIssuer, subject(&token, None));
        };
        // At most two verifications: the second after adopting a peer's newer keys.
        let mut attempts = 0;
        let claims = loop {
            attempts += 1;
            let jwks: Rc<Jwks> = match keys.lookup(rule) {
                Lookup::Ready(jwks) => jwks,
                Lookup::Wait => return Outcome::Wait { rule },
                Lookup::Unavailable => {
                    return Outcome::Denied(Denial::JwksUnavailable, subject(&token, Some(rule)));
                }
            };
            // The token is given to the verifier (its claims move into the cached claims) and
            // comes back with a refusal.
            token = match verify_owned(token, &jwks, &compiled.validation, now_secs) {
                Ok(claims) => {
                    let claims = Rc::new(claims);
                    if let Some(key) = &key {
                        cache.insert(key, rule, &jwks, Rc::clone(&claims));
                    }
                    break claims;
                }
                Err((JoseError::UnknownKid, token))
                    if attempts < 2 && !progress.kid_refetched.contains(&rule) =>
                {
                    match keys.unknown_kid(rule) {
                        KidMiss::Retry => token,
                        KidMiss::Wait => {
                            progress.kid_refetched.push(rule);
                            return Outcome::Wait { rule };
                        }
                        KidMiss::RateLimited => {
                            return Outcome::Denied(
                                Denial::Token(JoseError::UnknownKid),
                                subject(&token, Some(rule)),
                            );
                        }
                    }
                }
                Err((error, token)) => {
                    return Outcome::Denied(Denial::Token(error), subject(&token, Some(rule)));
                }
            };
        };
        verified.push(Verified {
            rule,
            found: index,
            claims,
        });
    }
    Outcome::Authenticated(verified)
}

/// What the cache says about one token.
enum Cached {
    /// Verified before under this rule, still valid now.
    Hit(usize, Rc<VerifiedClaims>),
    /// Decided without verification: refused for time, or waiting / no keys for its rule.
    Decided(Outcome),
    /// Verify afresh.
    Miss,
}

fn cached(
    config: &CompiledConfig,
    candidate: &Found,
    key: &CacheKey<'_>,
    keys: &mut dyn KeyAccess,
    cache: &mut TokenCache,
    now_secs: u64,
) -> Cached {
    // Only when the cached rule reads this location: attribution must be what a fresh
    // decision would make (the cached rule's issuer is the token's, and issuers are unique).
    let Some(rule) = cache
        .rule_of(key.digest())
        .filter(|rule| candidate.rules(&config.locations).contains(rule))
    else {
        return Cached::Miss;
    };
    let Some(compiled) = config.rules.get(rule) else {
        return Cached::Miss;
    };
    let jwks = match keys.lookup(rule) {
        Lookup::Ready(jwks) => jwks,
        // Without usable keys the fresh path decides (wait, or JWKS unavailable).
        Lookup::Wait | Lookup::Unavailable => return Cached::Miss,
    };
    match cache.get(key, rule, &jwks, &compiled.validation, now_secs) {
        Some(Ok(claims)) => Cached::Hit(rule, claims),
        Some(Err(error)) => {
            // The token was verified under this rule before: its issuer is the rule's; `kid`
            // and `sub` are read again for the log line (a refusal, off the hot path).
            let claimed = Subject::claimed(&candidate.token, &config.token_limits, Some(rule));
            Cached::Decided(Outcome::Denied(
                Denial::Token(error),
                Box::new(Subject {
                    issuer: Some(compiled.issuer.clone()),
                    ..claimed
                }),
            ))
        }
        None => Cached::Miss,
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::extract::{Source, extract};

    const DEMO_JWT: &str = include_str!("../../../tests/fixtures/istio/demo.jwt");
    const DEMO_JWKS: &str = include_str!("../../../tests/fixtures/istio/jwks.json");
    const ISTIO_ISS: &str = "testing@secure.istio.io";
    const NOW: u64 = 1_700_000_000;

    fn run(
        cfg: &CompiledConfig,
        found: &[Found],
        keys: &mut dyn KeyAccess,
        now: u64,
        progress: &mut Progress,
    ) -> Outcome {
        authenticate(cfg, found, keys, &mut TokenCache::new(0), now, progress)
    }

    #[test]
    fn cache_hits_and_rechecks_time() {
        let cfg = config("");
        let found = bearer(&cfg, DEMO_JWT);
        let mut keys = ready(DEMO_JWKS);
        let mut cache = TokenCache::new(16);
        let mut p = Progress::default();
        let first = authenticate(&cfg, &found, &mut keys, &mut cache, NOW, &mut p);
        assert!(
            matches!(&first, Outcome::Authenticated(v) if v.len() == 1),
            "{first:?}"
        );
        assert_eq!(cache.stats().inserts, 1);
        let second = authenticate(&cfg, &found, &mut keys, &mut cache, NOW, &mut p);
        let Outcome::Authenticated(v) = second else {
            panic!("{second:?}")
        };
        assert_eq!(v[0].claims.subject(), Some(ISTIO_ISS));
        assert_eq!(cache.stats().hits, 1);
        // The demo token expires in 2118: a cached entry is refused for time like a fresh one.
        let late = authenticate(&cfg, &found, &mut keys, &mut cache, 4_800_000_000, &mut p);
        assert!(
            matches!(late, Outcome::Denied(Denial::Token(JoseError::Expired), _)),
            "{late:?}"
        );
        // A cached token found where its rule does not read is decided afresh (unknown issuer).
        let json = format!(
            r#"{{"jwtRules":[{{"issuer":"{ISTIO_ISS}","jwksUri":"https://idp/jwks"}},{{"issuer":"other","jwksUri":"https://idp/jwks","fromHeaders":[{{"name":"x-other"}}]}}]}}"#
        );
        let cfg = CompiledConfig::from_json(json.as_bytes()).unwrap();
        let mut cache = TokenCache::new(16);
        let found = bearer(&cfg, DEMO_JWT);
        let ok = authenticate(&cfg, &found, &mut keys, &mut cache, NOW, &mut p);
        assert!(matches!(ok, Outcome::Authenticated(_)));
        let elsewhere = extract(&cfg.locations, |name| {
            (name == "x-other").then(|| DEMO_JWT.trim().as_bytes().to_vec())
        });
        let outcome = authenticate(&cfg, &elsewhere, &mut keys, &mut cache, NOW, &mut p);
        assert!(
            matches!(outcome, Outcome::Denied(Denial::UnknownIssuer, _)),
            "{outcome:?}"
        );
    }

    struct Fixed {
        lookups: Vec<Lookup<Jwks>>,
        kid: KidMiss,
        kid_calls: usize,
    }

    impl KeyAccess for Fixed {
        fn lookup(&mut self, _rule: usize) -> Lookup<Jwks> {
            if self.lookups.len() > 1 {
                self.lookups.remove(0)
            } else {
                self.lookups[0].clone()
            }
        }
        fn unknown_kid(&mut self, _rule: usize) -> KidMiss {
            self.kid_calls += 1;
            self.kid
        }
    }

    fn ready(jwks: &str) -> Fixed {
        Fixed {
            lookups: vec![Lookup::Ready(Rc::new(
                Jwks::parse(jwks.as_bytes()).unwrap(),
            ))],
            kid: KidMiss::RateLimited,
            kid_calls: 0,
        }
    }

    fn config(extra: &str) -> CompiledConfig {
        let json = format!(
            r#"{{"jwtRules":[{{"issuer":"{ISTIO_ISS}","jwksUri":"https://idp/jwks"{extra}}}]}}"#
        );
        CompiledConfig::from_json(json.as_bytes()).unwrap()
    }

    fn bearer(cfg: &CompiledConfig, token: &str) -> Vec<Found> {
        let value = format!("Bearer {}", token.trim());
        extract(&cfg.locations, |name| {
            (name == "authorization").then(|| value.as_bytes().to_vec())
        })
    }

    #[test]
    fn istio_demo_token_verifies() {
        let cfg = config("");
        let found = bearer(&cfg, DEMO_JWT);
        let outcome = run(
            &cfg,
            &found,
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        let Outcome::Authenticated(v) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].rule, 0);
        assert_eq!(v[0].claims.subject(), Some(ISTIO_ISS));
    }

    #[test]
    fn no_token_passes() {
        let cfg = config("");
        let outcome = run(
            &cfg,
            &[],
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        assert!(matches!(outcome, Outcome::Authenticated(v) if v.is_empty()));
    }

    #[test]
    fn garbage_is_401() {
        let cfg = config("");
        let found = bearer(&cfg, "not-a-jwt");
        let outcome = run(
            &cfg,
            &found,
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        assert!(
            matches!(outcome, Outcome::Denied(Denial::Token(_), _)),
            "{outcome:?}"
        );
    }

    #[test]
    fn unknown_issuer_reject_or_ignore() {
        let json = r#"{"jwtRules":[{"issuer":"other","jwksUri":"https://idp/jwks"}]}"#;
        let cfg = CompiledConfig::from_json(json.as_bytes()).unwrap();
        let found = bearer(&cfg, DEMO_JWT);
        let outcome = run(
            &cfg,
            &found,
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        let Outcome::Denied(Denial::UnknownIssuer, subject) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(subject.issuer.as_deref(), Some(ISTIO_ISS));

        let json = r#"{"unknownIssuer":"ignore","jwtRules":[{"issuer":"other","jwksUri":"https://idp/jwks"}]}"#;
        let cfg = CompiledConfig::from_json(json.as_bytes()).unwrap();
        let outcome = run(
            &cfg,
            &found,
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        assert!(matches!(outcome, Outcome::Authenticated(v) if v.is_empty()));
    }

    #[test]
    fn issuer_must_own_the_location() {
        // Rule 0 (the token's issuer) reads only a cookie; rule 1 reads the header.
        let json = format!(
            r#"{{"jwtRules":[{{"issuer":"{ISTIO_ISS}","jwksUri":"https://idp/jwks","fromCookies":["t"]}},{{"issuer":"other","jwksUri":"https://idp/jwks"}}]}}"#
        );
        let cfg = CompiledConfig::from_json(json.as_bytes()).unwrap();
        let found = bearer(&cfg, DEMO_JWT);
        assert_eq!(found[0].source, Source::Header(0));
        let outcome = run(
            &cfg,
            &found,
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        assert!(
            matches!(outcome, Outcome::Denied(Denial::UnknownIssuer, _)),
            "{outcome:?}"
        );
    }

    #[test]
    fn waits_and_unavailable() {
        let cfg = config("");
        let found = bearer(&cfg, DEMO_JWT);
        let mut keys = Fixed {
            lookups: vec![Lookup::Wait],
            kid: KidMiss::Wait,
            kid_calls: 0,
        };
        let outcome = run(&cfg, &found, &mut keys, NOW, &mut Progress::default());
        assert!(matches!(outcome, Outcome::Wait { rule: 0 }));
        keys.lookups = vec![Lookup::Unavailable];
        let outcome = run(&cfg, &found, &mut keys, NOW, &mut Progress::default());
        assert!(matches!(
            outcome,
            Outcome::Denied(Denial::JwksUnavailable, _)
        ));
    }

    #[test]
    fn unknown_kid_waits_once_then_denies() {
        let cfg = config("");
        let found = bearer(&cfg, DEMO_JWT);
        let other = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"other","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}"#;
        let mut keys = ready(other);
        keys.kid = KidMiss::Wait;
        let mut progress = Progress::default();
        let outcome = run(&cfg, &found, &mut keys, NOW, &mut progress);
        assert!(matches!(outcome, Outcome::Wait { rule: 0 }), "{outcome:?}");
        assert_eq!(progress.kid_refetched, vec![0]);
        // After the refetch the kid is still unknown: final.
        let outcome = run(&cfg, &found, &mut keys, NOW, &mut progress);
        assert!(
            matches!(
                outcome,
                Outcome::Denied(Denial::Token(JoseError::UnknownKid), _)
            ),
            "{outcome:?}"
        );
        assert_eq!(keys.kid_calls, 1);

        // Rate limited: denied at once.
        let mut keys = ready(other);
        let outcome = run(&cfg, &found, &mut keys, NOW, &mut Progress::default());
        assert!(matches!(
            outcome,
            Outcome::Denied(Denial::Token(JoseError::UnknownKid), _)
        ));

        // Retry: a peer's keys were adopted; the second lookup has the right key.
        let mut keys = ready(other);
        keys.lookups.push(Lookup::Ready(Rc::new(
            Jwks::parse(DEMO_JWKS.as_bytes()).unwrap(),
        )));
        keys.kid = KidMiss::Retry;
        let outcome = run(&cfg, &found, &mut keys, NOW, &mut Progress::default());
        assert!(
            matches!(&outcome, Outcome::Authenticated(v) if v.len() == 1),
            "{outcome:?}"
        );
    }

    #[test]
    fn audience_failure_is_a_token_denial() {
        let cfg = config(r#","audiences":["nobody"]"#);
        let found = bearer(&cfg, DEMO_JWT);
        let outcome = run(
            &cfg,
            &found,
            &mut ready(DEMO_JWKS),
            NOW,
            &mut Progress::default(),
        );
        let Outcome::Denied(denial, subject) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(denial, Denial::Token(JoseError::AudienceNotAllowed));
        assert_eq!(subject.sub.as_deref(), Some(ISTIO_ISS));
        assert_eq!(subject.rule, Some(0));
    }
}
