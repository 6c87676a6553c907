//! OCI image layout writer (no Docker needed) for meshguard.wasm, in the two forms Istio's
//! WasmPlugin fetcher accepts (see istio/README.md for the formats):
//!
//! * `compat` (default): an ordinary OCI image whose single layer
//!   (`application/vnd.oci.image.layer.v1.tar+gzip`) is a tar.gz holding `plugin.wasm`;
//! * `artifact`: Wasm artifact media types — manifest config
//!   `application/vnd.module.wasm.config.v1+json`, the raw module as a layer of type
//!   `application/vnd.module.wasm.content.layer.v1+wasm`, and (Istio's fetcher insists on exactly
//!   two layers for this form) the config blob repeated as the second layer.
//!
//! Output is deterministic: the same module gives the same manifest digest. The manifest, index,
//! image config and `oci-layout` are `oci-spec`'s typed structs; the tar archives are written by
//! the `tar` crate and gzip by `flate2`. Two small own parts keep the bytes (and so the digests)
//! what they were before those crates were used, measured on the same module:
//!
//! * JSON: `oci-spec` serialises in struct field order and keeps annotations in a `HashMap`
//!   (whose order changes from run to run), so its own `to_string` is neither the old bytes nor
//!   reproducible with two or more annotations. Each document is serialised through
//!   `serde_json::Value` with object keys sorted, compact: the canonical form used before.
//! * tar: `tar::Header::set_cksum` writes the checksum as 7 octal digits and a NUL; the old writer
//!   wrote 6 digits, a NUL and a space (GNU tar's form). Both are valid ustar, but the bytes
//!   differ, so the checksum field is rewritten in the 6-digit form after `set_cksum`.

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, RootFsBuilder, Sha256Digest,
};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MT_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MT_LAYER_TGZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MT_WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const MT_WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The file name Istio looks for inside a compat layer.
pub const COMPAT_FILE: &str = "plugin.wasm";
/// The compat spec's manifest annotation (Istio does not read it; other Wasm-aware tools do).
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Which image form to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Compat,
    Artifact,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "compat" => Some(Self::Compat),
            "artifact" => Some(Self::Artifact),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub enum OciError {
    Io {
        path: PathBuf,
        err: std::io::Error,
    },
    NotWasm(PathBuf),
    /// A tar archive could not be written or read.
    Tar(std::io::Error),
    /// A typed OCI document could not be built or serialised.
    Spec(String),
    /// The layout on disk is not what it should be (verification).
    Invalid(String),
}

impl fmt::Display for OciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, err } => write!(f, "{}: {err}", path.display()),
            Self::NotWasm(p) => write!(f, "{}: not a Wasm module (no \\0asm header)", p.display()),
            Self::Tar(e) => write!(f, "tar: {e}"),
            Self::Spec(m) => write!(f, "OCI document: {m}"),
            Self::Invalid(m) => write!(f, "invalid OCI layout: {m}"),
        }
    }
}

impl std::error::Error for OciError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |err| OciError::Io {
        path: path.to_path_buf(),
        err,
    }
}

fn invalid(m: impl Into<String>) -> OciError {
    OciError::Invalid(m.into())
}

fn spec(e: impl fmt::Display) -> OciError {
    OciError::Spec(e.to_string())
}

pub fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A blob to be stored under `blobs/sha256/`.
struct Blob {
    media_type: MediaType,
    bytes: Vec<u8>,
}

impl Blob {
    fn digest(&self) -> String {
        format!("sha256:{}", sha256_hex(&self.bytes))
    }
    fn descriptor(&self) -> Result<Descriptor, OciError> {
        let d = Sha256Digest::from_str(&sha256_hex(&self.bytes)).map_err(spec)?;
        Ok(Descriptor::new(
            self.media_type.clone(),
            self.bytes.len() as u64,
            d,
        ))
    }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub layout: PathBuf,
    pub tarball: Option<PathBuf>,
    pub manifest_digest: String,
    pub manifest_size: usize,
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, OciError> {
    // mtime 0 and no file name in the gzip header: reproducible bytes.
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)
        .and_then(|()| enc.finish())
        .map_err(io(Path::new("<gzip>")))
}

