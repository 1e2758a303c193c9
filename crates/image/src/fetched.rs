//! What every source (registry, docker-archive, OCI layout) leaves in the store for
//! one image: its manifest, config and layers as verified blobs.

use crate::digest::Digest;
use crate::manifest::RunConfig;

#[derive(Debug, Clone)]
pub struct LayerRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

#[derive(Debug, Clone)]
pub struct Fetched {
    /// The image manifest's digest: the image's identity.
    pub digest: Digest,
    /// Names the source gives the image (normalised references).
    pub names: Vec<String>,
    pub config_digest: Digest,
    pub config: RunConfig,
    pub layers: Vec<LayerRef>,
    /// Every blob the image holds: index (when there was one), manifest, config, layers.
    pub blobs: Vec<Digest>,
}
