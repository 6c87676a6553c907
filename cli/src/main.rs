//! `meshguard`: the command line of the meshguard filter (`meshguard --help`,
//! `meshguard <command> --help`).
//!
//!   meshguard istio-convert [--image URL] [--sha256 HEX] [--root-namespace NS]
//!                           [--namespace NS] [--trust-domain TD] [--trust-domain-alias TD]...
//!                           [-o FILE] FILE...      ("-" reads standard input)
//!   meshguard oci --wasm PATH [--out DIR] [--tag TAG] [--format compat|artifact] [--tarball PATH]
//!   meshguard oci-verify DIR
//!
//! Exit codes: 0 success, 1 the command failed (an input it could not read or convert, a layout
//! that does not verify), 2 usage error (clap's: unknown command or option, missing or invalid
//! argument).

use clap::{Args, Parser, Subcommand, ValueEnum};
use meshguard_cli::{convert, oci};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "meshguard",
    version,
    about = "meshguard's command line: Istio RequestAuthentication/AuthorizationPolicy → \
             WasmPlugin converter, OCI packaging of meshguard.wasm",
    arg_required_else_help = true,
    after_help = "Exit status: 0 success, 1 the command failed, 2 usage error.",
    // A repeated single-valued option keeps its last value (as before clap).
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    IstioConvert(IstioConvert),
    Oci(OciArgs),
    OciVerify(OciVerify),
}

/// RequestAuthentication/AuthorizationPolicy YAML → meshguard WasmPlugin YAML.
///
/// Reads multi-document YAML or a `kind: List` (security.istio.io v1/v1beta1) and prints one
/// WasmPlugin per workload selector on standard output (or FILE).
#[derive(Args)]
struct IstioConvert {
    /// Module URL of the WasmPlugins (`oci://…`, `https://…/meshguard.wasm`, `file://…`)
    /// [default: oci://registry.example.com/meshguard/meshguard:0.1.0]
    #[arg(long, value_name = "URL")]
    image: Option<String>,
    /// WasmPlugin `sha256`: the image manifest digest for oci:// URLs, the module's own SHA-256
    /// for https:// URLs (64 lowercase hex digits, `sha256:` prefix allowed)
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    sha256: Option<String>,
    /// Istio's root namespace, meshConfig.rootNamespace (a policy there applies mesh-wide)
    /// [default: istio-system]
    #[arg(long, value_name = "NS")]
    root_namespace: Option<String>,
    /// Namespace of resources whose metadata names none [default: default]
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// The mesh config's trustDomain [default: cluster.local]
    #[arg(long, value_name = "TD")]
    trust_domain: Option<String>,
    /// One of the mesh config's trustDomainAliases (repeatable)
    #[arg(long, value_name = "TD", action = clap::ArgAction::Append)]
    trust_domain_alias: Vec<String>,
    /// Write the YAML to FILE instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Input YAML files; "-" reads standard input
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
}

/// Write an OCI image layout (and optionally an OCI archive tarball) holding the module.
///
/// Prints the manifest digest (a WasmPlugin's `sha256` for an oci:// URL).
#[derive(Args)]
struct OciArgs {
    /// The Wasm module to package
    #[arg(long, value_name = "PATH")]
    wasm: PathBuf,
    /// Layout directory (replaced)
    #[arg(long, value_name = "DIR", default_value = "target/oci/meshguard")]
    out: PathBuf,
    /// Tag (org.opencontainers.image.ref.name; also the image's version annotation)
    #[arg(long, value_name = "TAG", default_value = env!("CARGO_PKG_VERSION"))]
    tag: String,
    /// Image form: compat (tar+gzip layer holding plugin.wasm) or artifact (Wasm media types)
    #[arg(long, value_enum, default_value_t = FormatArg::Compat)]
    format: FormatArg,
    /// Also write the layout as a tar (an "OCI archive") to PATH
    #[arg(long, value_name = "PATH")]
    tarball: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Compat,
    Artifact,
}

/// Check an OCI image layout: digests, sizes, media types, and the module Istio would extract.
#[derive(Args)]
struct OciVerify {
    /// The layout directory
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

fn parse_sha256(v: &str) -> Result<String, String> {
    let v = v.strip_prefix("sha256:").unwrap_or(v);
    if v.len() != 64 || !v.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("must be 64 lowercase hex digits".to_owned());
    }
    Ok(v.to_owned())
}

fn istio_convert(a: IstioConvert) -> Result<(), String> {
    let mut o = convert::Options::default();
    if let Some(v) = a.image {
        o.image = v;
    }
    o.sha256 = a.sha256;
    if let Some(v) = a.root_namespace {
        o.root_namespace = v;
    }
    if let Some(v) = a.namespace {
        o.default_namespace = v;
    }
    if let Some(v) = a.trust_domain {
        o.trust_domain = v;
    }
    o.trust_domain_aliases = a.trust_domain_alias;
    let mut inputs = Vec::new();
    for f in a.files {
        let text = if f == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("standard input: {e}"))?;
            s
        } else {
            std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?
        };
        inputs.push((f, text));
    }
    let out = convert::convert_texts(&inputs, &o).map_err(|e| e.to_string())?;
    for w in &out.warnings {
        eprintln!("meshguard: warning: {w}");
    }
    let yaml = out.to_yaml()?;
    match a.output {
        Some(path) => std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}

fn oci_cmd(a: OciArgs) -> Result<(), String> {
    let format = match a.format {
        FormatArg::Compat => oci::Format::Compat,
        FormatArg::Artifact => oci::Format::Artifact,
    };
    let w = oci::write_layout(&a.wasm, &a.out, &a.tag, format, a.tarball.as_deref())
        .map_err(|e| e.to_string())?;
    // Re-read what was written with the independent checker before claiming success.
    let v = oci::verify_layout(&w.layout).map_err(|e| e.to_string())?;
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

fn oci_verify(a: OciVerify) -> Result<(), String> {
    let v = oci::verify_layout(Path::new(&a.dir)).map_err(|e| e.to_string())?;
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
    // Usage errors (exit 2, standard error), --help and --version (exit 0, standard output).
    let cli = Cli::parse();
    let r = match cli.command {
        Command::IstioConvert(a) => istio_convert(a),
        Command::Oci(a) => oci_cmd(a),
        Command::OciVerify(a) => oci_verify(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(m) => {
            eprintln!("meshguard: error: {m}");
            ExitCode::from(1)
        }
    }
}