/// Canonical JSON bytes of a typed document: compact, object keys sorted at every level.
fn to_json_bytes(doc: &impl Serialize) -> Result<Vec<u8>, OciError> {
    fn sorted(v: Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut kv: Vec<(String, Value)> =
                    m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                kv.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Object(kv.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    let v = serde_json::to_value(doc).map_err(spec)?;
    serde_json::to_vec(&sorted(v)).map_err(spec)
}

/// A deterministic in-memory ustar archive: mtime 0, uid/gid 0, no user/group names, files 0644,
/// directories 0755.
struct TarWriter(tar::Builder<Vec<u8>>);

impl TarWriter {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn entry(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
    ) -> Result<(), OciError> {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).map_err(OciError::Tar)?;
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        // The checksum in GNU tar's form (6 octal digits, NUL, space), as the module's previous
        // own writer wrote it: the same bytes, so the same digests (module docs above).
        let sum = h.cksum().map_err(OciError::Tar)?;
        let mut field = [0u8; 8];
        let digits = format!("{sum:06o}");
        for (slot, b) in field.iter_mut().zip(digits.bytes().chain([0, b' '])) {
            *slot = b;
        }
        h.as_old_mut().cksum = field;
        self.0.append(&h, data).map_err(OciError::Tar)
    }

    fn file(&mut self, name: &str, data: &[u8]) -> Result<(), OciError> {
        self.entry(name, tar::EntryType::Regular, 0o644, data)
    }

    /// `name` ends with `/`.
    fn dir(&mut self, name: &str) -> Result<(), OciError> {
        self.entry(name, tar::EntryType::Directory, 0o755, &[])
    }

    fn finish(self) -> Result<Vec<u8>, OciError> {
        self.0.into_inner().map_err(OciError::Tar)
    }
}

/// The Wasm artifact config (`application/vnd.module.wasm.config.v1+json`), which `oci-spec`
/// does not model.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig {
    r#type: &'static str,
    root_ids: Vec<String>,
}

