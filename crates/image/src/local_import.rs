//! Images from files: a `docker save` archive or an OCI image layout directory. Their
//! blobs are copied into the store, each verified (layout) or hashed (archive) on the way.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci_client::Reference;
use oci_client::manifest::{OciImageIndex, OciManifest};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{ImageError, Result};
use crate::fetched::{Fetched, LayerRef};
use crate::manifest::{check_layers, choose_platform, parse_config, parse_manifest, synthesize_manifest};
use crate::progress::{ProgressFn, Throttled};
use crate::store::Store;

const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

fn is_bad_path(code: i32) -> bool {
    use rustix::io::Errno;
    [Errno::NAMETOOLONG, Errno::NOTDIR, Errno::ISDIR, Errno::LOOP]
        .iter()
        .any(|e| e.raw_os_error() == code)
}

/// Why a source path named by the user cannot be read: it is not there (NOT_FOUND), or
/// it is not what it should be — a directory for a file, a name too long (INVALID_ARGUMENT).
fn source_error(what: &str, err: Option<io::Error>) -> ImageError {
    match err {
        None => ImageError::invalid(format!(
            "{what}: not the kind of file expected (an archive is a file, a layout a directory)"
        )),
        Some(e) if e.kind() == io::ErrorKind::NotFound => {
            ImageError::not_found(format!("{what}: no such file or directory"))
        }
        Some(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            ImageError::new(crate::ErrorCode::PermissionDenied, format!("{what}: {e}"))
        }
        Some(e) if e.raw_os_error().is_some_and(is_bad_path) => ImageError::invalid(format!("{what}: {e}")),
        Some(e) => ImageError::io(what, e),
    }
}

/// Copies `reader` into the store as a blob, reporting progress as phase "copy".
fn copy_blob(
    store: &Store,
    mut reader: impl Read,
    expected: Option<&Digest>,
    size: u64,
    progress: &ProgressFn,
    label: &str,
) -> Result<Digest> {
    let mut writer = store.blob_writer()?;
    let mut throttle = Throttled::new(progress.clone(), "copy", label.to_owned(), size);
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buffer)
            .map_err(|e| ImageError::io(format!("reading {label}"), e))?;
        if n == 0 {
            break;
        }
        io::Write::write_all(&mut writer, &buffer[..n])
            .map_err(|e| ImageError::io(format!("storing {label}"), e))?;
        throttle.update(writer.written());
    }
    throttle.finish(writer.written());
    writer.commit(expected, Some(size))
}

// ---- OCI image layout ----

/// Imports the image tagged `tag` (or the only one) from an OCI layout directory.
pub fn import_layout(store: &Store, dir: &Path, tag: Option<&str>, progress: &ProgressFn) -> Result<Fetched> {
    let what = format!("OCI layout {}", dir.display());
    let read_blob_file = |digest: &Digest| -> Result<Vec<u8>> {
        std::fs::read(dir.join("blobs/sha256").join(digest.hex()))
            .map_err(|e| ImageError::invalid(format!("{what}: blob {digest}: {e}")))
    };
    if !dir.is_dir() {
        return Err(source_error(&what, dir.symlink_metadata().err()));
    }
    let index_bytes = std::fs::read(dir.join("index.json")).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => {
            ImageError::not_found(format!("{what}: no index.json (not an OCI image layout)"))
        }
        _ => source_error(&what, Some(e)),
    })?;
    let index: OciImageIndex = serde_json::from_slice(&index_bytes)
        .map_err(|e| ImageError::invalid(format!("{what}: index.json: {e}")))?;
    let entry = match tag {
        Some(tag) => index
            .manifests
            .iter()
            .find(|m| {
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME_ANNOTATION))
                    .is_some_and(|n| n == tag)
            })
            .ok_or_else(|| ImageError::not_found(format!("{what}: no image tagged {tag:?}")))?,
        None if index.manifests.len() == 1 => &index.manifests[0],
        None => {
            return Err(ImageError::invalid(format!(
                "{what} holds {} images: name one as oci:PATH:TAG",
                index.manifests.len()
            )));
        }
    };
    let tag = tag
        .map(str::to_owned)
        .or_else(|| {
            entry
                .annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
                .cloned()
        })
        .unwrap_or_else(|| "latest".to_owned());

    let mut blobs = Vec::new();
    let mut digest = Digest::parse(&entry.digest)?;
    let mut bytes = read_blob_file(&digest)?;
    let manifest = loop {
        let stored = store.put_bytes(&bytes, Some(&digest))?;
        blobs.push(stored);
        match parse_manifest(&bytes, &what)? {
            OciManifest::Image(manifest) => break manifest,
            OciManifest::ImageIndex(inner) if blobs.len() < 3 => {
                digest = choose_platform(&inner, &what)?;
                bytes = read_blob_file(&digest)?;
            }
            OciManifest::ImageIndex(_) => {
                return Err(ImageError::invalid(format!("{what}: indexes nested too deep")));
            }
        }
    };
    let image_digest = blobs.last().cloned().expect("one manifest stored");
    let layers = check_layers(&manifest, &what)?;
    let config_digest = Digest::parse(&manifest.config.digest)?;
    let config_bytes = read_blob_file(&config_digest)?;
    store.put_bytes(&config_bytes, Some(&config_digest))?;
    let config = parse_config(&config_bytes, &what)?;
    blobs.push(config_digest.clone());
    for LayerRef {
        digest: layer, size, ..
    } in &layers
    {
        if !store.has_blob(layer) {
            let path = dir.join("blobs/sha256").join(layer.hex());
            let file =
                File::open(&path).map_err(|e| ImageError::invalid(format!("{what}: layer {layer}: {e}")))?;
            copy_blob(store, file, Some(layer), *size, progress, &layer.to_string())?;
        }
        blobs.push(layer.clone());
    }
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "image".to_owned());
    Ok(Fetched {
        digest: image_digest,
        names: local_name(&base, &tag).into_iter().collect(),
        config_digest,
        config,
        layers,
        blobs,
    })
}

