//! `meshguard istio-convert`: RequestAuthentication + AuthorizationPolicy → meshguard WasmPlugin.
//!
//! Mapping (see istio/README.md, "Converter"):
//! * resources are grouped by namespace and target (selector `matchLabels`, or `targetRef(s)`, or
//!   none = namespace-wide); one WasmPlugin per group, in the group's namespace, with the same
//!   selector/targetRefs;
//! * Istio applies to a workload every policy that selects it **plus** the namespace-wide ones of
//!   its namespace **plus** the namespace-wide ones of the root namespace; so each plugin's
//!   `pluginConfig` folds those broader resources in, and plugins run most specific first
//!   (`priority` 30 workload/targetRef, 20 namespace-wide, 10 mesh-wide);
//! * a WasmPlugin without selector in the root namespace applies mesh-wide, like a root-namespace
//!   policy without selector.

use crate::istio::{
    AuthorizationPolicySpec, FromHeader, JwtRule, RequestAuthenticationSpec, Selector, TargetRef,
};
use meshguard::config::{DEFAULT_TOKEN_HEADER, DEFAULT_TOKEN_PARAM, DEFAULT_TOKEN_PREFIX};
use meshguard::policy::{Action, ConditionKey, PolicySpec, RuleSpec};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub const WASMPLUGIN_API: &str = "extensions.istio.io/v1alpha1";
pub const SOURCES_ANNOTATION: &str = "meshguard.io/converted-from";
const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// Converter settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// WasmPlugin `url` (`oci://…`, `https://…`, `file://…`).
    pub image: String,
    /// WasmPlugin `sha256` (for `oci://`: the manifest digest `make oci` prints, without `sha256:`).
    pub sha256: Option<String>,
    /// Istio's root namespace (meshConfig.rootNamespace).
    pub root_namespace: String,
    /// Namespace of resources whose metadata has none (what `kubectl apply` would use).
    pub default_namespace: String,
    /// The mesh's trust domain (meshConfig.trustDomain); written only when not `cluster.local`.
    pub trust_domain: String,
    /// meshConfig.trustDomainAliases.
    pub trust_domain_aliases: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            image: "oci://registry.example.com/meshguard/meshguard:0.1.0".to_owned(),
            sha256: None,
            root_namespace: "istio-system".to_owned(),
            default_namespace: "default".to_owned(),
            trust_domain: meshguard::policy::DEFAULT_TRUST_DOMAIN.to_owned(),
            trust_domain_aliases: Vec::new(),
        }
    }
}

/// A conversion failure, naming where (file, document), what (kind/namespace/name) and which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    pub origin: String,
    pub resource: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(r) = &self.resource {
            write!(f, ": {r}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConvertError {}

/// Where a group of resources applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// No selector: every workload of the namespace (mesh-wide in the root namespace).
    Namespace,
    Workload(BTreeMap<String, String>),
    Refs(Vec<TargetRef>),
}

#[derive(Debug, Clone)]
pub enum Body {
    Authn(Vec<JwtRule>),
    Authz {
        action: Action,
        rules: Vec<RuleSpec>,
        dry_run: bool,
    },
}

/// One parsed and checked input resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub origin: String,
    pub target: Target,
    pub body: Body,
}

impl Resource {
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

struct Ctx<'a> {
    origin: &'a str,
    resource: Option<String>,
}

