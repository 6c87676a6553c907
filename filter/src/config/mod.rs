//! Plugin configuration: the serde model (Istio vocabulary: `jwtRules`, `policies`) and its
//! compiled, immutable form shared read-only by every request.
