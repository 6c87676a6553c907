//! `make istio-check`: every manifest in istio/ and the converter's output on istio/testdata
//! validate against Istio's CRD schemas (support/mod.rs); the converter's mapping and its errors.
// Helpers outside `#[test]` functions are not "in tests" for clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use meshguard_cli::convert::{self, Options};
use serde_json::{Value, json};
use std::process::Command;
use support::{Crds, repo_root, yaml_docs};

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap()
}

fn yaml_files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

fn convert_files(files: &[&str]) -> Result<convert::Output, convert::ConvertError> {
    let inputs: Vec<(String, String)> = files.iter().map(|f| (f.to_string(), read(f))).collect();
    convert::convert_texts(&inputs, &Options::default())
}

/// The converter's YAML, parsed back: what a user would `kubectl apply`.
fn converted_docs(files: &[&str]) -> Vec<Value> {
    yaml_docs(&convert_files(files).unwrap().to_yaml().unwrap())
}

fn assert_valid(crds: &Crds, what: &str, doc: &Value) {
    let errors = crds.validate(doc);
    assert!(
        errors.is_empty(),
        "{what} ({} {}): {errors:#?}",
        doc["kind"],
        doc["metadata"]["name"]
    );
}

#[test]
fn every_manifest_in_istio_dir_validates() {
    let crds = Crds::load();
    let mut kinds = Vec::new();
    let files = yaml_files("istio");
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        for doc in yaml_docs(&read(f)) {
            assert_valid(&crds, f, &doc);
            kinds.push(doc["kind"].as_str().unwrap().to_owned());
            // A WasmPlugin's pluginConfig is a configuration meshguard accepts.
            if doc["kind"] == "WasmPlugin" {
                let config = doc["spec"]["pluginConfig"].to_string();
                if let Err(e) = meshguard::config::CompiledConfig::from_json(config.as_bytes()) {
                    panic!("{f}: {} pluginConfig: {e}", doc["metadata"]["name"]);
                }
            }
        }
    }
    for k in [
        "WasmPlugin",
        "ServiceEntry",
        "DestinationRule",
        "RequestAuthentication",
        "AuthorizationPolicy",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in istio/: {kinds:?}");
    }
}