impl Ctx<'_> {
    fn err(&self, field: Option<&str>, message: impl Into<String>) -> ConvertError {
        ConvertError {
            origin: self.origin.to_owned(),
            resource: self.resource.clone(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Parses every YAML document of `text` (`origin` names it in errors, e.g. the file name).
pub fn parse_documents(
    origin: &str,
    text: &str,
    opts: &Options,
) -> Result<Vec<Resource>, ConvertError> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let doc_origin = format!("{origin} (document {})", i + 1);
        let value = Value::deserialize(doc).map_err(|e| ConvertError {
            origin: doc_origin.clone(),
            resource: None,
            field: None,
            message: format!("not valid YAML: {e}"),
        })?;
        parse_value(&doc_origin, &value, opts, &mut out)?;
    }
    Ok(out)
}

fn parse_value(
    origin: &str,
    value: &Value,
    opts: &Options,
    out: &mut Vec<Resource>,
) -> Result<(), ConvertError> {
    let ctx = Ctx {
        origin,
        resource: None,
    };
    let obj = match value {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        _ => return Err(ctx.err(None, "a document must be a Kubernetes object (a mapping)")),
    };
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind == "List" && api == "v1" {
        let items = obj.get("items").and_then(Value::as_array);
        for (j, item) in items.into_iter().flatten().enumerate() {
            parse_value(&format!("{origin} items[{j}]"), item, opts, out)?;
        }
        return Ok(());
    }
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or(&opts.default_namespace)
        .to_owned();
    let ctx = Ctx {
        origin,
        resource: Some(format!(
            "{}/{}/{}",
            if kind.is_empty() { "<no kind>" } else { kind },
            namespace,
            if name.is_empty() { "<no name>" } else { name }
        )),
    };
    let kind: &'static str = match kind {
        "RequestAuthentication" => "RequestAuthentication",
        "AuthorizationPolicy" => "AuthorizationPolicy",
        "" => return Err(ctx.err(Some("kind"), "missing")),
        other => {
            return Err(ctx.err(
                Some("kind"),
                format!(
                    "{other} is not converted (only RequestAuthentication and AuthorizationPolicy)"
                ),
            ));
        }
    };
    if api != "security.istio.io/v1" && api != "security.istio.io/v1beta1" {
        return Err(ctx.err(
            Some("apiVersion"),
            format!("{api:?} is not security.istio.io/v1 or security.istio.io/v1beta1"),
        ));
    }
    if name.is_empty() {
        return Err(ctx.err(Some("metadata.name"), "missing"));
    }
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "apiVersion" | "kind" | "metadata" | "spec" | "status"
        ) {
            return Err(ctx.err(Some(key), "unknown top-level field"));
        }
    }
    let spec = obj
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(serde_json::Map::new()));
    let dry_run = match meta
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(DRY_RUN_ANNOTATION))
    {
        None => false,
        Some(Value::String(s)) if s == "true" => true,
        Some(Value::String(s)) if s == "false" => false,
        Some(_) => {
            return Err(ctx.err(
                Some(&format!("metadata.annotations[{DRY_RUN_ANNOTATION}]")),
                "must be \"true\" or \"false\"",
            ));
        }
    };
    let resource = if kind == "RequestAuthentication" {
        let s: RequestAuthenticationSpec = typed(&ctx, spec)?;
        let target = target(&ctx, &namespace, s.selector, s.target_ref, s.target_refs)?;
        let mut rules = s.jwt_rules;
        for (i, r) in rules.iter_mut().enumerate() {
            if let Some(legacy) = r.jwks_uri_legacy.take() {
                if r.jwks_uri.is_some() {
                    return Err(ctx.err(
                        Some(&format!("spec.jwtRules[{i}].jwks_uri")),
                        "only one of jwks_uri and jwksUri may be set",
                    ));
                }
                r.jwks_uri = Some(legacy);
            }
            if r.jwks.is_some() && r.jwks_uri.is_some() {
                return Err(ctx.err(
                    Some(&format!("spec.jwtRules[{i}].jwks")),
                    "only one of jwks and jwksUri may be set",
                ));
            }
            if r.issuer.is_empty() {
                return Err(ctx.err(
                    Some(&format!("spec.jwtRules[{i}].issuer")),
                    "must not be empty",
                ));
            }
        }
        Resource {
            kind,
            namespace,
            name: name.to_owned(),
            origin: origin.to_owned(),
            target,
            body: Body::Authn(rules),
        }
    } else {
        let s: AuthorizationPolicySpec = typed(&ctx, spec)?;
        let target = target(&ctx, &namespace, s.selector, s.target_ref, s.target_refs)?;
        let action = s.action.unwrap_or_default();
        let rules = s.rules.unwrap_or_default();
        if action == Action::Custom {
            return Err(ctx.err(
                Some("spec.action"),
                "CUSTOM (external authorization) cannot be represented by meshguard; keep this policy as an Istio AuthorizationPolicy",
            ));
        }
        if s.provider.is_some() {
            return Err(ctx.err(
                Some("spec.provider"),
                "only meaningful with action CUSTOM, which meshguard does not support",
            ));
        }
        for (i, rule) in rules.iter().enumerate() {
            for (j, c) in rule.when.iter().flatten().enumerate() {
                // The filter's own grammar: a key it evaluates is a key the converter accepts.
                ConditionKey::parse(&c.key).map_err(|why| {
                    ctx.err(
                        Some(&format!("spec.rules[{i}].when[{j}].key")),
                        format!("{:?}: {why}", c.key),
                    )
                })?;
                if c.values.is_none() && c.not_values.is_none() {
                    return Err(ctx.err(
                        Some(&format!("spec.rules[{i}].when[{j}]")),
                        "needs values or notValues",
                    ));
                }
            }
        }
        Resource {
            kind,
            namespace,
            name: name.to_owned(),
            origin: origin.to_owned(),
            target,
            body: Body::Authz {
                action,
                rules,
                dry_run,
            },
        }
    };
    out.push(resource);
    Ok(())
}

