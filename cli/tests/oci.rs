//! The OCI image layout `make oci` writes: structure, digests, media types, and the module Istio
//! would extract — checked here with code independent of the writer (plain JSON + sha256 +
//! gunzip + tar), plus the writer's own verifier on corrupted layouts, and digests pinned for a
//! fixed module.
// Helpers outside `#[test]` functions are not "in tests" for clippy.toml's allow-*-in-tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use meshguard_cli::oci::{self, Format};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meshguard-oci-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fake_module(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend((0..5000u32).map(|i| (i * 7 % 251) as u8));
    let p = dir.join("meshguard.wasm");
    std::fs::write(&p, &wasm).unwrap();
    (p, wasm)
}

fn hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One entry of a tar archive, read with the `tar` crate.
struct Entry {
    name: String,
    regular: bool,
    data: Vec<u8>,
}

fn tar_entries(archive: &[u8]) -> Vec<Entry> {
    tar::Archive::new(archive)
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let regular = e.header().entry_type() == tar::EntryType::Regular;
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            Entry {
                name,
                regular,
                data,
            }
        })
        .collect()
}

/// Reads a blob by descriptor, asserting name = sha256 and size.
fn blob(layout: &Path, desc: &Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().unwrap();
    let h = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(h)).unwrap();
    assert_eq!(hex(&bytes), h, "blob named {h}");
    assert_eq!(
        bytes.len() as u64,
        desc["size"].as_u64().unwrap(),
        "size of {h}"
    );
    bytes
}

