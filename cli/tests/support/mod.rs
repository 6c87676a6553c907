//! Validates Kubernetes manifests against Istio's CRD schemas, checked in at
//! tests/fixtures/istio-crds/crds.yaml (istio/api commit b8f8791d9653, see its README):
//!
//! * `openAPIV3Schema` → JSON Schema (draft 4, which OpenAPI 3.0 schemas derive from):
//!   `nullable: true` adds `null` to the type; `x-kubernetes-int-or-string` becomes
//!   integer-or-string; objects with `properties` and without `additionalProperties` or
//!   `x-kubernetes-preserve-unknown-fields` get `additionalProperties: false`, i.e. unknown fields
//!   are errors as with `kubectl apply --validate=strict`; `apiVersion`/`kind`/`metadata` are added
//!   at the top (the CRD leaves them to the API server), and `metadata.name`/`namespace` are
//!   checked as DNS-1123 names.
//! * `x-kubernetes-validations` (CEL): each of the 23 distinct rules in these CRDs is evaluated
//!   by a hand-written Rust equivalent, matched by its exact text, at every node it governs. A
//!   rule text without an equivalent here fails validation of any manifest it applies to, so a
//!   newer CRD file cannot silently skip checks.
// Each test crate uses part of it; the clippy allows are its including crate root's.
#![allow(dead_code)]

use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// One CRD version: its raw schema and the transformed JSON Schema validator.
pub struct Version {
    pub raw: Value,
    pub validator: jsonschema::Validator,
}

pub struct Crds {
    /// (apiVersion, kind) → schema
    pub versions: BTreeMap<(String, String), Version>,
}

fn transform(s: &mut Value) {
    let Value::Object(o) = s else { return };
    if o.remove("nullable") == Some(Value::Bool(true))
        && let Some(Value::String(t)) = o.get("type").cloned()
    {
        o.insert("type".into(), json!([t, "null"]));
    }
    if o.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        o.remove("type");
        o.entry("anyOf")
            .or_insert(json!([{"type": "integer"}, {"type": "string"}]));
    }
    let preserve = o.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if o.contains_key("properties") && !o.contains_key("additionalProperties") && !preserve {
        o.insert("additionalProperties".into(), Value::Bool(false));
    }
    // CEL rules are checked separately; descriptions are noise.
    o.remove("x-kubernetes-validations");
    o.remove("description");
    for (_, v) in o.iter_mut() {
        match v {
            Value::Object(_) => transform(v),
            Value::Array(a) => a.iter_mut().for_each(transform),
            _ => {}
        }
    }
}

