//! Istio parity: attributes a Wasm filter sees only partly, trust-domain aliases.

use super::*;

/// `ipBlocks` is Istio's RBAC `direct_remote_ip`. When Envoy took `source.address` from
/// `x-forwarded-for` (port 0), the direct peer is unknown: DENY fails closed, ALLOW does not
/// allow; `remoteIpBlocks` (RBAC `remote_ip`) reads that address as it is.
#[test]
fn ip_blocks_fail_closed_on_an_xff_derived_source() {
    let deny = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"ipBlocks": ["127.0.0.1"]}}]}
    ]}));
    let allow = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}
    ]}));
    let remote = build(json!({"name": "r", "action": "DENY", "rules": [
        {"from": [{"source": {"remoteIpBlocks": ["9.9.9.9"]}}]}
    ]}));
    let fail_closed = |p: &Policies, req: &Req| match p.evaluate(req, None).verdict {
        Verdict::Deny(DenyReason::Policy(m)) => m.fail_closed,
        _ => false,
    };
    // Each policy that reads the direct peer says so once at configure time.
    assert_eq!(deny.warnings().len(), 1);
    assert!(deny.warnings()[0].starts_with("policy \"d\": ipBlocks"));
    assert!(remote.warnings().is_empty());
    // The connection's own peer: decided on it.
    let direct = Req::default().src_ip("127.0.0.1");
    assert!(!deny.evaluate(&direct, None).is_allowed());
    assert!(!fail_closed(&deny, &direct));
    assert!(
        allow
            .evaluate(&Req::default().src_ip("1.2.3.4"), None)
            .is_allowed()
    );
    // A client-sent X-Forwarded-For became the source address: undetermined.
    let spoofed = Req::default().xff_source("9.9.9.9");
    assert!(
        !deny.evaluate(&spoofed, None).is_allowed(),
        "DENY fails closed"
    );
    assert!(fail_closed(&deny, &spoofed));
    let opened = Req::default().xff_source("1.2.3.4");
    assert_eq!(
        allow.evaluate(&opened, None).verdict,
        Verdict::Deny(DenyReason::NoAllowMatched),
        "ALLOW is not opened by a header"
    );
    // remoteIpBlocks: Envoy's source address, whatever its origin.
    assert!(!remote.evaluate(&spoofed, None).is_allowed());
    assert!(!fail_closed(&remote, &spoofed));
    assert!(remote.evaluate(&direct, None).is_allowed());
    // Only the rule that reads the address fails closed: another path is decided as usual.
    let scoped = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}], "to": [{"operation": {"paths": ["/admin"]}}]}
    ]}));
    assert!(
        scoped
            .evaluate(&Req::get("/public").xff_source("1.1.1.1"), None)
            .is_allowed()
    );
    assert!(
        !scoped
            .evaluate(&Req::get("/admin").xff_source("1.1.1.1"), None)
            .is_allowed()
    );
    // notIpBlocks is undetermined too.
    let not = build(json!({"name": "n", "action": "DENY", "rules": [
        {"from": [{"source": {"notIpBlocks": ["10.0.0.0/8"]}}]}
    ]}));
    assert!(
        !not.evaluate(&Req::default().xff_source("10.0.0.1"), None)
            .is_allowed()
    );
    assert!(
        not.evaluate(&Req::default().src_ip("10.0.0.1"), None)
            .is_allowed()
    );
}

fn identity(uris: &[&str], dns: &[&str], subject: &str, complete: bool) -> PeerIdentity {
    PeerIdentity {
        uris: uris.iter().map(|u| (*u).to_owned()).collect(),
        dns: dns.iter().map(|d| (*d).to_owned()).collect(),
        subject: subject.to_owned(),
        complete,
    }
}

/// Envoy RBAC's `authenticated` matcher tries every URI SAN, every DNS SAN and the subject.
#[test]
fn principals_match_any_san_of_the_certificate() {
    let both = identity(
        &[
            "spiffe://cluster.local/ns/a/sa/allow",
            "spiffe://cluster.local/ns/a/sa/deny",
        ],
        &[],
        "CN=client",
        true,
    );
    let deny = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/deny"]}}]}
    ]}));
    assert!(
        !deny
            .evaluate(&Req::default().peer_identity(both.clone()), None)
            .is_allowed()
    );
    let allow_second = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/deny"]}}]}
    ]}));
    assert!(
        allow_second
            .evaluate(&Req::default().peer_identity(both.clone()), None)
            .is_allowed()
    );
    // notPrincipals: no identity may match.
    let not = build(json!({"name": "n", "action": "DENY", "rules": [
        {"from": [{"source": {"notPrincipals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(
        not.evaluate(&Req::default().peer_identity(both.clone()), None)
            .is_allowed()
    );
    // A DNS SAN only, or the subject only: `*` (regex `.+`) matches, as in Envoy.
    let any_allow = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["*"]}}]}
    ]}));
    let any_deny = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["*"]}}]}
    ]}));
    for peer in [
        identity(&[], &["client.example.com"], "CN=client", true),
        identity(&[], &[], "CN=client", true),
    ] {
        let req = Req::default().peer_identity(peer);
        assert!(any_allow.evaluate(&req, None).is_allowed());
        assert!(!any_deny.evaluate(&req, None).is_allowed());
    }
    assert!(any_allow.warnings()[0].contains("every SAN of the client certificate"));
    // No certificate: no identity.
    assert!(!any_allow.evaluate(&Req::default(), None).is_allowed());
    // namespaces (regex `.*/ns/<ns>/.*`) over any SAN.
    let ns = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"namespaces": ["evil"]}}]}
    ]}));
    let hidden = identity(
        &[
            "spiffe://cluster.local/ns/good/sa/x",
            "spiffe://cluster.local/ns/evil/sa/x",
        ],
        &[],
        "",
        true,
    );
    assert!(
        !ns.evaluate(&Req::default().peer_identity(hidden), None)
            .is_allowed()
    );
}

