//! `meshguard`: the command line of the meshguard filter.
//!
//!   meshguard istio-convert [--image URL] [--sha256 HEX] [--root-namespace NS]
//!                           [--namespace NS] [--trust-domain TD] [--trust-domain-alias TD]...
//!                           [-o FILE] FILE...      ("-" reads standard input)
//!   meshguard oci --wasm PATH [--out DIR] [--tag TAG] [--format compat|artifact] [--tarball PATH]
//!   meshguard oci-verify DIR

use meshguard_cli::{convert, oci};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  meshguard istio-convert [--image URL] [--sha256 HEX] [--root-namespace NS] [--namespace NS]
                          [--trust-domain TD] [--trust-domain-alias TD]... [-o FILE] FILE...
      RequestAuthentication/AuthorizationPolicy YAML (multi-document, security.istio.io v1/v1beta1)
      -> meshguard WasmPlugin YAML on standard output (or FILE). \"-\" reads standard input.
      --trust-domain / --trust-domain-alias: the mesh config's trustDomain / trustDomainAliases.
  meshguard oci --wasm PATH [--out DIR] [--tag TAG] [--format compat|artifact] [--tarball PATH]
      write an OCI image layout (and optionally an OCI archive tarball) holding the module;
      prints the manifest digest.
  meshguard oci-verify DIR
      check an OCI image layout: digests, sizes, media types, and the module Istio would extract.";

enum Failure {
    Usage(String),
    Run(String),
}

fn usage(m: impl Into<String>) -> Failure {
    Failure::Usage(m.into())
}

/// Splits `args` into `--flag value` options (from `known`) and positional arguments.
/// `--flag value` pairs, in order.
type Flags = Vec<(String, String)>;

fn parse(args: &[String], known: &[&str]) -> Result<(Flags, Vec<String>), Failure> {
    let mut opts = Vec::new();
    let mut pos = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-" || !a.starts_with('-') {
            pos.push(a.clone());
            continue;
        }
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        if !known.contains(&flag.as_str()) {
            return Err(usage(format!("unknown option {flag}")));
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| usage(format!("{flag} needs a value")))?,
        };
        opts.push((flag, value));
    }
    Ok((opts, pos))
}

fn get<'a>(opts: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find(|(k, _)| names.contains(&k.as_str()))
        .map(|(_, v)| v.as_str())
}

fn istio_convert(args: &[String]) -> Result<(), Failure> {
    let (opts, files) = parse(
        args,
        &[
            "--image",
            "--sha256",
            "--root-namespace",
            "--namespace",
            "--trust-domain",
            "--trust-domain-alias",
            "-o",
            "--output",
        ],
    )?;
    if files.is_empty() {
        return Err(usage("istio-convert needs at least one FILE"));
    }
    let mut o = convert::Options::default();
    if let Some(v) = get(&opts, &["--image"]) {
        o.image = v.to_owned();
    }
    if let Some(v) = get(&opts, &["--sha256"]) {
        let v = v.strip_prefix("sha256:").unwrap_or(v);
        if v.len() != 64 || !v.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(usage("--sha256 must be 64 lowercase hex digits"));
        }
        o.sha256 = Some(v.to_owned());
    }
    if let Some(v) = get(&opts, &["--root-namespace"]) {
        o.root_namespace = v.to_owned();
    }
    if let Some(v) = get(&opts, &["--namespace"]) {
        o.default_namespace = v.to_owned();
    }
    if let Some(v) = get(&opts, &["--trust-domain"]) {
        o.trust_domain = v.to_owned();
    }
    o.trust_domain_aliases = opts
        .iter()
        .filter(|(k, _)| k == "--trust-domain-alias")
        .map(|(_, v)| v.clone())
        .collect();
    let mut inputs = Vec::new();
    for f in &files {
        let text = if f == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure::Run(format!("standard input: {e}")))?;
            s
        } else {
            std::fs::read_to_string(f).map_err(|e| Failure::Run(format!("{f}: {e}")))?
        };
        inputs.push((f.clone(), text));
    }
    let out = convert::convert_texts(&inputs, &o).map_err(|e| Failure::Run(e.to_string()))?;
    for w in &out.warnings {
        eprintln!("meshguard: warning: {w}");
    }
    let yaml = out.to_yaml().map_err(Failure::Run)?;
    match get(&opts, &["-o", "--output"]) {
        Some(path) => std::fs::write(path, yaml).map_err(|e| Failure::Run(format!("{path}: {e}"))),
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}

fn oci_cmd(args: &[String]) -> Result<(), Failure> {
    let (opts, pos) = parse(args, &["--wasm", "--out", "--tag", "--format", "--tarball"])?;
    if !pos.is_empty() {
        return Err(usage("oci takes no positional arguments"));
    }
    let wasm = get(&opts, &["--wasm"]).ok_or_else(|| usage("oci needs --wasm PATH"))?;
    let out = PathBuf::from(get(&opts, &["--out"]).unwrap_or("target/oci/meshguard"));
    let tag = get(&opts, &["--tag"]).unwrap_or(env!("CARGO_PKG_VERSION"));
    let format = match get(&opts, &["--format"]) {
        None => oci::Format::Compat,
        Some(f) => oci::Format::parse(f).ok_or_else(|| usage("--format is compat or artifact"))?,
    };
    let tarball = get(&opts, &["--tarball"]).map(PathBuf::from);
    let w = oci::write_layout(
        std::path::Path::new(wasm),
        &out,
        tag,
        format,
        tarball.as_deref(),
    )
    .map_err(|e| Failure::Run(e.to_string()))?;
    // Re-read what was written with the independent checker before claiming success.
    let v = oci::verify_layout(&w.layout).map_err(|e| Failure::Run(e.to_string()))?;
    println!(
        "oci: layout {} (tag {}, {:?} format)",
        w.layout.display(),
        v.tag,
        v.format
    );
    if let Some(t) = &w.tarball {
        println!("oci: archive {}", t.display());
    }
    println!("oci: manifest digest {}", w.manifest_digest);
    Ok(())
}

fn oci_verify(args: &[String]) -> Result<(), Failure> {
    let [dir] = args else {
        return Err(usage("oci-verify takes one DIR"));
    };
    let v =
        oci::verify_layout(std::path::Path::new(dir)).map_err(|e| Failure::Run(e.to_string()))?;
    println!(
        "oci-verify: ok: tag {}, {:?} format, manifest {}, module {} bytes (sha256:{})",
        v.tag,
        v.format,
        v.manifest_digest,
        v.wasm.len(),
        oci::sha256_hex(&v.wasm)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let r = match cmd.as_str() {
        "istio-convert" => istio_convert(rest),
        "oci" => oci_cmd(rest),
        "oci-verify" => oci_verify(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        "-V" | "--version" => {
            println!("meshguard {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        other => Err(usage(format!("unknown command {other}"))),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("meshguard: {m}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(m)) => {
            eprintln!("meshguard: error: {m}");
            ExitCode::from(1)
        }
    }
}
