//! vmctl's image engine: from an image reference to the disks a microVM boots from.
//!
//! `prepare` fetches an image (registry, `docker save` archive or OCI layout) into a
//! content-addressed store, unpacks its layers in order and builds one read-only ext4
//! base disk per image digest; `create_writable_layer` gives each VM an empty ext4 disk
//! for its writes in a few milliseconds. Every file becomes visible by a rename, so an
//! interrupted prepare leaves only `tmp/` scratch behind, which the caller clears at start.

mod builtin;
mod digest;
mod error;
mod ext4;
mod fetched;
mod layer_reader;
mod local_import;
mod manifest;
mod progress;
mod registry;
mod scratch_tree;
mod source;
mod store;
pub mod unpack;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

pub use builtin::DEFAULT_IMAGE_NAME;
pub use digest::Digest;
pub use error::{ErrorCode, ImageError, Result};
pub use ext4::{build_base_disk, measure_tree};
pub use fetched::{Fetched, LayerRef};
pub use manifest::RunConfig;
pub use progress::{Progress, ProgressFn};
pub use scratch_tree::default_memory_dir;
pub use source::Source;
pub use store::Store;

/// What to prepare and how to reach it.
#[derive(Debug, Clone)]
pub struct PrepareRequest {
    pub store_dir: PathBuf,
    pub source: String,
    /// Registries (`host:port`) spoken to over plain HTTP; loopback ones always are.
    pub insecure_registries: Vec<String>,
    /// Docker client config with credentials; `None` reads `~/.docker/config.json`.
    pub docker_config: Option<PathBuf>,
    pub timeout: Duration,
    /// The static busybox the built-in default image is made of (default `/bin/busybox`).
    pub busybox: Option<PathBuf>,
    /// A tmpfs to unpack layers in when the tree fits (see `scratch_tree`); `None`: on disk.
    pub memory_scratch: Option<PathBuf>,
}

/// An image whose base disk exists.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub fetched: Fetched,
    pub disk: PathBuf,
    pub disk_bytes: u64,
}

/// Fetches the image, then builds its base disk unless the store has it already.
pub async fn prepare(request: PrepareRequest, progress: ProgressFn) -> Result<Prepared> {
    install_crypto_provider();
    let source = Source::parse(&request.source)?;
    let store = Store::open(&request.store_dir)?;
    let fetched = match source {
        Source::Registry(reference) => {
            let options = registry::RegistryOptions {
                insecure: &request.insecure_registries,
                docker_config: request.docker_config.as_deref(),
                timeout: request.timeout,
            };
            registry::fetch(&store, &reference, &options, &progress).await?
        }
        Source::DockerArchive { path, name } => {
            let (store, progress) = (store.clone(), progress.clone());
            blocking(move || local_import::import_docker_archive(&store, &path, name.as_deref(), &progress))
                .await?
        }
        Source::OciLayout { path, tag } => {
            let (store, progress) = (store.clone(), progress.clone());
            blocking(move || local_import::import_layout(&store, &path, tag.as_deref(), &progress)).await?
        }
        Source::BuiltinDefault => {
            let (store, progress) = (store.clone(), progress.clone());
            let busybox = request
                .busybox
                .clone()
                .unwrap_or_else(|| PathBuf::from(builtin::DEFAULT_BUSYBOX));
            blocking(move || {
                let scratch = store.scratch("default-image")?;
                builtin::write_default_layout(scratch.path(), &busybox)?;
                let mut fetched =
                    local_import::import_layout(&store, scratch.path(), Some("latest"), &progress)?;
                fetched.names = vec![builtin::DEFAULT_IMAGE_NAME.to_owned()];
                Ok(fetched)
            })
            .await?
        }
    };
    let disk = store.disk_path(&fetched.digest);
    let disk_bytes = match std::fs::metadata(&disk) {
        Ok(meta) => {
            for layer in &fetched.layers {
                progress::report(
                    &progress,
                    "done",
                    &layer.digest.to_string(),
                    layer.size,
                    layer.size,
                );
            }
            meta.len()
        }
        Err(_) => {
            let (store, fetched, progress) = (store.clone(), fetched.clone(), progress.clone());
            let memory_dir = request.memory_scratch.clone();
            blocking(move || build_disk(&store, &fetched, memory_dir.as_deref(), &progress)).await?
        }
    };
    progress::report(&progress, "ready", "", disk_bytes, disk_bytes);
    Ok(Prepared {
        fetched,
        disk,
        disk_bytes,
    })
}