fn typed<T: serde::de::DeserializeOwned>(ctx: &Ctx<'_>, spec: Value) -> Result<T, ConvertError> {
    serde_path_to_error::deserialize(spec).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "spec".to_owned()
        } else {
            format!("spec.{path}")
        };
        ctx.err(Some(&field), e.into_inner().to_string())
    })
}

fn target(
    ctx: &Ctx<'_>,
    namespace: &str,
    selector: Option<Selector>,
    target_ref: Option<TargetRef>,
    target_refs: Option<Vec<TargetRef>>,
) -> Result<Target, ConvertError> {
    let set = usize::from(selector.is_some())
        + usize::from(target_ref.is_some())
        + usize::from(target_refs.is_some());
    if set > 1 {
        return Err(ctx.err(
            Some("spec.selector"),
            "only one of selector, targetRef and targetRefs can be set",
        ));
    }
    let mut refs: Vec<TargetRef> = target_ref
        .into_iter()
        .chain(target_refs.into_iter().flatten())
        .collect();
    if !refs.is_empty() {
        for (i, r) in refs.iter_mut().enumerate() {
            if !r.namespace.is_empty() && r.namespace != namespace {
                return Err(ctx.err(
                    Some(&format!("spec.targetRefs[{i}].namespace")),
                    "cross-namespace references are not supported",
                ));
            }
            r.namespace.clear();
        }
        refs.sort();
        refs.dedup();
        return Ok(Target::Refs(refs));
    }
    for (k, v) in selector.iter().flat_map(|s| s.match_labels.iter()) {
        if k.is_empty() || k.contains('*') || v.contains('*') {
            return Err(ctx.err(
                Some(&format!("spec.selector.matchLabels[{k}]")),
                "label keys must be non-empty and labels may not contain wildcards",
            ));
        }
    }
    Ok(match selector {
        Some(s) if !s.match_labels.is_empty() => Target::Workload(s.match_labels),
        _ => Target::Namespace,
    })
}

// ---- output ----

/// The filter's plugin configuration.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfig {
    pub jwt_rules: Vec<JwtRule>,
    /// The filter's own policy type: what is written here is what `on_configure` reads.
    pub policies: Vec<PolicySpec>,
    pub unknown_issuer: &'static str,
    /// Istio's mesh config, so that `principals` mean what they mean in that mesh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trust_domain_aliases: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPluginSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_refs: Option<Vec<TargetRef>>,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub phase: &'static str,
    pub priority: i32,
    pub fail_strategy: &'static str,
    #[serde(rename = "type")]
    pub plugin_type: &'static str,
    pub plugin_config: PluginConfig,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmPlugin {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: WasmPluginSpec,
}

/// The converter's result: plugins plus warnings about approximations.
#[derive(Debug, Clone)]
pub struct Output {
    pub plugins: Vec<WasmPlugin>,
    pub warnings: Vec<String>,
}

