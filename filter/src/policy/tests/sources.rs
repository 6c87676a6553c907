//! `from.source`: every source field, the remote IP behind trusted hops, forwarded client
//! certificates.

use super::*;

#[test]
fn source_fields() {
    let allow =
        |source: Value| build(json!({"name": "s", "rules": [{"from": [{"source": source}]}]}));
    let p = allow(json!({"serviceAccounts": ["order/order-service"]}));
    run(
        &p,
        &[
            case(
                "sa",
                Req::get("/").peer("cluster.local/ns/order/sa/order-service"),
                None,
                Want::Allow,
            ),
            case(
                "other td",
                Req::get("/").peer("other.td/ns/order/sa/order-service"),
                None,
                Want::Allow,
            ),
            case(
                "other sa",
                Req::get("/").peer("cluster.local/ns/order/sa/order-service2"),
                None,
                Want::NoAllow,
            ),
            case("plaintext", Req::get("/"), None, Want::NoAllow),
        ],
    );
    let p = allow(json!({"trustDomains": ["cluster.local"], "notServiceAccounts": ["a/b"]}));
    run(
        &p,
        &[
            case(
                "td",
                Req::get("/").peer("cluster.local/ns/x/sa/y"),
                None,
                Want::Allow,
            ),
            case(
                "excluded sa",
                Req::get("/").peer("cluster.local/ns/a/sa/b"),
                None,
                Want::NoAllow,
            ),
            case(
                "other td",
                Req::get("/").peer("remote.td/ns/x/sa/y"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let p = allow(json!({"notTrustDomains": ["evil.*"]}));
    run(
        &p,
        &[
            case("plaintext passes not*", Req::get("/"), None, Want::Allow),
            case(
                "evil",
                Req::get("/").peer("evil.example/ns/x/sa/y"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let p = allow(json!({"ipBlocks": ["2001:db8::/32"], "notIpBlocks": ["2001:db8::bad"]}));
    run(
        &p,
        &[
            case(
                "v6 in",
                Req::get("/").src_ip("2001:db8::1"),
                None,
                Want::Allow,
            ),
            case(
                "v6 excluded",
                Req::get("/").src_ip("2001:db8::bad"),
                None,
                Want::NoAllow,
            ),
            case("v4", Req::get("/").src_ip("10.0.0.1"), None, Want::NoAllow),
        ],
    );
    let p = allow(json!({"principals": ["cluster.local/ns/ops/*", "*/sa/robot"]}));
    run(
        &p,
        &[
            case(
                "prefix",
                Req::get("/").peer("cluster.local/ns/ops/sa/x"),
                None,
                Want::Allow,
            ),
            case(
                "suffix",
                Req::get("/").peer("td/ns/q/sa/robot"),
                None,
                Want::Allow,
            ),
            case(
                "neither",
                Req::get("/").peer("td/ns/q/sa/human"),
                None,
                Want::NoAllow,
            ),
        ],
    );
    let p = allow(
        json!({"requestPrincipals": ["https://idp.example.com/*"], "notRequestPrincipals": ["https://idp.example.com/banned"]}),
    );
    run(
        &p,
        &[
            case(
                "user",
                Req::get("/"),
                Some(json!({"iss": "https://idp.example.com", "sub": "u"})),
                Want::Allow,
            ),
            case(
                "banned",
                Req::get("/"),
                Some(json!({"iss": "https://idp.example.com", "sub": "banned"})),
                Want::NoAllow,
            ),
            case(
                "other idp",
                Req::get("/"),
                Some(json!({"iss": "https://other.example.com", "sub": "u"})),
                Want::NoAllow,
            ),
        ],
    );
}

#[test]
fn remote_ip_with_trusted_hops() {
    let opts = PolicyOptions {
        xff_num_trusted_hops: 1,
        ..PolicyOptions::default()
    };
    let p = build_with(
        json!({"name": "r", "action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["198.51.100.0/24"]}}]}]}),
        &opts,
    );
    assert_eq!(p.required_headers(), ["x-forwarded-for".to_owned()]);
    run(
        &p,
        &[
            case(
                "client behind one proxy",
                Req::get("/")
                    .src_ip("10.0.0.9")
                    .header("x-forwarded-for", "203.0.113.1, 198.51.100.7"),
                None,
                Want::DenyBy("r", 0),
            ),
            case(
                "spoofed left entry is not trusted",
                Req::get("/")
                    .src_ip("10.0.0.9")
                    .header("x-forwarded-for", "198.51.100.7, 203.0.113.1"),
                None,
                Want::Allow,
            ),
            case(
                "no xff: source address",
                Req::get("/").src_ip("198.51.100.3"),
                None,
                Want::DenyBy("r", 0),
            ),
        ],
    );
}

#[test]
fn forwarded_client_cert_option() {
    let opts = PolicyOptions {
        forwarded_client_cert: Some(ForwardedClientCert::default()),
        ..PolicyOptions::default()
    };
    let p = build_with(
        json!({"name": "x", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/order/sa/order-service"]}}]}]}),
        &opts,
    );
    assert!(
        p.warnings().is_empty(),
        "the identity comes from the header: {:?}",
        p.warnings()
    );
    assert_eq!(p.required_headers(), ["x-forwarded-client-cert".to_owned()]);
    let xfcc = "By=spiffe://cluster.local/ns/gw/sa/gw;Hash=1;URI=spiffe://cluster.local/ns/order/sa/order-service";
    run(
        &p,
        &[
            case(
                "xfcc",
                Req::get("/").header("x-forwarded-client-cert", xfcc),
                None,
                Want::Allow,
            ),
            // The connection's own certificate is ignored in this mode (it is the proxy's).
            case(
                "connection peer ignored",
                Req::get("/").peer("cluster.local/ns/order/sa/order-service"),
                None,
                Want::NoAllow,
            ),
            case(
                "left element not trusted",
                Req::get("/").header(
                    "x-forwarded-client-cert",
                    format!("{xfcc},URI=spiffe://cluster.local/ns/x/sa/y").as_str(),
                ),
                None,
                Want::NoAllow,
            ),
        ],
    );
}
