//! meshguard's readers of untrusted token and JWKS text: strict base64url (`b64`) and strict JSON
//! objects (`json`). Their own crate so that they compile at opt-level 3 while meshguard itself is
//! built at "z" (Cargo.toml, `[profile.release]`): a token is read on every cold request. Both
//! entry points are concrete functions, so the base64 engine and serde_json's parser are
//! instantiated here, at this crate's level.

pub mod b64;
pub mod json;