impl Output {
    /// Multi-document YAML.
    pub fn to_yaml(&self) -> Result<String, String> {
        let mut s = String::new();
        for p in &self.plugins {
            s.push_str("---\n");
            s.push_str(&serde_norway::to_string(p).map_err(|e| e.to_string())?);
        }
        Ok(s)
    }
}

fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

fn base_name(ns: &str, target: &Target, root: &str) -> String {
    let suffix = match target {
        Target::Namespace if ns == root => "mesh".to_owned(),
        Target::Namespace => String::new(),
        Target::Workload(labels) => {
            sanitize(&labels.values().cloned().collect::<Vec<_>>().join("-"))
        }
        Target::Refs(refs) => sanitize(
            &refs
                .iter()
                .map(|r| format!("{}-{}", r.kind, r.name))
                .collect::<Vec<_>>()
                .join("-"),
        ),
    };
    let mut name = if suffix.is_empty() {
        "meshguard".to_owned()
    } else {
        format!("meshguard-{suffix}")
    };
    name.truncate(56);
    name.trim_end_matches('-').to_owned()
}

/// Groups resources and builds one WasmPlugin per group.
pub fn convert(resources: &[Resource], opts: &Options) -> Result<Output, ConvertError> {
    let root = opts.root_namespace.as_str();
    let mut groups: BTreeMap<(String, Target), Vec<&Resource>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for r in resources {
        if !seen.insert(r.id()) {
            return Err(ConvertError {
                origin: r.origin.clone(),
                resource: Some(r.id()),
                field: Some("metadata.name".to_owned()),
                message: "duplicate resource (same kind, namespace and name given twice)"
                    .to_owned(),
            });
        }
        groups
            .entry((r.namespace.clone(), r.target.clone()))
            .or_default()
            .push(r);
    }
    let broad = |ns: &str| -> Vec<&Resource> {
        groups
            .get(&(ns.to_owned(), Target::Namespace))
            .cloned()
            .unwrap_or_default()
    };
    let mut plugins = Vec::new();
    let mut warnings = Vec::new();
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    let mut plugin_of: BTreeMap<(String, Target), String> = BTreeMap::new();
    for (ns, target) in groups.keys() {
        let base = base_name(ns, target, root);
        let mut name = base.clone();
        let mut n = 2;
        while !names.insert((ns.clone(), name.clone())) {
            name = format!("{base}-{n}");
            n += 1;
        }
        plugin_of.insert((ns.clone(), target.clone()), name);
    }
    for ((ns, target), own) in &groups {
        // Most specific first: own, then this namespace's namespace-wide, then mesh-wide.
        let mut folded: Vec<&Resource> = own.clone();
        if *target != Target::Namespace {
            folded.extend(broad(ns));
        }
        if ns != root {
            folded.extend(broad(root));
        }
        let mut jwt_rules: Vec<JwtRule> = Vec::new();
        // Which resource contributed each rule first (for errors).
        let mut rule_sources: Vec<&Resource> = Vec::new();
        let mut policies = Vec::new();
        for r in &folded {
            match &r.body {
                Body::Authn(rules) => {
                    for (j, rule) in rules.iter().enumerate() {
                        match jwt_rules.iter().position(|x| x.issuer == rule.issuer) {
                            None => {
                                jwt_rules.push(rule.clone());
                                rule_sources.push(r);
                            }
                            Some(k) => {
                                let (Some(have), Some(first)) =
                                    (jwt_rules.get_mut(k), rule_sources.get(k))
                                else {
                                    continue;
                                };
                                let before = have.clone();
                                if !merge_same_issuer(have, rule) {
                                    return Err(ConvertError {
                                        origin: r.origin.clone(),
                                        resource: Some(r.id()),
                                        field: Some(format!("spec.jwtRules[{j}].issuer")),
                                        message: format!(
                                            "issuer {:?} also has a jwtRule in {} that differs in more than its token locations; meshguard keeps one rule per issuer, so Istio's either-rule semantics cannot be represented: make the rules identical (locations may differ)",
                                            rule.issuer,
                                            first.id()
                                        ),
                                    });
                                }
                                if *have != before {
                                    warnings.push(format!(
                                        "issuer {:?}: the jwtRules of {} and {} differ only in token locations and were merged (a token is accepted in any of their locations)",
                                        rule.issuer,
                                        first.id(),
                                        r.id()
                                    ));
                                }
                            }
                        }
                    }
                }
                Body::Authz {
                    action,
                    rules,
                    dry_run,
                } => policies.push(PolicySpec {
                    name: format!("{}/{}", r.namespace, r.name),
                    action: *action,
                    rules: Some(rules.clone()),
                    dry_run: *dry_run,
                    ..PolicySpec::default()
                }),
            }
        }
        let (selector, target_refs, priority) = match target {
            Target::Namespace => (None, None, if ns == root { 10 } else { 20 }),
            Target::Workload(labels) => (
                Some(Selector {
                    match_labels: labels.clone(),
                }),
                None,
                30,
            ),
            Target::Refs(refs) => (None, Some(refs.clone()), 30),
        };
        let name = plugin_of
            .get(&(ns.clone(), target.clone()))
            .cloned()
            .unwrap_or_default();
        let sources: Vec<String> = folded.iter().map(|r| r.id()).collect();
        let mut annotations = BTreeMap::new();
        annotations.insert(SOURCES_ANNOTATION.to_owned(), sources.join(","));
        // Overlap: this group's workloads also run the broader plugins.
        if *target != Target::Namespace || ns != root {
            let mut broader = Vec::new();
            if *target != Target::Namespace
                && let Some(p) = plugin_of.get(&(ns.clone(), Target::Namespace))
            {
                broader.push(format!("{ns}/{p}"));
            }
            if ns != root
                && let Some(p) = plugin_of.get(&(root.to_owned(), Target::Namespace))
            {
                broader.push(format!("{root}/{p}"));
            }
            if !broader.is_empty() {
                warnings.push(format!(
                    "workloads selected by {ns}/{name} also run {} (WasmPlugins stack; Istio merges policies): {ns}/{name} runs first (priority) and folds their rules in, so it decides as Istio would, but the broader plugins then see the request after it (token removed unless forwardOriginalToken) — exact only when they hold no JWT-dependent policies and no output headers (see istio/README.md, Converter)",
                    broader.join(", ")
                ));
            }
        }
        let plugin_config = PluginConfig {
            jwt_rules,
            policies,
            unknown_issuer: "reject",
            trust_domain: (opts.trust_domain != meshguard::policy::DEFAULT_TRUST_DOMAIN)
                .then(|| opts.trust_domain.clone()),
            trust_domain_aliases: opts.trust_domain_aliases.clone(),
        };
        check_with_filter(&plugin_config, &folded, ns, &name)?;
        plugins.push(WasmPlugin {
            api_version: WASMPLUGIN_API,
            kind: "WasmPlugin",
            metadata: Metadata {
                name,
                namespace: ns.clone(),
                annotations,
            },
            spec: WasmPluginSpec {
                selector,
                target_refs,
                url: opts.image.clone(),
                sha256: opts.sha256.clone(),
                phase: "AUTHN",
                priority,
                fail_strategy: "FAIL_CLOSE",
                plugin_type: "HTTP",
                plugin_config,
            },
        });
    }
    Ok(Output { plugins, warnings })
}

