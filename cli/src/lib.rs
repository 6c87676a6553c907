//! meshguard's command line, as a library so tests drive it directly: the Istio
//! RequestAuthentication/AuthorizationPolicy → WasmPlugin converter and the OCI packager.

pub mod convert;
pub mod istio;
pub mod oci;