/// Only Envoy's first-SAN properties: a match among them decides, a miss is undetermined.
#[test]
fn a_partial_peer_identity_fails_closed() {
    let first_only = identity(&["spiffe://cluster.local/ns/a/sa/allow"], &[], "", false);
    let req = Req::default().peer_identity(first_only);
    let deny_other = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/deny"]}}]}
    ]}));
    let d = deny_other.evaluate(&req, None);
    assert!(!d.is_allowed(), "a second SAN could be `deny`");
    assert!(d.verdict.to_string_contains_fail_closed());
    let allow_first = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(allow_first.evaluate(&req, None).is_allowed());
    let allow_other = build(json!({"name": "a", "action": "ALLOW", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/other"]}}]}
    ]}));
    assert!(!allow_other.evaluate(&req, None).is_allowed());
    let deny_first = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(!deny_first.evaluate(&req, None).is_allowed());
    // notPrincipals with the known SAN: decided (some identity matches → the rule is false).
    let not_first = build(json!({"name": "d", "action": "DENY", "rules": [
        {"from": [{"source": {"notPrincipals": ["cluster.local/ns/a/sa/allow"]}}]}
    ]}));
    assert!(not_first.evaluate(&req, None).is_allowed());
    // An audit of an undetermined rule is not reported.
    let audit = build(json!({"name": "au", "action": "AUDIT", "rules": [
        {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/other"]}}]}
    ]}));
    assert!(audit.evaluate(&req, None).audits.is_empty());
}

trait FailClosedText {
    fn to_string_contains_fail_closed(&self) -> bool;
}

impl FailClosedText for Verdict<'_> {
    fn to_string_contains_fail_closed(&self) -> bool {
        matches!(self, Verdict::Deny(r) if r.to_string().contains("fail closed"))
    }
}

/// Istio's golden cases `simple-policy-td-aliases` and `td-aliases-source-principal`: principals
/// in the local trust domain, an alias or `cluster.local` stand for every trust domain of the
/// bundle; `*` and foreign trust domains are kept.
#[test]
fn trust_domain_aliases_as_istio() {
    let options = PolicyOptions {
        trust_domain: "td1".into(),
        trust_domain_aliases: vec!["cluster.local".into()],
        ..PolicyOptions::default()
    };
    let p = build_with(
        json!({"name": "a", "action": "ALLOW", "rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/rule[0]/sa/x"]}}]},
            {"when": [{"key": "source.principal", "values": ["td1/ns/w/sa/y"]}]},
            {"from": [{"source": {"principals": ["*/ns/any/sa/z", "other-td/ns/o/sa/o"]}}]}
        ]}),
        &options,
    );
    for (peer, want) in [
        ("td1/ns/rule[0]/sa/x", true),
        ("cluster.local/ns/rule[0]/sa/x", true),
        ("td2/ns/rule[0]/sa/x", false),
        ("cluster.local/ns/w/sa/y", true),
        ("td1/ns/w/sa/y", true),
        ("whatever/ns/any/sa/z", true),
        ("other-td/ns/o/sa/o", true),
        ("td1/ns/o/sa/o", false),
    ] {
        assert_eq!(
            p.evaluate(&Req::default().peer(peer), None).is_allowed(),
            want,
            "{peer}"
        );
    }
    // Without aliases, a trust domain other than cluster.local maps cluster.local principals
    // onto it (Istio: cluster.local points at the local trust domain).
    let moved = build_with(
        json!({"name": "a", "action": "ALLOW", "rules": [
            {"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}
        ]}),
        &PolicyOptions {
            trust_domain: "new-td".into(),
            ..PolicyOptions::default()
        },
    );
    assert!(
        moved
            .evaluate(&Req::default().peer("new-td/ns/a/sa/b"), None)
            .is_allowed()
    );
    assert!(
        !moved
            .evaluate(&Req::default().peer("cluster.local/ns/a/sa/b"), None)
            .is_allowed()
    );
    // trustDomains: a bundle member stands for all of them.
    let td = build_with(
        json!({"name": "a", "action": "ALLOW", "rules": [
            {"from": [{"source": {"trustDomains": ["cluster.local"]}}]}
        ]}),
        &options,
    );
    assert!(
        td.evaluate(&Req::default().peer("td1/ns/a/sa/b"), None)
            .is_allowed()
    );
    assert!(
        !td.evaluate(&Req::default().peer("td9/ns/a/sa/b"), None)
            .is_allowed()
    );
}
