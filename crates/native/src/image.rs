//! The image engine (`vmctl-image`) for the orchestrator: prepare an image's base disk
//! with progress, unpack layers into a directory, make a VM's writable layer.
//! Errors reach JavaScript as "CODE: message" ("NOT_FOUND: …"), CODE being the engine's status.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use napi::Status;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use vmctl_image::{ImageError, PrepareRequest, Progress, ProgressFn};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[napi(object)]
pub struct PrepareImageRequest {
    /// The image store's root directory.
    pub store_dir: String,
    /// A registry reference, `docker-archive:PATH[:NAME]`, `oci:PATH[:TAG]` or `builtin:default`.
    pub source: String,
    /// Registries (`host:port`) spoken to over plain HTTP; loopback ones always are.
    pub insecure_registries: Option<Vec<String>>,
    /// Docker client config with credentials; default `~/.docker/config.json`.
    pub docker_config: Option<String>,
    /// Network timeout per request, in milliseconds (default 30 s).
    pub timeout_ms: Option<u32>,
}

#[napi(object)]
pub struct NativeImageProgress {
    pub phase: String,
    /// The layer's digest, or empty for whole-image phases.
    pub layer: String,
    pub current: f64,
    pub total: f64,
}

#[napi(object)]
pub struct ImageLayer {
    pub digest: String,
    pub size: f64,
    pub media_type: String,
}

#[napi(object)]
pub struct ImageRunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: HashMap<String, String>,
}

#[napi(object)]
pub struct PreparedImage {
    pub digest: String,
    pub names: Vec<String>,
    pub config_digest: String,
    pub layers: Vec<ImageLayer>,
    pub blobs: Vec<String>,
    pub disk: String,
    pub disk_bytes: f64,
    pub config: ImageRunConfig,
    pub created: Option<String>,
}

/// Fetches an image into the store and builds its read-only ext4 base disk (once per digest).
#[napi(ts_args_type = "request: PrepareImageRequest, onProgress: (event: NativeImageProgress) => void")]
pub async fn prepare_image(
    request: PrepareImageRequest,
    on_progress: ThreadsafeFunction<NativeImageProgress, (), NativeImageProgress, Status, false>,
) -> napi::Result<PreparedImage> {
    let on_progress = Arc::new(on_progress);
    let sink: ProgressFn = Arc::new(move |p: Progress| {
        let event = NativeImageProgress {
            phase: p.phase.to_owned(),
            layer: p.layer,
            current: p.current as f64,
            total: p.total as f64,
        };
        on_progress.call(event, ThreadsafeFunctionCallMode::NonBlocking);
    });
    let request = PrepareRequest {
        store_dir: PathBuf::from(request.store_dir),
        source: request.source,
        insecure_registries: request.insecure_registries.unwrap_or_default(),
        docker_config: request.docker_config.map(PathBuf::from),
        timeout: request
            .timeout_ms
            .map_or(DEFAULT_TIMEOUT, |ms| Duration::from_millis(u64::from(ms))),
        busybox: None,
        memory_scratch: vmctl_image::default_memory_dir(),
    };
    let prepared = vmctl_image::prepare(request, sink).await.map_err(to_js)?;
    let image = prepared.fetched;
    Ok(PreparedImage {
        digest: image.digest.to_string(),
        names: image.names,
        config_digest: image.config_digest.to_string(),
        layers: image
            .layers
            .iter()
            .map(|l| ImageLayer {
                digest: l.digest.to_string(),
                size: l.size as f64,
                media_type: l.media_type.clone(),
            })
            .collect(),
        blobs: image.blobs.iter().map(ToString::to_string).collect(),
        disk: prepared.disk.to_string_lossy().into_owned(),
        disk_bytes: prepared.disk_bytes as f64,
        config: ImageRunConfig {
            entrypoint: image.config.entrypoint,
            cmd: image.config.cmd,
            env: image.config.env,
            working_dir: image.config.working_dir,
            user: image.config.user,
            labels: image.config.labels.into_iter().collect(),
        },
        created: image.config.created,
    })
}

#[napi(object)]
pub struct WritableLayerRequest {
    pub store_dir: String,
    /// Where the new disk goes; must not exist.
    pub path: String,
    /// Its size: whole MiB, at least 16 MiB.
    pub size_bytes: f64,
}

/// A fresh, empty, sparse ext4 disk for one VM's writes.
#[napi]
pub async fn create_writable_layer(request: WritableLayerRequest) -> napi::Result<()> {
    let size = size_from_js(request.size_bytes)?;
    let (store, path) = (PathBuf::from(request.store_dir), PathBuf::from(request.path));
    blocking(move || vmctl_image::create_writable_layer(&store, &path, size)).await
}

#[napi(object)]
pub struct UnpackLayersRequest {
    pub store_dir: String,
    /// Layer digests in order, as `PreparedImage.layers` lists them.
    pub layers: Vec<String>,
    /// An empty directory to unpack into.
    pub dest: String,
}

/// Unpacks stored layers, in order, into a directory: the image's root file system tree.
#[napi]
pub async fn unpack_layers(request: UnpackLayersRequest) -> napi::Result<()> {
    blocking(move || {
        let store = vmctl_image::Store::open(&PathBuf::from(&request.store_dir))?;
        let digests = request
            .layers
            .iter()
            .map(|d| vmctl_image::Digest::parse(d))
            .collect::<vmctl_image::Result<Vec<_>>>()?;
        vmctl_image::unpack_layers(&store, &digests, &PathBuf::from(&request.dest))
    })
    .await
}

async fn blocking(work: impl FnOnce() -> vmctl_image::Result<()> + Send + 'static) -> napi::Result<()> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            napi::Error::new(
                Status::GenericFailure,
                format!("INTERNAL: image worker failed: {e}"),
            )
        })?
        .map_err(to_js)
}

fn size_from_js(value: f64) -> napi::Result<u64> {
    if !(value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0) {
        return Err(napi::Error::new(
            Status::InvalidArg,
            format!("INVALID_ARGUMENT: sizeBytes {value}: not a whole number of bytes"),
        ));
    }
    Ok(value as u64)
}

/// napi's async functions only reject with its own statuses, so the engine's code leads
/// the message ("NOT_FOUND: …") where the orchestrator reads it.
fn to_js(err: ImageError) -> napi::Error {
    napi::Error::new(Status::GenericFailure, err.to_string())
}
