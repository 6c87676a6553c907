//! Istio `AuthorizationPolicy` semantics: specs (serde) compile once into matchers at configure
//! time; request time only evaluates them over a request view and the `VerifiedClaims`.
