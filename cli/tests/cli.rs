//! The `meshguard` command line as a user meets it: `--help` for the program and each command,
//! `--version`, and the exit codes (0 success, 1 the command failed, 2 usage error on standard
//! error). The commands' own behaviour is in tests/istio.rs (`cli_exit_codes_and_messages`,
//! `trust_domain_flags`, …) and tests/oci.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// (exit code, stdout, stderr)
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

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("meshguard-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_lists_every_command() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let (code, out, err) = meshguard(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        assert!(
            out.contains("Usage: meshguard <COMMAND>"),
            "{args:?}: {out}"
        );
        for cmd in ["istio-convert", "oci", "oci-verify", "help"] {
            assert!(
                out.lines().any(|l| l.trim_start().starts_with(cmd)),
                "{args:?} lists {cmd}: {out}"
            );
        }
        assert!(out.contains("--version"), "{out}");
        assert!(out.contains("Exit status: 0 success, 1 the command failed, 2 usage error."));
    }
}

#[test]
fn each_command_has_its_own_help() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "istio-convert",
            &[
                "--image <URL>",
                "--sha256 <HEX>",
                "--root-namespace <NS>",
                "--namespace <NS>",
                "--trust-domain <TD>",
                "--trust-domain-alias <TD>",
                "-o, --output <FILE>",
                "<FILE>...",
            ],
        ),
        (
            "oci",
            &[
                "--wasm <PATH>",
                "--out <DIR>",
                "--tag <TAG>",
                concat!("[default: ", env!("CARGO_PKG_VERSION"), "]"),
                "--format <FORMAT>",
                "compat",
                "artifact",
                "--tarball <PATH>",
            ],
        ),
        ("oci-verify", &["<DIR>"]),
    ];
    for (cmd, wanted) in cases {
        for args in [vec![cmd, "--help"], vec![cmd, "-h"], vec!["help", cmd]] {
            let (code, out, err) = meshguard(&args);
            assert_eq!(code, 0, "{args:?}: {err}");
            assert!(out.contains(&format!("Usage: meshguard {cmd}")), "{out}");
            for w in wanted {
                assert!(out.contains(w), "{args:?} mentions {w}: {out}");
            }
        }
    }
    // The long help of `oci` says what the command prints.
    let (_, out, _) = meshguard(&["oci", "--help"]);
    assert!(out.contains("manifest digest"), "{out}");
}

#[test]
fn version() {
    let want = format!("meshguard {}\n", env!("CARGO_PKG_VERSION"));
    for args in [&["--version"][..], &["-V"]] {
        let (code, out, err) = meshguard(args);
        assert_eq!((code, out.as_str(), err.as_str()), (0, want.as_str(), ""));
    }
    // --version belongs to the program, not to a command.
    assert_eq!(meshguard(&["oci", "--version"]).0, 2);
}

