//! meshguard's readers of untrusted token and JWKS text: strict base64url (`b64`) and strict JSON
//! objects (`json`). Their own crate: the parsers of untrusted input, tested and fuzzed apart
//! from the filter, behind two concrete entry points.

pub mod b64;
pub mod json;