/// `localhost/NAME:TAG` for an image without a registry, as podman names local images;
/// a tag that is a whole reference itself is kept as it is.
fn local_name(base: &str, tag: &str) -> Option<String> {
    if tag.contains('/')
        && let Ok(full) = tag.parse::<Reference>()
    {
        return Some(full.whole());
    }
    format!("localhost/{base}:{tag}")
        .parse::<Reference>()
        .ok()
        .map(|r| r.whole())
}

// ---- docker save archive ----

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Where each file of an archive is (offset and size), so blobs can be read in any order.
struct ArchiveFiles {
    file: File,
    entries: HashMap<PathBuf, (u64, u64)>,
}

impl ArchiveFiles {
    fn index(path: &Path) -> Result<Self> {
        let what = format!("archive {}", path.display());
        if !path.is_file() {
            return Err(source_error(&what, path.symlink_metadata().err()));
        }
        let file = File::open(path).map_err(|e| source_error(&what, Some(e)))?;
        let mut entries = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        for entry in archive
            .entries()
            .map_err(|e| ImageError::invalid(format!("{what}: not a tar archive: {e}")))?
        {
            let entry = entry.map_err(|e| {
                ImageError::invalid(format!(
                    "{what}: not a docker save archive, or a truncated one ({e})"
                ))
            })?;
            if entry.header().entry_type().is_file() {
                let name = crate::unpack::clean_path(&entry.path_bytes())?;
                entries.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        Ok(Self {
            file: file
                .try_clone()
                .map_err(|e| ImageError::io("reopening the archive", e))?,
            entries,
        })
    }

    fn open(&self, name: &str) -> Result<(impl Read + '_, u64)> {
        let key = crate::unpack::clean_path(name.as_bytes())?;
        let (offset, size) = *self
            .entries
            .get(&key)
            .ok_or_else(|| ImageError::invalid(format!("the archive has no {name:?}")))?;
        let mut file = &self.file;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| ImageError::io("seeking in the archive", e))?;
        Ok((file.take(size), size))
    }
}

/// Imports the image named `name` (or the only one) from a `docker save` archive.
pub fn import_docker_archive(
    store: &Store,
    path: &Path,
    name: Option<&str>,
    progress: &ProgressFn,
) -> Result<Fetched> {
    let what = format!("archive {}", path.display());
    let files = ArchiveFiles::index(path)?;
    let (mut reader, _) = files
        .open("manifest.json")
        .map_err(|_| ImageError::invalid(format!("{what}: no manifest.json (not a docker save archive)")))?;
    let mut manifest_bytes = Vec::new();
    reader
        .read_to_end(&mut manifest_bytes)
        .map_err(|e| ImageError::io("reading manifest.json", e))?;
    let images: Vec<ArchiveImage> = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| ImageError::invalid(format!("{what}: manifest.json: {e}")))?;
    let wanted = name.map(|n| normalize(n).unwrap_or_else(|| n.to_owned()));
    let image = match &wanted {
        Some(wanted) => images
            .iter()
            .find(|i| {
                i.repo_tags
                    .iter()
                    .flatten()
                    .any(|t| normalize(t).as_deref() == Some(wanted))
            })
            .ok_or_else(|| ImageError::not_found(format!("{what}: no image named {wanted}")))?,
        None if images.len() == 1 => &images[0],
        None => {
            return Err(ImageError::invalid(format!(
                "{what} holds {} images: name one as docker-archive:PATH:NAME",
                images.len()
            )));
        }
    };

    let (config_reader, config_size) = files.open(&image.config)?;
    let mut config_bytes = Vec::with_capacity(config_size as usize);
    config_reader
        .take(16 * 1024 * 1024)
        .read_to_end(&mut config_bytes)
        .map_err(|e| ImageError::io("reading the image config", e))?;
    let config = parse_config(&config_bytes, &what)?;
    let config_digest = store.put_bytes(&config_bytes, None)?;

    let mut layers = Vec::new();
    for layer_name in &image.layers {
        let (reader, size) = files.open(layer_name)?;
        let digest = copy_blob(store, reader, None, size, progress, layer_name)?;
        let media_type = sniff_layer_type(&store.blob_path(&digest))?;
        layers.push(LayerRef {
            digest,
            size,
            media_type,
        });
    }
    let manifest = synthesize_manifest(&config_digest, config_bytes.len() as u64, &layers);
    let digest = store.put_bytes(&manifest, None)?;
    let mut blobs = vec![digest.clone(), config_digest.clone()];
    blobs.extend(layers.iter().map(|l| l.digest.clone()));
    let names = match wanted {
        Some(wanted) => vec![wanted],
        None => image
            .repo_tags
            .iter()
            .flatten()
            .filter_map(|t| normalize(t))
            .collect(),
    };
    Ok(Fetched {
        digest,
        names,
        config_digest,
        config,
        layers,
        blobs,
    })
}

fn normalize(name: &str) -> Option<String> {
    name.parse::<Reference>().ok().map(|r| r.whole())
}

fn sniff_layer_type(path: &Path) -> Result<String> {
    let mut head = [0u8; 4];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ImageError::io("reading a layer", e))?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
        [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
        _ => "application/vnd.oci.image.layer.v1.tar",
    }
    .to_owned())
}