/// Usage errors: exit 2, nothing on standard output, the reason and where to read more (the
/// usage line, or `--help`) on standard error.
#[test]
fn usage_errors_exit_2_on_stderr() {
    let cases: [(&[&str], &str); 11] = [
        (&[], "Usage: meshguard <COMMAND>"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["istio-convert"], "<FILE>..."),
        (
            &["istio-convert", "--frob", "x.yaml"],
            "unexpected argument '--frob'",
        ),
        (
            &["istio-convert", "--image"],
            "a value is required for '--image <URL>'",
        ),
        (
            &["istio-convert", "--sha256", "xyz", "a.yaml"],
            "64 lowercase hex digits",
        ),
        (
            &["istio-convert", "--sha256", &"AB".repeat(32), "a.yaml"],
            "64 lowercase hex digits",
        ),
        (&["oci"], "--wasm <PATH>"),
        (
            &["oci", "--wasm", "m.wasm", "--format", "docker"],
            "invalid value 'docker' for '--format <FORMAT>'",
        ),
        (
            &["oci", "--wasm", "m.wasm", "extra"],
            "unexpected argument 'extra'",
        ),
        (&["oci-verify", "a", "b"], "unexpected argument 'b'"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = meshguard(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(needle), "{args:?}: wants {needle:?}: {err}");
        assert!(
            err.contains("Usage: meshguard") || err.contains("try '--help'"),
            "{args:?}: {err}"
        );
    }
    // No DIR.
    assert_eq!(meshguard(&["oci-verify"]).0, 2);
}

/// Runtime errors: exit 1, `meshguard: error: …` on standard error.
#[test]
fn runtime_errors_exit_1_on_stderr() {
    let d = tmp("runtime");
    let not_wasm = d.join("x.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let layout = d.join("layout");
    let nothing = d.join("nothing");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["istio-convert", "no/such/file.yaml"],
            "meshguard: error: no/such/file.yaml",
        ),
        (
            vec!["istio-convert", "istio/testdata/invalid/custom-action.yaml"],
            "meshguard: error: ",
        ),
        (
            vec!["oci", "--wasm", not_wasm.to_str().unwrap()],
            "not a Wasm module",
        ),
        (
            vec!["oci-verify", nothing.to_str().unwrap()],
            "meshguard: error: ",
        ),
    ];
    for (args, needle) in cases {
        let (code, out, err) = meshguard(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(needle), "{args:?}: wants {needle:?}: {err}");
    }
    // A layout the verifier refuses: exit 1.
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(&[0; 64]);
    let module = d.join("m.wasm");
    std::fs::write(&module, &wasm).unwrap();
    let (code, out, err) = meshguard(&[
        "oci",
        "--wasm",
        module.to_str().unwrap(),
        "--out",
        layout.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("oci: manifest digest sha256:"), "{out}");
    std::fs::write(layout.join("blobs/sha256").join("0".repeat(64)), b"x").unwrap();
    let (code, _, err) = meshguard(&["oci-verify", layout.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not referenced"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// The command lines the Makefile and the docs use keep working: `--flag=value`, options after
/// the files, a repeated option (the last wins), `-o FILE`, and `oci`'s output lines.
#[test]
fn documented_invocations_and_outputs() {
    let d = tmp("documented");
    let yaml = d.join("out.yaml");
    let (code, out, err) = meshguard(&[
        "istio-convert",
        "istio/testdata/jwt-httpbin.yaml",
        "--image=oci://r.example/mg:1",
        "--image",
        "oci://r.example/mg:2",
        "--sha256",
        &format!("sha256:{}", "ab".repeat(32)),
        "-o",
        yaml.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    let written = std::fs::read_to_string(&yaml).unwrap();
    assert!(written.contains("url: oci://r.example/mg:2"), "{written}");
    assert!(
        written.contains(&format!("sha256: {}", "ab".repeat(32))),
        "{written}"
    );
    let (code, stdout, _) = meshguard(&[
        "istio-convert",
        "--image",
        "oci://r.example/mg:2",
        "--sha256",
        &"ab".repeat(32),
        "istio/testdata/jwt-httpbin.yaml",
    ]);
    assert_eq!(code, 0);
    assert_eq!(stdout, written, "-o FILE writes what standard output shows");

    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    wasm.extend_from_slice(&[7; 100]);
    let module = d.join("m.wasm");
    std::fs::write(&module, &wasm).unwrap();
    let layout = d.join("layout");
    let tarball = d.join("m.oci.tar");
    let (code, out, err) = meshguard(&[
        "oci",
        "--wasm",
        module.to_str().unwrap(),
        "--out",
        layout.to_str().unwrap(),
        "--tag",
        "9.9.9",
        "--format=artifact",
        "--tarball",
        tarball.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0],
        format!(
            "oci: layout {} (tag 9.9.9, Artifact format)",
            layout.display()
        )
    );
    assert_eq!(lines[1], format!("oci: archive {}", tarball.display()));
    let digest = lines[2].strip_prefix("oci: manifest digest ").unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    let (code, out, err) = meshguard(&["oci-verify", layout.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "oci-verify: ok: tag 9.9.9, Artifact format, manifest {digest}, module 108 bytes (sha256:"
        )),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
