//! The serde spec and the compiler's errors.

use super::*;

#[test]
fn spec_parsing() {
    // Defaults and camelCase.
    let s = specs(
        json!({"name": "n", "dryRun": true, "rules": [{"from": [{"source": {"notRemoteIpBlocks": ["1.2.3.4"]}}]}]}),
    );
    assert_eq!(s[0].action, Action::Allow);
    assert!(s[0].dry_run);
    // Unknown fields are errors at every level.
    for bad in [
        json!([{"name": "n", "rule": []}]),
        json!([{"name": "n", "rules": [{"form": []}]}]),
        json!([{"name": "n", "rules": [{"from": [{"source": {"principal": ["x"]}}]}]}]),
        json!([{"name": "n", "rules": [{"to": [{"operation": {"path": ["/"]}}]}]}]),
        json!([{"name": "n", "rules": [{"when": [{"key": "k", "value": ["/"]}]}]}]),
        json!([{"name": "n", "action": "REJECT"}]),
        json!([{"action": "ALLOW"}]),
    ] {
        assert!(
            serde_json::from_value::<Vec<PolicySpec>>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    // Options.
    let o: PolicyOptions = serde_json::from_value(json!({
        "xffNumTrustedHops": 2,
        "spaceDelimitedClaims": ["roles"],
        "forwardedClientCert": {},
        "pathNormalization": "DECODE_AND_MERGE_SLASHES"
    }))
    .unwrap();
    assert_eq!(o.xff_num_trusted_hops, 2);
    assert_eq!(
        o.forwarded_client_cert,
        Some(ForwardedClientCert { trusted_hop: 1 })
    );
    assert_eq!(
        o.path_normalization,
        PathNormalization::DecodeAndMergeSlashes
    );
    assert!(serde_json::from_value::<PolicyOptions>(json!({"xffHops": 1})).is_err());
}

fn compile_err(v: Value) -> String {
    compile(&specs(v), &PolicyOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn compile_errors_name_policy_rule_and_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "ext", "action": "CUSTOM", "provider": {"name": "opa"}, "rules": [{}]}),
            "policy \"ext\": action CUSTOM (external authorization via provider \"opa\") is not supported",
        ),
        (
            json!({"name": "p", "provider": {"name": "opa"}}),
            "`provider` is only valid with action CUSTOM",
        ),
        (
            json!({"name": "sel", "selector": {"matchLabels": {"app": "x"}}}),
            "policy \"sel\": `selector` belongs to the AuthorizationPolicy resource, not its rules; where meshguard applies is decided by the WasmPlugin's selector/targetRefs",
        ),
        (
            json!({"name": "t", "targetRefs": [{"kind": "Gateway", "name": "g"}]}),
            "`targetRefs` belongs to",
        ),
        (
            json!({"name": "d", "action": "DENY"}),
            "policy \"d\": a DENY policy without `rules` never matches",
        ),
        (
            json!({"name": "d", "action": "DENY", "rules": []}),
            "a DENY policy without `rules`",
        ),
        (
            json!({"name": "c", "rules": [{}, {"from": [{"source": {"ipBlocks": ["10.0.0.0/8", "10.0.0.0/33"]}}]}]}),
            "policy \"c\": rules[1].from[0].source.ipBlocks[1]: bad IP address or CIDR range \"10.0.0.0/33\": the prefix length exceeds 32 for an IPv4 address",
        ),
        (
            json!({"name": "c", "rules": [{"from": [{"source": {"notRemoteIpBlocks": ["nope"]}}]}]}),
            "rules[0].from[0].source.notRemoteIpBlocks[0]: bad IP address or CIDR range \"nope\"",
        ),
        (
            json!({"name": "port", "rules": [{"to": [{"operation": {"ports": ["443", "https"]}}]}]}),
            "policy \"port\": rules[0].to[0].operation.ports[1]: bad port \"https\"",
        ),
        (
            json!({"name": "port", "rules": [{"to": [{"operation": {"notPorts": ["65536"]}}]}]}),
            "notPorts[0]: bad port \"65536\"",
        ),
        (
            json!({"name": "tpl", "rules": [{"to": [{"operation": {"paths": ["/{**}/foo/{*}"]}}]}]}),
            "policy \"tpl\": rules[0].to[0].operation.paths[0]: bad path template \"/{**}/foo/{*}\": {**} must be the last operator",
        ),
        (
            json!({"name": "tpl", "rules": [{"to": [{"operation": {"notPaths": ["/foo/{*}.txt"]}}]}]}),
            "notPaths[0]: bad path template",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.auth.claim[x]", "values": ["1"]}]}]}),
            "policy \"k\": rules[0].when[0].key: unknown attribute \"request.auth.claim[x]\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "experimental.envoy.filters.network.mysql_proxy[db.table]", "values": ["[update]"]}]}]}),
            "attribute \"experimental.envoy.filters.network.mysql_proxy[db.table]\" is not supported",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "destination.labels[app]", "values": ["x"]}]}]}),
            "replaced by the workload selector",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.headers[]", "values": ["x"]}]}]}),
            "bad key \"request.headers[]\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.auth.claims[a][]", "values": ["x"]}]}]}),
            "bad key \"request.auth.claims[a][]\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "request.auth.claims", "values": ["x"]}]}]}),
            "bad key",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "source.ip"}]}]}),
            "policy \"k\": rules[0].when[0]: at least one of `values` or `notValues` must be set for key \"source.ip\"",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "source.ip", "values": ["1.2.3.4.5"]}]}]}),
            "rules[0].when[0].values[0]: bad IP",
        ),
        (
            json!({"name": "k", "rules": [{"when": [{"key": "destination.port", "notValues": ["-1"]}]}]}),
            "rules[0].when[0].notValues[0]: bad port",
        ),
        (
            json!({"name": "e", "rules": [{"from": []}]}),
            "policy \"e\": rules[0].from: `from` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"to": []}]}),
            "rules[0].to: `to` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"from": [{}]}]}),
            "rules[0].from[0].source: `from.source` must not be nil",
        ),
        (
            json!({"name": "e", "rules": [{"from": [{"source": {}}]}]}),
            "rules[0].from[0].source: `from.source` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"to": [{"operation": {"paths": []}}]}]}),
            "rules[0].to[0].operation: `to.operation` must not be empty",
        ),
        (
            json!({"name": "e", "rules": [{"to": [{"operation": {"paths": ["/a", ""]}}]}]}),
            "rules[0].to[0].operation.paths[1]: empty value not allowed",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["order-service"]}}]}]}),
            "rules[0].from[0].source.serviceAccounts[0]: bad service account \"order-service\": must be \"<namespace>/<name>\"",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["a/*"]}}]}]}),
            "wildcards are not allowed",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["a/b/c"]}}]}]}),
            "exactly one '/'",
        ),
        (
            json!({"name": "sa", "rules": [{"from": [{"source": {"serviceAccounts": ["a/b"], "principals": ["x"]}}]}]}),
            "cannot set serviceAccounts with namespaces or principals",
        ),
        (
            json!({"name": "", "rules": [{}]}),
            "policies[0]: `name` must not be empty",
        ),
        (
            json!([{"name": "twin"}, {"name": "twin"}]),
            "policy \"twin\": the name is used by more than one policy",
        ),
    ];
    for (spec, want) in cases {
        let got = compile_err(spec.clone());
        assert!(got.contains(want), "spec {spec}\n got: {got}\nwant: {want}");
    }
    let opts = PolicyOptions {
        forwarded_client_cert: Some(ForwardedClientCert { trusted_hop: 0 }),
        ..PolicyOptions::default()
    };
    let err = compile(&[], &opts).unwrap_err().to_string();
    assert!(err.contains("forwardedClientCert.trustedHop"), "{err}");
}