/// Unpacks every layer into a scratch tree and makes the base disk from it.
fn build_disk(
    store: &Store,
    image: &Fetched,
    memory_dir: Option<&Path>,
    progress: &ProgressFn,
) -> Result<u64> {
    let layers: Vec<(Digest, u64)> = image.layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
    let compressed: u64 = layers.iter().map(|(_, size)| size).sum();
    let mut tree_dir = scratch_tree::tree_scratch(store, compressed, memory_dir)?;
    let tree = loop {
        let tree = tree_dir.path().join("rootfs");
        std::fs::create_dir(&tree).map_err(|e| ImageError::io("creating the unpack directory", e))?;
        match apply_layers(store, &layers, &tree, Some(progress)) {
            Ok(()) => break tree,
            // The tmpfs filled up after all (the tree grew more than expected): again on disk.
            // (Or it cannot hold the layers' extended attributes: tmpfs before Linux 6.6.)
            Err(err)
                if matches!(err.code, ErrorCode::ResourceExhausted | ErrorCode::Unsupported)
                    && tree_dir.in_memory() =>
            {
                log::info!("unpacking in memory ran out of room ({err}); unpacking on disk");
                tree_dir = store.scratch("unpack")?;
            }
            Err(err) => return Err(err),
        }
    };
    progress::report(progress, "mkfs", "", 0, 0);
    let disk_dir = store.scratch("disk")?;
    let disk = disk_dir.path().join("base.ext4");
    let size = build_base_disk(&tree, &disk)?;
    std::fs::set_permissions(&disk, std::os::unix::fs::PermissionsExt::from_mode(0o444))
        .map_err(|e| ImageError::io("making the base disk read-only", e))?;
    store.publish(&disk, &store.disk_path(&image.digest))?;
    Ok(size)
}

/// Applies stored layers, in order, to `tree` (an empty directory).
fn apply_layers(
    store: &Store,
    layers: &[(Digest, u64)],
    tree: &Path,
    progress: Option<&ProgressFn>,
) -> Result<()> {
    // A root the layers do not describe is what runtimes make: 0755, owned by root.
    rustix::fs::chown(tree, Some(rustix::fs::Uid::ROOT), Some(rustix::fs::Gid::ROOT))?;
    rustix::fs::chmod(tree, rustix::fs::Mode::from_raw_mode(0o755))?;
    let mut unpacker = unpack::Unpacker::new(tree);
    for (digest, size) in layers {
        let label = digest.to_string();
        let mut throttle =
            progress.map(|p| progress::Throttled::new(p.clone(), "unpack", label.clone(), *size));
        let reader = layer_reader::open_layer(&store.blob_path(digest), |n| {
            if let Some(t) = throttle.as_mut() {
                t.update(n);
            }
        })?;
        unpacker.apply(&label, reader)?;
        if let Some(progress) = progress {
            progress::report(progress, "done", &label, *size, *size);
        }
    }
    Ok(())
}

/// Unpacks stored layers, in order, into `dest`, which must be an empty directory.
pub fn unpack_layers(store: &Store, layers: &[Digest], dest: &Path) -> Result<()> {
    let mut entries = std::fs::read_dir(dest)
        .map_err(|e| ImageError::invalid(format!("unpack destination {}: {e}", dest.display())))?;
    if entries.next().is_some() {
        return Err(ImageError::invalid(format!(
            "unpack destination {} is not empty",
            dest.display()
        )));
    }
    for layer in layers {
        if !store.has_blob(layer) {
            return Err(ImageError::not_found(format!(
                "layer {layer} is not in the store"
            )));
        }
    }
    let layers: Vec<(Digest, u64)> = layers.iter().map(|d| (d.clone(), 0)).collect();
    apply_layers(store, &layers, dest, None)
}

/// An empty ext4 disk of `size_bytes` for one VM's writes (see `ext4`).
pub fn create_writable_layer(store_dir: &Path, path: &Path, size_bytes: u64) -> Result<()> {
    let store = Store::open(store_dir)?;
    ext4::create_writable_layer(&store, path, size_bytes)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ImageError::new(ErrorCode::Internal, format!("image worker failed: {e}")))?
}

/// rustls needs one process-wide crypto provider; ring, installed once.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // ring keeps the build free of cmake (aws-lc); rustls marks it deprecated only
        // for lacking post-quantum key exchange, which registries do not require.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