/// Builds the blobs and the manifest for `wasm`.
fn build(wasm: &[u8], format: Format, version: &str) -> Result<(Vec<Blob>, Blob), OciError> {
    let mut annotations: HashMap<String, String> = [
        ("org.opencontainers.image.title", "meshguard"),
        (
            "org.opencontainers.image.description",
            "meshguard proxy-wasm JWT + SPIFFE filter",
        ),
        ("org.opencontainers.image.version", version),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (config, layer_blob, layer_descriptors) = match format {
        Format::Compat => {
            annotations.insert(VARIANT_ANNOTATION.to_owned(), "compat".to_owned());
            let mut t = TarWriter::new();
            t.file(COMPAT_FILE, wasm)?;
            let layer_tar = t.finish()?;
            let diff_id = format!("sha256:{}", sha256_hex(&layer_tar));
            let layer = Blob {
                media_type: MediaType::ImageLayerGzip,
                bytes: gzip(&layer_tar)?,
            };
            // Istio never reads the image config; registry clients want a well-formed one.
            let image_config = ImageConfigurationBuilder::default()
                .architecture(Arch::Amd64)
                .os(Os::Linux)
                .config(ConfigBuilder::default().build().map_err(spec)?)
                .rootfs(
                    RootFsBuilder::default()
                        .typ("layers")
                        .diff_ids(vec![diff_id])
                        .build()
                        .map_err(spec)?,
                )
                .build()
                .map_err(spec)?;
            let config = Blob {
                media_type: MediaType::ImageConfig,
                bytes: to_json_bytes(&image_config)?,
            };
            let layers = vec![layer.descriptor()?];
            (config, layer, layers)
        }
        Format::Artifact => {
            let config = Blob {
                media_type: MediaType::Other(MT_WASM_CONFIG.to_owned()),
                bytes: to_json_bytes(&WasmConfig {
                    r#type: "envoy_proxy",
                    root_ids: Vec::new(),
                })?,
            };
            let layer = Blob {
                media_type: MediaType::Other(MT_WASM_LAYER.to_owned()),
                bytes: wasm.to_vec(),
            };
            // Istio's fetcher insists on exactly two layers: the config blob is repeated.
            let layers = vec![layer.descriptor()?, config.descriptor()?];
            (config, layer, layers)
        }
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor()?)
        .layers(layer_descriptors)
        .annotations(annotations)
        .build()
        .map_err(spec)?;
    let manifest = Blob {
        media_type: MediaType::ImageManifest,
        bytes: to_json_bytes(&manifest)?,
    };
    Ok((vec![config, layer_blob], manifest))
}
/// Writes an OCI image layout at `out` (replacing its previous content) holding `wasm_path`,
/// tagged `tag`, and, when `tarball` is given, a tar of that layout (an "OCI archive").
pub fn write_layout(
    wasm_path: &Path,
    out: &Path,
    tag: &str,
    format: Format,
    tarball: Option<&Path>,
) -> Result<Written, OciError> {
    let wasm = fs::read(wasm_path).map_err(io(wasm_path))?;
    if !wasm.starts_with(b"\0asm") {
        return Err(OciError::NotWasm(wasm_path.to_path_buf()));
    }
    let (blobs, manifest) = build(&wasm, format, tag)?;
    let mut mdesc = manifest.descriptor()?;
    mdesc.set_annotations(Some(HashMap::from([(REF_NAME.to_owned(), tag.to_owned())])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![mdesc])
        .build()
        .map_err(spec)?;
    let index_bytes = to_json_bytes(&index)?;
    let layout_bytes = to_json_bytes(
        &OciLayoutBuilder::default()
            .image_layout_version("1.0.0")
            .build()
            .map_err(spec)?,
    )?;

    if out.exists() {
        fs::remove_dir_all(out).map_err(io(out))?;
    }
    let blob_dir = out.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(io(&blob_dir))?;
    let mut files: Vec<(String, &[u8])> = vec![
        ("oci-layout".to_owned(), &layout_bytes),
        ("index.json".to_owned(), &index_bytes),
    ];
    let mut all: Vec<&Blob> = blobs.iter().collect();
    all.push(&manifest);
    let hexes: Vec<String> = all.iter().map(|b| sha256_hex(&b.bytes)).collect();
    for (b, hex) in all.iter().zip(&hexes) {
        files.push((format!("blobs/sha256/{hex}"), &b.bytes));
    }
    for (name, data) in &files {
        let p = out.join(name);
        fs::write(&p, data).map_err(io(&p))?;
    }
    if let Some(tb) = tarball {
        let mut t = TarWriter::new();
        t.dir("blobs/")?;
        t.dir("blobs/sha256/")?;
        for (name, data) in &files {
            t.file(name, data)?;
        }
        if let Some(parent) = tb.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(tb, t.finish()?).map_err(io(tb))?;
    }
    Ok(Written {
        layout: out.to_path_buf(),
        tarball: tarball.map(Path::to_path_buf),
        manifest_digest: manifest.digest(),
        manifest_size: manifest.bytes.len(),
    })
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub tag: String,
    pub manifest_digest: String,
    pub format: Format,
    /// The Wasm module as Istio would extract it.
    pub wasm: Vec<u8>,
}

fn read_blob(layout: &Path, desc: &Value, what: &str) -> Result<Vec<u8>, OciError> {
    let digest = desc
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what}: descriptor has no digest")))?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
        .ok_or_else(|| {
            invalid(format!(
                "{what}: digest {digest} is not sha256:<64 lowercase hex>"
            ))
        })?;
    let size = desc
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid(format!("{what}: descriptor has no size")))?;
    let p = layout.join("blobs").join("sha256").join(hex);
    let bytes = fs::read(&p).map_err(io(&p))?;
    if bytes.len() as u64 != size {
        return Err(invalid(format!(
            "{what}: blob {digest} is {} bytes, descriptor says {size}",
            bytes.len()
        )));
    }
    let actual = sha256_hex(&bytes);
    if actual != hex {
        return Err(invalid(format!(
            "{what}: blob {digest} hashes to sha256:{actual}"
        )));
    }
    Ok(bytes)
}

fn media_type<'a>(v: &'a Value, what: &str) -> Result<&'a str, OciError> {
    v.get("mediaType")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what}: no mediaType")))
}

fn parse_json(bytes: &[u8], what: &str) -> Result<Value, OciError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{what}: not JSON: {e}")))
}

