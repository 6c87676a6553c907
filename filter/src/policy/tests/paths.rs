//! `to.operation` paths: templates and normalization.

use super::*;

#[test]
fn path_templates_and_normalization() {
    let p = build(
        json!({"name": "t", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/{*}/secret/{**}"]}}]}]}),
    );
    run(
        &p,
        &[
            case(
                "match",
                Req::get("/api/v1/secret/a/b"),
                None,
                Want::DenyBy("t", 0),
            ),
            case(
                "empty tail",
                Req::get("/api/v1/secret/"),
                None,
                Want::DenyBy("t", 0),
            ),
            case(
                "two segments for {*}",
                Req::get("/api/v1/x/secret/a"),
                None,
                Want::Allow,
            ),
            case(
                "dot segments",
                Req::get("/api/v1/public/../secret/a"),
                None,
                Want::DenyBy("t", 0),
            ),
            case(
                "doubled slashes are another path under BASE (Istio's default)",
                Req::get("/api//v1/secret//a"),
                None,
                Want::Allow,
            ),
        ],
    );
    let merging = build_with(
        json!({"name": "t", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/{*}/secret/{**}"]}}]}]}),
        &PolicyOptions {
            path_normalization: PathNormalization::MergeSlashes,
            ..PolicyOptions::default()
        },
    );
    run(
        &merging,
        &[case(
            "MERGE_SLASHES merges them",
            Req::get("/api//v1/secret//a"),
            None,
            Want::DenyBy("t", 0),
        )],
    );
    // %00 in the path is refused when enforced policies read paths.
    let d = p.evaluate(&Req::get("/api/%00"), None);
    assert_eq!(d.verdict, Verdict::Deny(DenyReason::InvalidPath));
    // ... but not when only hosts are read.
    let hosts = build(
        json!({"name": "h", "action": "DENY", "rules": [{"to": [{"operation": {"hosts": ["x"]}}]}]}),
    );
    assert!(hosts.evaluate(&Req::get("/api/%00"), None).is_allowed());

    // BASE keeps `//`, so the DENY on `/admin` no longer sees `//admin`.
    let opts = PolicyOptions {
        path_normalization: PathNormalization::Base,
        ..PolicyOptions::default()
    };
    let base = build_with(
        json!({"name": "b", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}),
        &opts,
    );
    run(
        &base,
        &[
            case("plain", Req::get("/admin"), None, Want::DenyBy("b", 0)),
            case("double slash kept", Req::get("//admin"), None, Want::Allow),
        ],
    );
}