/// Istio's token locations when a rule names none: `Authorization: Bearer` and `access_token`.
fn explicit_locations(rule: &JwtRule) -> (Vec<FromHeader>, Vec<String>, Vec<String>) {
    if rule.from_headers.is_none() && rule.from_params.is_none() && rule.from_cookies.is_none() {
        return (
            vec![FromHeader {
                name: DEFAULT_TOKEN_HEADER.to_owned(),
                prefix: Some(DEFAULT_TOKEN_PREFIX.to_owned()),
            }],
            vec![DEFAULT_TOKEN_PARAM.to_owned()],
            Vec::new(),
        );
    }
    (
        rule.from_headers.clone().unwrap_or_default(),
        rule.from_params.clone().unwrap_or_default(),
        rule.from_cookies.clone().unwrap_or_default(),
    )
}

/// Merges `other` into `have` (same issuer) when they differ only in token locations; the
/// result accepts a token in any location of either. False when anything else differs.
fn merge_same_issuer(have: &mut JwtRule, other: &JwtRule) -> bool {
    let strip = |r: &JwtRule| JwtRule {
        from_headers: None,
        from_params: None,
        from_cookies: None,
        ..r.clone()
    };
    if strip(have) != strip(other) {
        return false;
    }
    if have == other {
        return true;
    }
    let (mut h, mut p, mut c) = explicit_locations(have);
    let (h2, p2, c2) = explicit_locations(other);
    for x in h2 {
        if !h.contains(&x) {
            h.push(x);
        }
    }
    for x in p2 {
        if !p.contains(&x) {
            p.push(x);
        }
    }
    for x in c2 {
        if !c.contains(&x) {
            c.push(x);
        }
    }
    have.from_headers = (!h.is_empty()).then_some(h);
    have.from_params = (!p.is_empty()).then_some(p);
    have.from_cookies = (!c.is_empty()).then_some(c);
    true
}