/// The first regular file named `plugin.wasm` (in any directory) of a layer tar, as Istio takes it.
fn compat_module(tar_bytes: &[u8]) -> Result<Option<Vec<u8>>, OciError> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().map_err(OciError::Tar)? {
        let mut entry = entry.map_err(OciError::Tar)?;
        let named = entry
            .path()
            .map_err(OciError::Tar)?
            .file_name()
            .is_some_and(|n| n == COMPAT_FILE);
        if named && entry.header().entry_type() == tar::EntryType::Regular {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(OciError::Tar)?;
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// Checks a layout independently of the writer (plain JSON, not the typed structs it writes): `oci-layout`, `index.json` → one manifest →
/// config and layers; every blob's sha256 equals its name and its size matches its descriptor;
/// media types are one of the two forms Istio accepts; and extracts the module as Istio would.
/// Every file under `blobs/sha256/` must be referenced.
pub fn verify_layout(layout: &Path) -> Result<Verified, OciError> {
    let lp = layout.join("oci-layout");
    let l = parse_json(&fs::read(&lp).map_err(io(&lp))?, "oci-layout")?;
    if l.get("imageLayoutVersion").and_then(Value::as_str) != Some("1.0.0") {
        return Err(invalid("oci-layout: imageLayoutVersion is not 1.0.0"));
    }
    let ip = layout.join("index.json");
    let index = parse_json(&fs::read(&ip).map_err(io(&ip))?, "index.json")?;
    if index.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid("index.json: schemaVersion is not 2"));
    }
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("index.json: no manifests"))?;
    let [mdesc] = manifests.as_slice() else {
        return Err(invalid(format!(
            "index.json: expected exactly one manifest, found {}",
            manifests.len()
        )));
    };
    if media_type(mdesc, "index.json manifests[0]")? != MT_MANIFEST {
        return Err(invalid(
            "index.json manifests[0]: mediaType is not an OCI image manifest",
        ));
    }
    let tag = mdesc
        .get("annotations")
        .and_then(|a| a.get(REF_NAME))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("index.json manifests[0]: no {REF_NAME} annotation")))?
        .to_owned();
    let mbytes = read_blob(layout, mdesc, "manifest")?;
    let manifest = parse_json(&mbytes, "manifest")?;
    if manifest.get("schemaVersion").and_then(Value::as_u64) != Some(2)
        || media_type(&manifest, "manifest")? != MT_MANIFEST
    {
        return Err(invalid("manifest: schemaVersion/mediaType wrong"));
    }
    let cdesc = manifest
        .get("config")
        .ok_or_else(|| invalid("manifest: no config"))?;
    let config = read_blob(layout, cdesc, "config")?;
    let layers = manifest
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("manifest: no layers"))?;
    let mut referenced = vec![mdesc, cdesc];
    referenced.extend(layers.iter());

    let (format, wasm) = match media_type(cdesc, "config")? {
        MT_IMAGE_CONFIG => {
            let [ldesc] = layers.as_slice() else {
                return Err(invalid("compat image: expected exactly one layer"));
            };
            if media_type(ldesc, "layer")? != MT_LAYER_TGZ {
                return Err(invalid(format!(
                    "compat image: layer mediaType is not {MT_LAYER_TGZ}"
                )));
            }
            let gz = read_blob(layout, ldesc, "layer")?;
            let mut tar_bytes = Vec::new();
            flate2::read::GzDecoder::new(gz.as_slice())
                .read_to_end(&mut tar_bytes)
                .map_err(|e| invalid(format!("layer: not gzip: {e}")))?;
            let cfg = parse_json(&config, "config")?;
            let diff = cfg
                .pointer("/rootfs/diff_ids/0")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if diff != format!("sha256:{}", sha256_hex(&tar_bytes)) {
                return Err(invalid(
                    "config: rootfs.diff_ids[0] is not the sha256 of the uncompressed layer",
                ));
            }
            let wasm = compat_module(&tar_bytes)?
                .ok_or_else(|| invalid(format!("layer: no {COMPAT_FILE}")))?;
            (Format::Compat, wasm)
        }
        MT_WASM_CONFIG => {
            if layers.len() != 2 {
                return Err(invalid("artifact image: Istio requires exactly two layers"));
            }
            let mut wasm = None;
            for (i, ldesc) in layers.iter().enumerate() {
                let bytes = read_blob(layout, ldesc, &format!("layers[{i}]"))?;
                if media_type(ldesc, "layer")? == MT_WASM_LAYER && wasm.is_none() {
                    wasm = Some(bytes);
                }
            }
            let wasm =
                wasm.ok_or_else(|| invalid(format!("artifact image: no {MT_WASM_LAYER} layer")))?;
            (Format::Artifact, wasm)
        }
        other => return Err(invalid(format!("config: unexpected mediaType {other}"))),
    };
    if !wasm.starts_with(b"\0asm") {
        return Err(invalid("the extracted module has no Wasm header"));
    }
    // No stray blobs.
    let blob_dir = layout.join("blobs").join("sha256");
    for entry in fs::read_dir(&blob_dir).map_err(io(&blob_dir))? {
        let entry = entry.map_err(io(&blob_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let want = format!("sha256:{name}");
        if !referenced
            .iter()
            .any(|d| d.get("digest").and_then(Value::as_str) == Some(want.as_str()))
        {
            return Err(invalid(format!("blobs/sha256/{name} is not referenced")));
        }
    }
    Ok(Verified {
        tag,
        manifest_digest: format!("sha256:{}", sha256_hex(&mbytes)),
        format,
        wasm,
    })
}
