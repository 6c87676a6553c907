//! meshguard's demo identity provider and echo upstream (native only, loopback only).
//!
//! Used by `make run` (through the `meshguard-demo-idp` binary) and by the end-to-end tests
//! (in-process, through [`Idp`], [`Echo`] and [`http::Server`]).

pub mod echo;
pub mod http;
pub mod idp;
pub mod keys;

pub use echo::Echo;
pub use http::Server;
pub use idp::{Idp, Mode, TokenSpec};
pub use keys::Alg;