impl Crds {
    pub fn load() -> Crds {
        let path = repo_root().join("tests/fixtures/istio-crds/crds.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut versions = BTreeMap::new();
        for crd in yaml_docs(&text) {
            let group = crd["spec"]["group"].as_str().unwrap().to_owned();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
            for v in crd["spec"]["versions"].as_array().unwrap() {
                let raw = v["schema"]["openAPIV3Schema"].clone();
                let mut schema = raw.clone();
                transform(&mut schema);
                let props = schema["properties"].as_object_mut().unwrap();
                props.insert("apiVersion".into(), json!({"type": "string"}));
                props.insert("kind".into(), json!({"type": "string"}));
                props.insert(
                    "metadata".into(),
                    json!({"type": "object", "required": ["name"]}),
                );
                schema["required"] = json!(["apiVersion", "kind", "metadata", "spec"]);
                let validator = jsonschema::draft4::new(&schema).unwrap();
                let api = format!("{group}/{}", v["name"].as_str().unwrap());
                versions.insert((api, kind.clone()), Version { raw, validator });
            }
        }
        Crds { versions }
    }

    /// All problems with one manifest (empty when valid).
    pub fn validate(&self, doc: &Value) -> Vec<String> {
        let api = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let Some(version) = self.versions.get(&(api.clone(), kind.clone())) else {
            return vec![format!("no CRD for apiVersion {api:?} kind {kind:?}")];
        };
        let mut errors: Vec<String> = version
            .validator
            .iter_errors(doc)
            .map(|e| format!("schema: {}: {e}", e.instance_path()))
            .collect();
        let meta = &doc["metadata"];
        for (field, max) in [("name", 253), ("namespace", 63)] {
            if let Some(v) = meta.get(field) {
                let ok = v.as_str().is_some_and(|s| dns1123(s, max, field == "name"));
                if !ok {
                    errors.push(format!("metadata.{field}: {v} is not a DNS-1123 name"));
                }
            }
        }
        cel_walk(&version.raw, doc, String::new(), &mut errors);
        errors
    }
}

fn dns1123(s: &str, max: usize, dots: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.').count() <= if dots { usize::MAX } else { 1 }
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Walks schema and document together, applying CEL rules where both exist.
fn cel_walk(schema: &Value, doc: &Value, path: String, errors: &mut Vec<String>) {
    if let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    {
        for r in rules {
            let text = r["rule"].as_str().unwrap_or_default();
            let msg = r["message"].as_str().unwrap_or_default();
            match cel(text, doc) {
                Some(true) => {}
                Some(false) => errors.push(format!("cel: {path}: {msg}")),
                None => errors.push(format!(
                    "cel: {path}: rule without a Rust equivalent: {text}"
                )),
            }
        }
    }
    match doc {
        Value::Object(o) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let addl = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in o {
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    cel_walk(s, v, format!("{path}.{k}"), errors);
                } else if let Some(s) = addl {
                    cel_walk(s, v, format!("{path}[{k}]"), errors);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    cel_walk(items, v, format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn has(v: &Value, k: &str) -> bool {
    v.get(k).is_some()
}

fn str_of<'a>(v: &'a Value, k: &str, default: &'a str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or(default)
}

/// Go/protobuf duration text (`1.5s`, `100ms`, `1h2m`) in nanoseconds.
pub fn duration_ns(s: &str) -> Option<f64> {
    let mut rest = s;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, len) = [
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ]
        .iter()
        .filter(|(u, _)| rest.starts_with(u))
        .map(|(u, f)| (*f, u.len()))
        .max_by_key(|(_, l)| *l)?;
        total += num * unit;
        rest = &rest[len..];
    }
    Some(total)
}

fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, rest) = s.split_once("://")?;
    (!scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty())
    .then_some(scheme)
}

/// The CEL rules of the checked-in CRDs, by exact (whitespace-normalised) text.
fn cel(rule: &str, s: &Value) -> Option<bool> {
    let rule = rule.split_whitespace().collect::<Vec<_>>().join(" ");
    let empty = Map::new();
    let obj = s.as_object().unwrap_or(&empty);
    let count = |keys: &[&str]| keys.iter().filter(|k| obj.contains_key(**k)).count();
    Some(match rule.as_str() {
        r#"(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1"# => {
            count(&["selector", "targetRef", "targetRefs"]) <= 1
        }
        r#"(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + (has(self.jwks) ? 1 : 0) <= 1"# => {
            count(&["jwksUri", "jwks_uri", "jwks"]) <= 1
        }
        r#"(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1"# => {
            count(&["workloadSelector", "endpoints"]) <= 1
        }
        r#"self.all(key, !key.contains("*"))"# => obj.keys().all(|k| !k.contains('*')),
        r#"self.all(key, key.size() != 0)"# => obj.keys().all(|k| !k.is_empty()),
        r#"self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))"# => {
            obj.keys().all(|k| {
                k.len() < 63
                    && !k.is_empty()
                    && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && !k.starts_with('-')
                    && !k.ends_with('-')
            })
        }
        r#"!self.contains("*")"# => !s.as_str()?.contains('*'),
        r#"self != "*""# => s.as_str()? != "*",
        "self.size() == 0" => s.as_str()?.is_empty(),
        "0 < self && self <= 65535" => s.as_i64().is_some_and(|n| 0 < n && n <= 65535),
        "duration(self) >= duration('1ms')" => duration_ns(s.as_str()?).is_some_and(|n| n >= 1e6),
        r#"url(self).getScheme() in ["http", "https"]"# => {
            matches!(url_scheme(s.as_str()?), Some("http" | "https"))
        }
        r#"isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) && url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])"# =>
        {
            let u = s.as_str()?;
            match url_scheme(u) {
                Some(sc) => ["http", "https", "oci", "file"].contains(&sc),
                None => !u.contains("://") && !u.is_empty(),
            }
        }
        r#"(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)"# => {
            str_of(s, "valueFrom", "") != "HOST" || !has(s, "value")
        }
        r#"(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) && !has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true"# => {
            !(has(s, "serviceAccounts") || has(s, "notServiceAccounts"))
                || count(&["principals", "notPrincipals", "namespaces", "notNamespaces"]) == 0
        }
        r#"!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && !((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))"# =>
        {
            let cidr = s
                .get("addresses")
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|k| k.as_str().is_some_and(|k| k.contains('/')))
                });
            !cidr || ["STATIC", "NONE"].contains(&str_of(s, "resolution", "NONE"))
        }
        r#"((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true"# => {
            str_of(s, "resolution", "") != "DNS_ROUND_ROBIN"
                || s.get("endpoints")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
                    <= 1
        }
        r#"((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true"# => {
            str_of(s, "resolution", "NONE") != "NONE" || !has(s, "endpoints")
        }
        r#"has(self.address) || has(self.network)"# => has(s, "address") || has(s, "network"),
        r#"(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true"# => {
            !str_of(s, "address", "").starts_with("unix://") || !has(s, "ports")
        }
        r#"self.startsWith("unix://") ? !self.endsWith("/") : true"# => {
            let a = s.as_str()?;
            !a.starts_with("unix://") || !a.ends_with('/')
        }
        r#"self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") : true"# =>
        {
            let a = s.as_str()?;
            !a.starts_with("unix://") || a[7..].starts_with('/') || a[7..].starts_with('@')
        }
        "self.all(l1, self.exists_one(l2, l1.number == l2.number))" => {
            let a = s.as_array()?;
            a.iter().all(|p| {
                a.iter()
                    .filter(|q| q.get("number") == p.get("number"))
                    .count()
                    == 1
            })
        }
        _ => return None,
    })
}
