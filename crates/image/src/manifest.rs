//! Manifests, indexes and image configs: parsing what a source hands over, choosing
//! the linux/amd64 image of an index, and reading the fields a workload runs with.

use std::collections::BTreeMap;

use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, ImageIndexEntry, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageIndex,
    OciImageManifest, OciManifest,
};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::fetched::LayerRef;

/// Layer media types the unpacker reads (compression is sniffed from the bytes anyway).
const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Parses a manifest or index document.
pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<OciManifest> {
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::invalid(format!("{what} is not an image manifest or index: {e}")))
}

/// The linux/amd64 entry of an index, or an error listing what the index offers.
pub fn choose_platform(index: &OciImageIndex, what: &str) -> Result<Digest> {
    let is_amd64 = |entry: &&ImageIndexEntry| {
        entry
            .platform
            .as_ref()
            .is_some_and(|p| p.os.to_string() == "linux" && p.architecture.to_string() == "amd64")
    };
    match index.manifests.iter().find(is_amd64) {
        Some(entry) => Digest::parse(&entry.digest),
        None => {
            let offered: Vec<String> = index
                .manifests
                .iter()
                .map(|e| {
                    e.platform.as_ref().map_or_else(
                        || "unknown".to_owned(),
                        |p| format!("{}/{}", p.os, p.architecture),
                    )
                })
                .collect();
            Err(ImageError::invalid(format!(
                "{what} has no linux/amd64 image (it has: {})",
                if offered.is_empty() {
                    "nothing".to_owned()
                } else {
                    offered.join(", ")
                }
            )))
        }
    }
}

/// Checks an image manifest's layers before anything is fetched.
pub fn check_layers(manifest: &OciImageManifest, what: &str) -> Result<Vec<LayerRef>> {
    manifest
        .layers
        .iter()
        .map(|layer| {
            if !LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
                return Err(ImageError::invalid(format!(
                    "{what}: layer {} has media type {:?}, which is not an image layer",
                    layer.digest, layer.media_type
                )));
            }
            let size = u64::try_from(layer.size).map_err(|_| {
                ImageError::invalid(format!("{what}: layer {} has a negative size", layer.digest))
            })?;
            Ok(LayerRef {
                digest: Digest::parse(&layer.digest)?,
                size,
                media_type: layer.media_type.clone(),
            })
        })
        .collect()
}

/// An OCI image manifest for an image assembled locally (docker-archive import).
pub fn synthesize_manifest(config: &Digest, config_size: u64, layers: &[LayerRef]) -> Vec<u8> {
    let descriptor = |media_type: &str, digest: &Digest, size: u64| OciDescriptor {
        media_type: media_type.to_owned(),
        digest: digest.to_string(),
        size: size as i64,
        ..OciDescriptor::default()
    };
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
        config: descriptor(IMAGE_CONFIG_MEDIA_TYPE, config, config_size),
        layers: layers
            .iter()
            .map(|l| descriptor(&l.media_type, &l.digest, l.size))
            .collect(),
        ..OciImageManifest::default()
    };
    serde_json::to_vec(&manifest).expect("a manifest serialises")
}

/// The config fields a workload runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub created: Option<String>,
    pub os: String,
    pub architecture: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigDocument {
    created: Option<String>,
    os: String,
    architecture: String,
    config: Option<ConfigSection>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ConfigSection {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

/// Reads an image config; refuses one for another platform.
pub fn parse_config(bytes: &[u8], what: &str) -> Result<RunConfig> {
    let doc: ConfigDocument = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::invalid(format!("{what}: the image config is not valid: {e}")))?;
    if (!doc.os.is_empty() && doc.os != "linux")
        || (!doc.architecture.is_empty() && doc.architecture != "amd64")
    {
        return Err(ImageError::invalid(format!(
            "{what} is a {}/{} image; microVMs here run linux/amd64",
            doc.os, doc.architecture
        )));
    }
    let section = doc.config.unwrap_or_default();
    Ok(RunConfig {
        entrypoint: section.entrypoint.unwrap_or_default(),
        cmd: section.cmd.unwrap_or_default(),
        env: section.env.unwrap_or_default(),
        working_dir: section.working_dir.unwrap_or_default(),
        user: section.user.unwrap_or_default(),
        labels: section.labels.unwrap_or_default(),
        created: doc.created,
        os: doc.os,
        architecture: doc.architecture,
    })
}