#[test]
fn wasmplugin_manifest_has_the_promised_shape() {
    let docs = yaml_docs(&read("istio/wasmplugin.yaml"));
    assert_eq!(docs.len(), 2);
    for d in &docs {
        let s = &d["spec"];
        assert_eq!(s["phase"], "AUTHN");
        assert_eq!(s["failStrategy"], "FAIL_CLOSE");
        assert!(s["url"].as_str().unwrap().starts_with("oci://"));
        let sha = s["sha256"].as_str().unwrap();
        assert!(sha.len() == 64 && sha.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(
            s["pluginConfig"]["jwtRules"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        );
    }
    assert!(docs[0]["spec"]["selector"]["matchLabels"].is_object());
    assert_eq!(docs[1]["spec"]["targetRefs"][0]["kind"], "Gateway");
}

/// meshguard's default `jwksCluster` is Istio's outbound cluster name of the `jwksUri`:
/// `outbound|<port>||<host>`. Each WasmPlugin rule relying on that default must find, in istio/,
/// a ServiceEntry creating that cluster and a DestinationRule originating TLS on it.
#[test]
fn default_jwks_cluster_exists_with_tls_origination() {
    let all: Vec<Value> = yaml_files("istio")
        .iter()
        .flat_map(|f| yaml_docs(&read(f)))
        .collect();
    let mut checked = 0;
    for wp in all.iter().filter(|d| d["kind"] == "WasmPlugin") {
        for rule in wp["spec"]["pluginConfig"]["jwtRules"].as_array().unwrap() {
            let (Some(uri), None) = (rule["jwksUri"].as_str(), rule.get("jwksCluster")) else {
                continue;
            };
            let rest = uri.strip_prefix("https://").expect("https jwksUri");
            let authority = rest.split('/').next().unwrap();
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, p.parse::<u64>().unwrap()),
                None => (authority, 443),
            };
            let cluster = format!("outbound|{port}||{host}");
            let se = all
                .iter()
                .find(|d| {
                    d["kind"] == "ServiceEntry"
                        && d["spec"]["hosts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|h| h == host)
                        && d["spec"]["ports"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|p| p["number"] == port)
                })
                .unwrap_or_else(|| panic!("no ServiceEntry makes cluster {cluster}"));
            assert_eq!(se["spec"]["resolution"], "DNS");
            let dr = all
                .iter()
                .find(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
                .unwrap_or_else(|| panic!("no DestinationRule for {host}"));
            let tls = dr["spec"]["trafficPolicy"]["portLevelSettings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["port"]["number"] == port)
                .map(|p| p["tls"].clone())
                .unwrap_or_else(|| panic!("no TLS settings for {cluster}"));
            assert_eq!(tls["mode"], "SIMPLE", "{cluster}");
            assert_eq!(tls["sni"], host);
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn converter_output_on_every_sample_validates() {
    let crds = Crds::load();
    let samples = yaml_files("istio/testdata");
    assert!(samples.len() >= 5, "{samples:?}");
    for f in &samples {
        let docs = converted_docs(&[f.as_str()]);
        assert!(!docs.is_empty(), "{f}");
        for d in &docs {
            assert_valid(&crds, f, d);
            assert_eq!(d["spec"]["phase"], "AUTHN");
            assert_eq!(d["spec"]["failStrategy"], "FAIL_CLOSE");
        }
    }
    // All samples at once (several namespaces, overlapping scopes); the v1beta1 file redefines
    // the v1 file's resources, which the converter refuses as duplicates.
    let all: Vec<&str> = samples
        .iter()
        .map(String::as_str)
        .filter(|f| !f.contains("v1beta1"))
        .collect();
    for d in converted_docs(&all) {
        assert_valid(&crds, "all samples", &d);
    }
    // The inputs themselves are valid Istio resources too.
    for f in &samples {
        for doc in yaml_docs(&read(f)) {
            assert_valid(&crds, f, &doc);
        }
    }
}

#[test]
fn gateway_meshguard_yaml_is_the_converters_output() {
    let want = yaml_docs(&read("istio/gateway-meshguard.yaml"));
    let got = converted_docs(&["istio/gateway-istio.yaml"]);
    assert_eq!(
        got, want,
        "regenerate: meshguard istio-convert istio/gateway-istio.yaml"
    );
    let cfg = &got[0]["spec"]["pluginConfig"];
    let rule = &cfg["jwtRules"][0];
    assert_eq!(rule["fromCookies"], json!(["np_scope_token"]));
    assert_eq!(
        rule["fromHeaders"],
        json!([{"name": "Authorization", "prefix": "Bearer "}])
    );
    assert_eq!(
        rule["outputClaimToHeaders"],
        json!([{"header": "X-User-ID", "claim": "sub"}, {"header": "X-User-Email", "claim": "email"}])
    );
    let p = &cfg["policies"][0];
    assert_eq!(p["action"], "DENY");
    assert_eq!(
        p["rules"][0]["to"][0]["operation"]["notPaths"],
        json!(["/health"])
    );
    assert_eq!(p["rules"][0]["when"][0]["key"], "request.auth.claims[aud]");
}

#[test]
fn converter_groups_and_folds_scopes() {
    let out = convert_files(&["istio/testdata/namespace-wide.yaml"]).unwrap();
    let by_name = |ns: &str, n: &str| {
        out.plugins
            .iter()
            .find(|p| p.metadata.namespace == ns && p.metadata.name == n)
            .unwrap_or_else(|| {
                panic!(
                    "no {ns}/{n} in {:?}",
                    out.plugins
                        .iter()
                        .map(|p| &p.metadata.name)
                        .collect::<Vec<_>>()
                )
            })
    };
    assert_eq!(out.plugins.len(), 3);
    let mesh = by_name("istio-system", "meshguard-mesh");
    assert!(mesh.spec.selector.is_none() && mesh.spec.target_refs.is_none());
    assert_eq!(mesh.spec.priority, 10);
    assert_eq!(mesh.spec.plugin_config.jwt_rules.len(), 1);
    assert!(mesh.spec.plugin_config.policies.is_empty());

    let ns = by_name("shop", "meshguard");
    assert_eq!(ns.spec.priority, 20);
    assert!(ns.spec.selector.is_none());
    assert_eq!(
        ns.spec.plugin_config.jwt_rules.len(),
        1,
        "mesh-wide jwtRules folded in"
    );
    let names: Vec<&str> = ns
        .spec
        .plugin_config
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["shop/shop-allow-get"]);

    let cart = by_name("shop", "meshguard-cart");
    assert_eq!(cart.spec.priority, 30);
    assert_eq!(
        cart.spec.selector.as_ref().unwrap().match_labels["app"],
        "cart"
    );
    let names: Vec<&str> = cart
        .spec
        .plugin_config
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["shop/cart-deny-anonymous", "shop/shop-allow-get"],
        "own first, then namespace-wide"
    );
    assert!(
        cart.spec.plugin_config.policies[0].dry_run,
        "istio.io/dry-run annotation"
    );
    assert_eq!(cart.spec.plugin_config.jwt_rules.len(), 1);
    assert_eq!(out.warnings.len(), 2, "{:#?}", out.warnings);
    assert!(
        out.warnings[1]
            .contains("shop/meshguard-cart also run shop/meshguard, istio-system/meshguard-mesh")
    );

    // targetRef + targetRefs to the same Gateway form one group; jwks_uri becomes jwksUri.
    let out = convert_files(&["istio/testdata/targetrefs.yaml"]).unwrap();
    assert_eq!(out.plugins.len(), 1);
    let p = &out.plugins[0];
    let refs = p.spec.target_refs.as_ref().unwrap();
    assert_eq!(
        (refs.len(), refs[0].kind.as_str(), refs[0].name.as_str()),
        (1, "Gateway", "public")
    );
    let cfg = serde_json::to_value(&p.spec.plugin_config).unwrap();
    assert_eq!(
        cfg["jwtRules"][0]["jwksUri"],
        "https://idp.example.com/.well-known/jwks.json"
    );
    assert!(cfg["jwtRules"][0].get("jwks_uri").is_none());
    assert_eq!(cfg["policies"][0]["action"], "AUDIT");
    assert_eq!(cfg["unknownIssuer"], "reject");

    // v1beta1 and v1 give the same plugin for the same spec.
    let a = convert_files(&["istio/testdata/jwt-httpbin.yaml"]).unwrap();
    let b = convert_files(&["istio/testdata/jwt-httpbin-groups-v1beta1.yaml"]).unwrap();
    assert_eq!(a.plugins.len(), 1);
    assert_eq!(b.plugins.len(), 1);
    assert_eq!(a.plugins[0].metadata.name, b.plugins[0].metadata.name);
    assert_eq!(
        serde_json::to_value(&a.plugins[0].spec.plugin_config.jwt_rules).unwrap(),
        serde_json::to_value(&b.plugins[0].spec.plugin_config.jwt_rules).unwrap()
    );
}

#[test]
fn converter_errors_name_resource_and_field() {
    let cases = [
        (
            "custom-action.yaml",
            "AuthorizationPolicy/foo/ext-authz",
            "field spec.action",
            "CUSTOM",
        ),
        (
            "experimental-key.yaml",
            "AuthorizationPolicy/db/mysql",
            "field spec.rules[0].when[0].key",
            "experimental",
        ),
        (
            "unknown-field.yaml",
            "RequestAuthentication/foo/typo",
            "field spec.jwtRules[0].fromHeader",
            "unknown field",
        ),
        (
            "wrong-kind.yaml",
            "PeerAuthentication/foo/strict",
            "field kind",
            "not converted",
        ),
        (
            "selector-and-targetref.yaml",
            "AuthorizationPolicy/foo/both",
            "field spec.selector",
            "only one of",
        ),
        ("bad-yaml.yaml", "(document 1)", "not valid YAML", "line 4"),
        // Refused by the filter's own configuration compiler, traced back to the input.
        (
            "bad-cidr.yaml",
            "AuthorizationPolicy/foo/office-only",
            "field spec.rules[0].from[0].source.ipBlocks[1]",
            "refused by the meshguard filter",
        ),
        (
            "bad-timeout.yaml",
            "RequestAuthentication/foo/slow",
            "field spec.jwtRules[1].timeout",
            "refused by the meshguard filter",
        ),
    ];
    let files = yaml_files("istio/testdata/invalid");
    assert_eq!(files.len(), cases.len(), "every invalid sample has a case");
    for (file, resource, field, why) in cases {
        let path = format!("istio/testdata/invalid/{file}");
        let err = convert_files(&[path.as_str()]).unwrap_err().to_string();
        for want in [path.as_str(), resource, field, why] {
            assert!(err.contains(want), "{file}: {err:?} lacks {want:?}");
        }
    }
    // An error in a later document of a multi-document input names that document.
    let text = format!(
        "{}---\n{}",
        read("istio/testdata/jwt-httpbin.yaml"),
        read("istio/testdata/invalid/custom-action.yaml")
    );
    let err =
        convert::convert_texts(&[("multi.yaml".into(), text)], &Options::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("multi.yaml (document 3): AuthorizationPolicy/foo/ext-authz"),
        "{err}"
    );
}

#[test]
fn converter_never_panics_on_odd_yaml() {
    for text in [
        "",
        "---\n---\n",
        "42",
        "- a\n- b",
        "kind: [",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: 7\n",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x}\nspec: {rules: [{when: [{key: 1}]}]}\n",
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: x}\nspec: {jwtRules: [{}]}\n",
        "apiVersion: v1\nkind: List\nitems: [{kind: AuthorizationPolicy, apiVersion: security.istio.io/v2, metadata: {name: y}}]\n",
        "&a [*a]",
        "{? [a]: b}",
    ] {
        let _ = convert::convert_texts(&[("odd.yaml".into(), text.into())], &Options::default());
    }
}

fn meshguard(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_exit_codes_and_messages() {
    let (code, out, _) = meshguard(&[
        "istio-convert",
        "--image",
        "oci://r.example/mg:1",
        "--sha256",
        &"ab".repeat(32),
        "istio/testdata/jwt-httpbin.yaml",
    ]);
    assert_eq!(code, 0);
    let docs = yaml_docs(&out);
    assert_eq!(docs[0]["spec"]["url"], "oci://r.example/mg:1");
    assert_eq!(docs[0]["spec"]["sha256"], "ab".repeat(32));
    let (code, _, err) = meshguard(&["istio-convert", "istio/testdata/invalid/custom-action.yaml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("AuthorizationPolicy/foo/ext-authz: field spec.action"),
        "{err}"
    );
    let (code, _, err) = meshguard(&[
        "istio-convert",
        "--sha256",
        "xyz",
        "istio/testdata/jwt-httpbin.yaml",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = meshguard(&["istio-convert", "no/such/file.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("no/such/file.yaml"), "{err}");
    assert_eq!(meshguard(&["frobnicate"]).0, 2);
    assert_eq!(meshguard(&["istio-convert"]).0, 2);
}

// ---- the validators must fail on bad manifests (one mutation per check) ----

fn wasmplugin() -> Value {
    yaml_docs(&read("istio/wasmplugin.yaml")).remove(0)
}

fn expect_invalid(crds: &Crds, doc: &Value, needle: &str) {
    let errors = crds.validate(doc);
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "wanted {needle:?} in {errors:#?}"
    );
}

#[test]
fn schema_validation_rejects_mutated_manifests() {
    let crds = Crds::load();
    assert!(crds.validate(&wasmplugin()).is_empty());

    let mut d = wasmplugin();
    d["spec"]["phase"] = json!("AUTHZN");
    expect_invalid(&crds, &d, "schema: /spec/phase");

    let mut d = wasmplugin();
    d["spec"]["failstrategy"] = json!("FAIL_CLOSE");
    expect_invalid(&crds, &d, "failstrategy");

    let mut d = wasmplugin();
    d["spec"]["priority"] = json!("high");
    expect_invalid(&crds, &d, "schema: /spec/priority");
    d["spec"]["priority"] = Value::Null; // nullable: true
    assert!(crds.validate(&d).is_empty(), "{:?}", crds.validate(&d));

    let mut d = wasmplugin();
    d["spec"]["sha256"] = json!("sha256:abc");
    expect_invalid(&crds, &d, "schema: /spec/sha256");

    let mut d = wasmplugin();
    d["spec"].as_object_mut().unwrap().remove("url");
    expect_invalid(&crds, &d, "\"url\" is a required property");

    // pluginConfig keeps unknown fields (x-kubernetes-preserve-unknown-fields).
    let mut d = wasmplugin();
    d["spec"]["pluginConfig"]["anything"] = json!({"goes": [1, 2]});
    assert!(crds.validate(&d).is_empty());

    let mut d = wasmplugin();
    d["apiVersion"] = json!("extensions.istio.io/v1");
    expect_invalid(&crds, &d, "no CRD");

    let mut d = wasmplugin();
    d["metadata"]["name"] = json!("My_Plugin");
    expect_invalid(&crds, &d, "metadata.name");
}

#[test]
fn cel_rules_reject_mutated_manifests() {
    let crds = Crds::load();
    let mut d = wasmplugin();
    d["spec"]["targetRefs"] = json!([{"kind": "Gateway", "name": "gw"}]);
    expect_invalid(&crds, &d, "only one of targetRefs or selector can be set");

    let mut d = wasmplugin();
    d["spec"]["url"] = json!("ftp://example.com/meshguard.wasm");
    expect_invalid(&crds, &d, "url must have schema");

    let mut d = wasmplugin();
    d["spec"]["selector"]["matchLabels"]["app"] = json!("my-*");
    expect_invalid(&crds, &d, "wildcard not allowed in label value");

    let mut d = yaml_docs(&read("istio/wasmplugin.yaml")).remove(1);
    d["spec"]["targetRefs"][0]["namespace"] = json!("other");
    expect_invalid(&crds, &d, "cross namespace referencing");

    let se_dr = yaml_docs(&read("istio/jwks-serviceentry.yaml"));
    let mut se = se_dr[0].clone();
    se["spec"]["hosts"] = json!(["*"]);
    expect_invalid(&crds, &se, "hostname cannot be wildcard");
    let mut se = se_dr[0].clone();
    se["spec"]["ports"] = json!([{"number": 443, "name": "a"}, {"number": 443, "name": "b"}]);
    expect_invalid(&crds, &se, "port number cannot be duplicated");
    let mut se = se_dr[0].clone();
    se["spec"]["ports"][0]["number"] = json!(70000);
    expect_invalid(&crds, &se, "port must be between 1-65535");
    let mut dr = se_dr[1].clone();
    dr["spec"]["trafficPolicy"]["connectionPool"] = json!({"tcp": {"connectTimeout": "0s"}});
    expect_invalid(&crds, &dr, "valid duration");
    let mut dr = se_dr[1].clone();
    dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["mode"] = json!("SIMPLEST");
    expect_invalid(
        &crds,
        &dr,
        "schema: /spec/trafficPolicy/portLevelSettings/0/tls/mode",
    );

    let mut ra = yaml_docs(&read("istio/gateway-istio.yaml")).remove(0);
    ra["spec"]["jwtRules"][0]["jwks"] = json!("{\"keys\":[]}");
    expect_invalid(&crds, &ra, "only one of jwks or jwksUri");
    let mut ra = yaml_docs(&read("istio/gateway-istio.yaml")).remove(0);
    ra["spec"]["jwtRules"][0]["jwksUri"] = json!("file:///etc/jwks.json");
    expect_invalid(&crds, &ra, "url must have scheme http:// or https://");
    let mut ra = yaml_docs(&read("istio/gateway-istio.yaml")).remove(0);
    ra["spec"]["jwtRules"][0]["timeout"] = json!("500us");
    expect_invalid(&crds, &ra, "valid duration");
    ra["spec"]["jwtRules"][0]["timeout"] = json!("1.5s");
    assert!(crds.validate(&ra).is_empty());

    let mut ap = yaml_docs(&read("istio/gateway-istio.yaml")).remove(1);
    ap["spec"]["rules"][0]["from"] =
        json!([{"source": {"serviceAccounts": ["a/b"], "namespaces": ["a"]}}]);
    expect_invalid(&crds, &ap, "Cannot set serviceAccounts with namespaces");
}

#[test]
fn duration_parser_matches_go_syntax() {
    assert_eq!(support::duration_ns("1ms"), Some(1e6));
    assert_eq!(support::duration_ns("1h2m3s"), Some(3723e9));
    assert_eq!(support::duration_ns("1.5s"), Some(1.5e9));
    assert_eq!(support::duration_ns("5"), None);
    assert_eq!(support::duration_ns(""), None);
    assert_eq!(support::duration_ns("3d"), None);
}

/// Every `pluginConfig` in istio/ (hand-written or generated) is accepted by the filter's own
/// configuration compiler — what `on_configure` runs inside Envoy.
#[test]
fn every_plugin_config_in_istio_dir_is_accepted_by_the_filter() {
    let mut n = 0;
    for f in yaml_files("istio") {
        for doc in yaml_docs(&read(&f)) {
            if doc["kind"] != "WasmPlugin" {
                continue;
            }
            let cfg = serde_json::to_vec(&doc["spec"]["pluginConfig"]).unwrap();
            if let Err(e) = meshguard::config::CompiledConfig::from_json(&cfg) {
                panic!("{f} {}: {e}", doc["metadata"]["name"]);
            }
            n += 1;
        }
    }
    assert!(n >= 3);
    // And the filter does refuse a broken one.
    let mut cfg = wasmplugin()["spec"]["pluginConfig"].clone();
    cfg["jwtRules"][0]["algorithm"] = json!(["RS256"]);
    let e = meshguard::config::CompiledConfig::from_json(&serde_json::to_vec(&cfg).unwrap());
    assert!(e.is_err());
}

/// Same issuer in several folded resources: rules that differ only in token locations merge
/// (Istio accepts the token in either rule's locations); any other difference is an error.
#[test]
fn same_issuer_rules_merge_or_fail_precisely() {
    let out = convert_files(&[
        "istio/testdata/namespace-wide.yaml",
        "istio/testdata/targetrefs.yaml",
    ])
    .unwrap();
    let edge = out
        .plugins
        .iter()
        .find(|p| p.metadata.namespace == "edge")
        .unwrap();
    let cfg = serde_json::to_value(&edge.spec.plugin_config).unwrap();
    assert_eq!(cfg["jwtRules"].as_array().unwrap().len(), 1);
    let rule = &cfg["jwtRules"][0];
    // gw-jwt's cookie, plus mesh-jwt's Istio default locations made explicit.
    assert_eq!(rule["fromCookies"], json!(["np_scope_token"]));
    assert_eq!(
        rule["fromHeaders"],
        json!([{"name": "Authorization", "prefix": "Bearer "}])
    );
    assert_eq!(rule["fromParams"], json!(["access_token"]));
    assert!(
        out.warnings.iter().any(|w| w.contains("were merged")),
        "{:#?}",
        out.warnings
    );

    let conflicting = "apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: gw-jwt-aud, namespace: edge}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: public}
  jwtRules:
  - issuer: https://idp.example.com
    jwksUri: https://idp.example.com/.well-known/jwks.json
    audiences: [api]
";
    let inputs = vec![
        (
            "targetrefs.yaml".to_owned(),
            read("istio/testdata/targetrefs.yaml"),
        ),
        ("extra.yaml".to_owned(), conflicting.to_owned()),
    ];
    let err = convert::convert_texts(&inputs, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("extra.yaml (document 1): RequestAuthentication/edge/gw-jwt-aud: field spec.jwtRules[0].issuer")
            && err.contains("RequestAuthentication/edge/gw-jwt"),
        "{err}"
    );
}

/// `kubectl get … -o yaml` output (a `v1` `List`) on standard input.
#[test]
fn cli_reads_a_kubectl_list_from_stdin() {
    use std::io::Write;
    let items: Vec<serde_json::Value> = yaml_docs(&read("istio/testdata/jwt-httpbin.yaml"));
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .args(["istio-convert", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_norway::to_string(&list).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_list = yaml_docs(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        from_list,
        converted_docs(&["istio/testdata/jwt-httpbin.yaml"])
    );
}

/// `--trust-domain` / `--trust-domain-alias` write Istio's mesh config into the plugin config,
/// where the filter expands `principals` as Istio's `ReplaceTrustDomainAliases` does.
#[test]
fn trust_domain_flags() {
    let (code, out, err) = meshguard(&[
        "istio-convert",
        "--trust-domain",
        "td1",
        "--trust-domain-alias",
        "cluster.local",
        "--trust-domain-alias=old-td",
        "istio/gateway-istio.yaml",
    ]);
    assert_eq!(code, 0, "{err}");
    let docs = yaml_docs(&out);
    let cfg = &docs[0]["spec"]["pluginConfig"];
    assert_eq!(cfg["trustDomain"], "td1");
    assert_eq!(cfg["trustDomainAliases"][0], "cluster.local");
    assert_eq!(cfg["trustDomainAliases"][1], "old-td");
    // The default trust domain is not written.
    let (code, out, _) = meshguard(&["istio-convert", "istio/gateway-istio.yaml"]);
    assert_eq!(code, 0);
    let cfg = &yaml_docs(&out)[0]["spec"]["pluginConfig"];
    assert!(cfg.get("trustDomain").is_none() && cfg.get("trustDomainAliases").is_none());
    // A trust domain the filter refuses is refused by the converter, naming the field.
    let (code, _, err) = meshguard(&[
        "istio-convert",
        "--trust-domain-alias",
        "a/b",
        "istio/gateway-istio.yaml",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("trustDomainAliases[0]"), "{err}");
}
