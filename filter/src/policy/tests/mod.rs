//! Table-driven policy suite: the examples of Istio's AuthorizationPolicy reference, its
//! conditions and normalization pages, the JWT tasks, and meshguard's two user cases.
//!
//! Here: the request test double ([`Req`]) and the helpers; the tests, by concern, in the
//! submodules.

mod conditions;
mod evaluation;
mod istio_examples;
mod parity;
mod paths;
mod sources;
mod spec;
mod user_cases;

use std::net::{IpAddr, SocketAddr};

use serde_json::{Value, json};

use super::*;
use crate::jose::VerifiedClaims;

/// A request for tests: GET / on example.com:8080 from 10.0.0.1, plaintext, no headers.
#[derive(Clone, Debug)]
struct Req {
    headers: Vec<(String, String)>,
    host: Option<String>,
    method: Option<String>,
    path: Option<String>,
    port: Option<u16>,
    source: Option<SocketAddr>,
    destination: Option<IpAddr>,
    peer: Option<PeerIdentity>,
    sni: Option<String>,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            headers: Vec::new(),
            host: Some("example.com".into()),
            method: Some("GET".into()),
            path: Some("/".into()),
            port: Some(8080),
            source: Some("10.0.0.1:50000".parse().unwrap()),
            destination: Some("10.0.0.100".parse().unwrap()),
            peer: None,
            sni: None,
        }
    }
}

impl Req {
    fn get(path: &str) -> Self {
        Req {
            path: Some(path.into()),
            ..Req::default()
        }
    }
    fn post(path: &str) -> Self {
        Req {
            method: Some("POST".into()),
            ..Req::get(path)
        }
    }
    fn method(mut self, m: &str) -> Self {
        self.method = Some(m.into());
        self
    }
    fn host(mut self, h: &str) -> Self {
        self.host = Some(h.into());
        self
    }
    fn port(mut self, p: u16) -> Self {
        self.port = Some(p);
        self
    }
    fn peer(self, principal: &str) -> Self {
        self.raw_peer(&format!("spiffe://{principal}"))
    }
    /// A client certificate with this one URI SAN, read whole.
    fn raw_peer(mut self, uri: &str) -> Self {
        self.peer = Some(PeerIdentity {
            uris: vec![uri.into()],
            complete: true,
            ..PeerIdentity::default()
        });
        self
    }
    fn peer_identity(mut self, identity: PeerIdentity) -> Self {
        self.peer = Some(identity);
        self
    }
    /// The connection's peer address (Envoy's `source.address` with a real port).
    fn src_ip(mut self, ip: &str) -> Self {
        self.source = Some(SocketAddr::new(ip.parse().unwrap(), 50000));
        self
    }
    /// A `source.address` Envoy took from `x-forwarded-for` (port 0).
    fn xff_source(mut self, ip: &str) -> Self {
        self.source = Some(SocketAddr::new(ip.parse().unwrap(), 0));
        self
    }
    fn dst_ip(mut self, ip: &str) -> Self {
        self.destination = Some(ip.parse().unwrap());
        self
    }
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
    fn sni(mut self, sni: &str) -> Self {
        self.sni = Some(sni.into());
        self
    }
}

impl RequestAttributes for Req {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == lower_name)
            .map(|(_, v)| v.as_str())
    }
    fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
    fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }
    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    fn destination_port(&self) -> Option<u16> {
        self.port
    }
    fn source_address(&self) -> Option<SocketAddr> {
        self.source
    }
    fn destination_ip(&self) -> Option<IpAddr> {
        self.destination
    }
    fn peer(&self) -> Option<&PeerIdentity> {
        self.peer.as_ref()
    }
    fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }
}

fn specs(v: Value) -> Vec<PolicySpec> {
    let v = if v.is_array() { v } else { json!([v]) };
    serde_json::from_value(v).unwrap()
}

fn build(v: Value) -> Policies {
    build_with(v, &PolicyOptions::default())
}

fn build_with(v: Value, options: &PolicyOptions) -> Policies {
    compile(&specs(v), options).unwrap_or_else(|e| panic!("{e}"))
}

fn jwt(claims: Value) -> VerifiedClaims {
    VerifiedClaims::for_tests(claims)
}

/// What a case expects.
#[derive(Debug, Clone, Copy)]
enum Want {
    Allow,
    /// Denied by the named DENY policy's rule.
    DenyBy(&'static str, usize),
    /// Denied because no ALLOW policy matched.
    NoAllow,
}

struct Case {
    name: &'static str,
    req: Req,
    claims: Option<Value>,
    want: Want,
}

fn case(name: &'static str, req: Req, claims: Option<Value>, want: Want) -> Case {
    Case {
        name,
        req,
        claims,
        want,
    }
}

fn run(policies: &Policies, cases: &[Case]) {
    for c in cases {
        let claims = c.claims.clone().map(jwt);
        let d = policies.evaluate(&c.req, claims.as_ref());
        let ok = match (c.want, d.verdict) {
            (Want::Allow, Verdict::Allow) => true,
            (Want::DenyBy(p, r), Verdict::Deny(DenyReason::Policy(m))) => {
                m.policy == p && m.rule == r
            }
            (Want::NoAllow, Verdict::Deny(DenyReason::NoAllowMatched)) => true,
            _ => false,
        };
        assert!(ok, "case {:?}: want {:?}, got {:?}", c.name, c.want, d);
    }
}
