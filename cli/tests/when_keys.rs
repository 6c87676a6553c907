//! Every `when` key docs/policies.md documents converts: the table is read from the document, so
//! a key added there that the converter (the filter's own grammar, `ConditionKey`) refuses fails
//! here, and a new `ConditionKey` that the table does not document fails too.
// Helpers outside `#[test]` functions are not "in tests" for clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard::policy::ConditionKey;
use meshguard_cli::convert::{self, Options};
use std::collections::BTreeSet;

const POLICIES_MD: &str = include_str!("../../docs/policies.md");

/// The keys in the first column of the table under "## `when` keys", as written there
/// (`request.auth.claims[a][b]…` without its `…`).
fn documented_keys() -> Vec<String> {
    let section = POLICIES_MD
        .split("\n## `when` keys\n")
        .nth(1)
        .expect("docs/policies.md has a \"## `when` keys\" section");
    let mut keys = Vec::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let first_cell = line.split('|').nth(1).unwrap_or_default();
        // Every `...` of the first cell is a key; the header and separator rows have none.
        for (i, quoted) in first_cell.split('`').enumerate() {
            if i % 2 == 1 {
                keys.push(quoted.trim_end_matches('…').to_owned());
            }
        }
    }
    keys
}

/// A value the filter accepts for `key`.
fn value_for(key: &str) -> &'static str {
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => "10.0.0.0/8",
        "destination.port" => "8443",
        "source.serviceAccount" => "default/sleep",
        "request.auth.binding" => "x5t#S256",
        _ => "v*",
    }
}

/// An index per variant: adding a `ConditionKey` breaks this match until the test (and so the
/// documentation check below) knows it.
fn variant(key: &ConditionKey) -> usize {
    match key {
        ConditionKey::SourceIp => 0,
        ConditionKey::RemoteIp => 1,
        ConditionKey::SourceNamespace => 2,
        ConditionKey::SourcePrincipal => 3,
        ConditionKey::SourceServiceAccount => 4,
        ConditionKey::SourceTrustDomain => 5,
        ConditionKey::RequestPrincipal => 6,
        ConditionKey::Audiences => 7,
        ConditionKey::Presenter => 8,
        ConditionKey::DestinationIp => 9,
        ConditionKey::DestinationPort => 10,
        ConditionKey::Sni => 11,
        ConditionKey::Header {
            per_element: false, ..
        } => 12,
        ConditionKey::Header {
            per_element: true, ..
        } => 13,
        ConditionKey::Claim(_) => 14,
        ConditionKey::AuthBinding => 15,
    }
}
const VARIANTS: usize = 16;

#[test]
fn every_documented_when_key_converts() {
    let keys = documented_keys();
    assert!(
        keys.len() >= 15,
        "too few keys read from the table: {keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k == "request.experimental.inline.headers[name]"),
        "{keys:?}"
    );

    let mut when = String::new();
    for key in &keys {
        when.push_str(&format!(
            "    - key: \"{key}\"\n      values: [\"{}\"]\n",
            value_for(key)
        ));
    }
    let yaml = format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: every-key\n  namespace: shop\nspec:\n  rules:\n  - when:\n{when}"
    );
    let out = convert::convert_texts(&[("every-key.yaml".into(), yaml)], &Options::default())
        .unwrap_or_else(|e| panic!("a documented when key does not convert: {e}"));
    let cfg = serde_json::to_value(&out.plugins[0].spec.plugin_config).unwrap();
    let converted: Vec<&str> = cfg["policies"][0]["rules"][0]["when"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(converted, keys);

    // The other way round: every kind of key the filter knows is documented.
    let documented: BTreeSet<usize> = keys
        .iter()
        .map(|k| variant(&ConditionKey::parse(k).unwrap()))
        .collect();
    let missing: Vec<usize> = (0..VARIANTS).filter(|v| !documented.contains(v)).collect();
    assert!(
        missing.is_empty(),
        "ConditionKey variants {missing:?} (see `variant`) are not in docs/policies.md's table"
    );
}