/// Compiles `cfg` with the filter's own configuration compiler (what `on_configure` runs), so
/// the converter never prints a configuration the filter would refuse. An error is traced back
/// to the input resource that contributed the offending `jwtRules[i]` / `policies[i]`.
fn check_with_filter(
    cfg: &PluginConfig,
    folded: &[&Resource],
    ns: &str,
    plugin: &str,
) -> Result<(), ConvertError> {
    let json = serde_json::to_vec(cfg).map_err(|e| ConvertError {
        origin: format!("WasmPlugin {ns}/{plugin}"),
        resource: None,
        field: None,
        message: e.to_string(),
    })?;
    let Err(e) = meshguard::config::CompiledConfig::from_json(&json) else {
        return Ok(());
    };
    // Trace the failing path back to the input resource and its own field.
    let index_after = |text: &str, prefix: &str| -> Option<(usize, String)> {
        let rest = text.strip_prefix(prefix)?;
        let (i, tail) = rest.split_once(']')?;
        Some((i.parse().ok()?, tail.trim_start_matches('.').to_owned()))
    };
    let policy_named = |name: &str| {
        folded.iter().copied().find(|r| {
            format!("{}/{}", r.namespace, r.name) == name && matches!(r.body, Body::Authz { .. })
        })
    };
    let mut source: Option<&Resource> = None;
    let mut field = format!("pluginConfig.{}", e.path);
    let mut why = e.why.clone();
    if let Some((i, tail)) = index_after(&e.path, "jwtRules[") {
        if let Some(rule) = cfg.jwt_rules.get(i) {
            for r in folded {
                if let Body::Authn(rs) = &r.body
                    && let Some(j) = rs.iter().position(|x| x == rule)
                {
                    source = Some(r);
                    field = format!(
                        "spec.jwtRules[{j}]{}{tail}",
                        if tail.is_empty() { "" } else { "." }
                    );
                    break;
                }
            }
        }
    } else if let Some((i, tail)) = index_after(&e.path, "policies[") {
        source = cfg.policies.get(i).and_then(|p| policy_named(&p.name));
        if source.is_some() && tail.starts_with("rules") {
            field = format!("spec.{tail}");
        }
    } else if e.path == "policies"
        && let Some(rest) = e.why.strip_prefix("policy \"")
        && let Some((name, rest)) = rest.split_once("\": ")
    {
        source = policy_named(name);
        if source.is_some() {
            match rest.split_once(": ") {
                Some((sub, w)) if sub.starts_with("rules") => {
                    field = format!("spec.{sub}");
                    why = w.to_owned();
                }
                _ => why = rest.to_owned(),
            }
        }
    }
    Err(ConvertError {
        origin: source.map_or_else(|| format!("WasmPlugin {ns}/{plugin}"), |r| r.origin.clone()),
        resource: source.map(Resource::id),
        field: Some(field),
        message: format!("refused by the meshguard filter: {why}"),
    })
}

/// Parses all inputs and converts them: `inputs` are (origin, text) pairs.
pub fn convert_texts(inputs: &[(String, String)], opts: &Options) -> Result<Output, ConvertError> {
    let mut resources = Vec::new();
    for (origin, text) in inputs {
        resources.extend(parse_documents(origin, text, opts)?);
    }
    convert(&resources, opts)
}