/// Independent walk: index → manifest → config/layers; returns (manifest digest, module).
fn walk(layout: &Path) -> (String, Format, Vec<u8>) {
    let ol: Value =
        serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(ol["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let m = &index["manifests"][0];
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "0.1.0"
    );
    let manifest: Value = serde_json::from_slice(&blob(layout, m)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = blob(layout, &manifest["config"]);
    let layers = manifest["layers"].as_array().unwrap();
    let count = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .count();
    match manifest["config"]["mediaType"].as_str().unwrap() {
        "application/vnd.oci.image.config.v1+json" => {
            // Istio's "compat" variant: last layer tar+gzip with plugin.wasm.
            assert_eq!(layers.len(), 1);
            assert_eq!(
                layers[0]["mediaType"],
                "application/vnd.oci.image.layer.v1.tar+gzip"
            );
            let gz = blob(layout, &layers[0]);
            let mut t = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut t)
                .unwrap();
            let cfg: Value = serde_json::from_slice(&config).unwrap();
            assert_eq!(cfg["rootfs"]["diff_ids"][0], format!("sha256:{}", hex(&t)));
            assert_eq!(cfg["rootfs"]["type"], "layers");
            let entries = tar_entries(&t);
            assert_eq!(entries.len(), 1);
            assert!(entries[0].regular);
            // The compat spec's annotation (read by Wasm-aware tools other than Istio).
            assert_eq!(
                manifest["annotations"]["module.wasm.image/variant"],
                "compat"
            );
            assert_eq!(entries[0].name, "plugin.wasm");
            assert_eq!(count, 3, "manifest, config, layer");
            (
                m["digest"].as_str().unwrap().to_owned(),
                Format::Compat,
                entries[0].data.clone(),
            )
        }
        "application/vnd.module.wasm.config.v1+json" => {
            // Istio's "oci" variant: exactly two layers, one of them the raw module.
            assert_eq!(layers.len(), 2);
            assert_eq!(
                layers[0]["mediaType"],
                "application/vnd.module.wasm.content.layer.v1+wasm"
            );
            assert_eq!(
                layers[1]["mediaType"],
                "application/vnd.module.wasm.config.v1+json"
            );
            let _: Value = serde_json::from_slice(&config).unwrap();
            assert!(manifest["annotations"]["module.wasm.image/variant"].is_null());
            assert_eq!(count, 3, "manifest, config, module");
            (
                m["digest"].as_str().unwrap().to_owned(),
                Format::Artifact,
                blob(layout, &layers[0]),
            )
        }
        other => panic!("config mediaType {other}"),
    }
}

#[test]
fn compat_layout_structure_digests_and_module() {
    let d = tmp("compat");
    let (wasm_path, wasm) = fake_module(&d);
    let out = d.join("layout");
    let tarball = d.join("meshguard-0.1.0.oci.tar");
    let w = oci::write_layout(&wasm_path, &out, "0.1.0", Format::Compat, Some(&tarball)).unwrap();
    let (digest, format, module) = walk(&out);
    assert_eq!(format, Format::Compat);
    assert_eq!(module, wasm);
    assert_eq!(digest, w.manifest_digest);
    let v = oci::verify_layout(&out).unwrap();
    assert_eq!(
        (v.manifest_digest, v.wasm, v.tag),
        (digest.clone(), wasm.clone(), "0.1.0".to_owned())
    );

    // Deterministic: same module, same digest.
    let again = oci::write_layout(
        &wasm_path,
        &d.join("layout2"),
        "0.1.0",
        Format::Compat,
        None,
    )
    .unwrap();
    assert_eq!(again.manifest_digest, digest);

    // GNU tar (an independent implementation) reads the layer and the archive too.
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap()[7..].to_owned();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("blobs/sha256").join(m)).unwrap()).unwrap();
    let layer = out
        .join("blobs/sha256")
        .join(&manifest["layers"][0]["digest"].as_str().unwrap()[7..]);
    let gnu = std::process::Command::new("tar")
        .arg("-xzOf")
        .arg(&layer)
        .arg("plugin.wasm")
        .output()
        .unwrap();
    assert!(
        gnu.status.success(),
        "{}",
        String::from_utf8_lossy(&gnu.stderr)
    );
    assert_eq!(
        gnu.stdout, wasm,
        "GNU tar extracts the module from the layer"
    );
    let list = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .unwrap();
    assert!(list.status.success());
    let names = String::from_utf8_lossy(&list.stdout);
    assert!(names.lines().any(|l| l == "index.json") && names.lines().any(|l| l == "oci-layout"));

    // The tarball is the layout, file for file.
    let entries = tar_entries(&std::fs::read(&tarball).unwrap());
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(&names[..2], ["blobs/", "blobs/sha256/"]);
    let files: Vec<&Entry> = entries.iter().filter(|e| e.regular).collect();
    assert_eq!(files.len(), 5, "oci-layout, index.json, 3 blobs");
    for e in files {
        assert_eq!(
            e.data,
            std::fs::read(out.join(&e.name)).unwrap(),
            "{}",
            e.name
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn artifact_layout_structure_digests_and_module() {
    let d = tmp("artifact");
    let (wasm_path, wasm) = fake_module(&d);
    let out = d.join("layout");
    let w = oci::write_layout(&wasm_path, &out, "0.1.0", Format::Artifact, None).unwrap();
    let (digest, format, module) = walk(&out);
    assert_eq!(
        (format, module, digest.clone()),
        (Format::Artifact, wasm.clone(), w.manifest_digest)
    );
    assert_eq!(oci::verify_layout(&out).unwrap().wasm, wasm);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn verifier_rejects_corrupted_layouts() {
    let d = tmp("corrupt");
    let (wasm_path, _) = fake_module(&d);
    let fresh = |name: &str| {
        let out = d.join(name);
        oci::write_layout(&wasm_path, &out, "0.1.0", Format::Compat, None).unwrap();
        out
    };
    let err = |out: &Path| oci::verify_layout(out).unwrap_err().to_string();
    let index = |out: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap()
    };

    // A flipped byte in the layer blob.
    let out = fresh("flip");
    let m = index(&out)["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            out.join("blobs/sha256")
                .join(m.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = out.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap(),
    );
    let mut b = std::fs::read(&layer).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    std::fs::write(&layer, b).unwrap();
    assert!(err(&out).contains("hashes to"), "{}", err(&out));

    // A wrong size in index.json.
    let out = fresh("size");
    let mut i = index(&out);
    i["manifests"][0]["size"] = Value::from(1);
    std::fs::write(out.join("index.json"), serde_json::to_vec(&i).unwrap()).unwrap();
    assert!(err(&out).contains("descriptor says 1"), "{}", err(&out));

    // A stray blob.
    let out = fresh("stray");
    std::fs::write(out.join("blobs/sha256").join(hex(b"x")), b"x").unwrap();
    assert!(err(&out).contains("not referenced"), "{}", err(&out));

    // No tag.
    let out = fresh("notag");
    let mut i = index(&out);
    i["manifests"][0]["annotations"] = serde_json::json!({});
    std::fs::write(out.join("index.json"), serde_json::to_vec(&i).unwrap()).unwrap();
    assert!(err(&out).contains("ref.name"), "{}", err(&out));

    // Not a Wasm module as input.
    let not_wasm = d.join("x.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let e = oci::write_layout(&not_wasm, &d.join("nw"), "0.1.0", Format::Compat, None).unwrap_err();
    assert!(e.to_string().contains("not a Wasm module"));
    let _ = std::fs::remove_dir_all(&d);
}

/// `make istio-check` runs after `make oci`: check the real layout too, and that it holds the
/// module `make wasm` built.
#[test]
fn real_layout_from_make_oci_when_present() {
    let Some(dir) = std::env::var_os("MESHGUARD_OCI_LAYOUT") else {
        eprintln!("MESHGUARD_OCI_LAYOUT unset: the real layout is checked by `make istio-check`");
        return;
    };
    // Relative paths are relative to the repository root (where make runs).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let layout = root.join(dir);
    let (digest, _, module) = walk(&layout);
    assert_eq!(oci::verify_layout(&layout).unwrap().manifest_digest, digest);
    if let Some(wasm) = std::env::var_os("MESHGUARD_WASM") {
        assert_eq!(
            module,
            std::fs::read(root.join(wasm)).unwrap(),
            "layout holds the built module"
        );
    }
}

/// The digests of a fixed module (`fake_module`, tag 0.1.0), pinned: the writer's bytes (tar
/// headers, gzip, JSON) must not drift, since a WasmPlugin's `sha256` carries the manifest digest.
/// Recorded with the project's own tar and JSON writer before the `tar` and `oci-spec` crates
/// replaced it; the artifact form and the compat layer are byte for byte what they were. The
/// compat manifest differs from the old one only by the `module.wasm.image/variant: compat`
/// annotation added since (issue 15): removing it again gives the old manifest digest.
#[test]
fn digests_are_pinned() {
    const COMPAT_MANIFEST: &str =
        "sha256:569eb7aa7728bdadb3dbe73c92741a136e7229c58df3af9be8b7cfb25e132fcf";
    const COMPAT_MANIFEST_BEFORE_VARIANT: &str =
        "sha256:3a262bf36702f28ee7d197469c462220ee13648e715e30874fd4f424c6a2b1cb";
    const COMPAT_LAYER: &str =
        "sha256:4704540357718120e581505b6b8b8ea3fce6eb0e9c1608b8a87d0eb3462de78a";
    const COMPAT_TARBALL: &str = "357f1a82209b61d7f08b89ef8be83384627328a392a7159db4208720c5ef6fa5";
    const ARTIFACT_MANIFEST: &str =
        "sha256:463f6b54eb4dfe44a390d656faa9ff6870f6a06f3830a92c7bec8212dee11c49";
    const ARTIFACT_TARBALL: &str =
        "0aa43b7493043a016ea329a6dfc9797c6ad8439d9261dd336c451229997ab70b";

    let d = tmp("pinned");
    let (wasm_path, _) = fake_module(&d);
    for (format, manifest_digest, tarball_sha256) in [
        (Format::Compat, COMPAT_MANIFEST, COMPAT_TARBALL),
        (Format::Artifact, ARTIFACT_MANIFEST, ARTIFACT_TARBALL),
    ] {
        let out = d.join(format!("{format:?}"));
        let tarball = d.join(format!("{format:?}.oci.tar"));
        let w = oci::write_layout(&wasm_path, &out, "0.1.0", format, Some(&tarball)).unwrap();
        assert_eq!(w.manifest_digest, manifest_digest, "{format:?} manifest");
        assert_eq!(
            hex(&std::fs::read(&tarball).unwrap()),
            tarball_sha256,
            "{format:?} OCI archive"
        );
    }
    let out = d.join("Compat");
    let mbytes = std::fs::read(out.join("blobs/sha256").join(&COMPAT_MANIFEST[7..])).unwrap();
    let mut manifest: Value = serde_json::from_slice(&mbytes).unwrap();
    assert_eq!(manifest["layers"][0]["digest"], COMPAT_LAYER);
    // Compact, keys sorted: serde_json's own output of the parsed document is the same bytes.
    assert_eq!(serde_json::to_vec(&manifest).unwrap(), mbytes);
    let removed = manifest["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("module.wasm.image/variant");
    assert_eq!(removed, Some(Value::from("compat")));
    assert_eq!(
        format!("sha256:{}", hex(&serde_json::to_vec(&manifest).unwrap())),
        COMPAT_MANIFEST_BEFORE_VARIANT
    );
    let _ = std::fs::remove_dir_all(&d);
}
