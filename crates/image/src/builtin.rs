//! The built-in `default` image: Debian's static busybox (package busybox-static) with
//! a symbolic link per applet and a minimal /etc, built here as an OCI layout and then
//! imported like any other. Deterministic (fixed times, owners and order), so the same
//! busybox always gives the same image digest, and no registry is needed.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use crate::digest::Digest;
use crate::error::{ImageError, Result};

/// The name the default image is recorded under.
pub const DEFAULT_IMAGE_NAME: &str = "localhost/vmctl/default:latest";
pub const DEFAULT_BUSYBOX: &str = "/bin/busybox";
const TAG: &str = "latest";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Writes the default image as an OCI layout into `dir` (which must exist, empty).
pub fn write_default_layout(dir: &Path, busybox: &Path) -> Result<()> {
    let binary = fs::read(busybox).map_err(|e| {
        ImageError::new(
            crate::ErrorCode::Internal,
            format!(
                "the default image needs {} (Debian package busybox-static): {e}",
                busybox.display()
            ),
        )
    })?;
    let applets = applets(busybox)?;
    let layer_tar = layer(&binary, &applets)?;
    let diff_id = Digest::of(&layer_tar);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&layer_tar)
        .map_err(|e| ImageError::io("compressing the default image", e))?;
    let layer_gz = gz
        .finish()
        .map_err(|e| ImageError::io("compressing the default image", e))?;

    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": [PATH_ENV], "Cmd": ["/bin/sh"], "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
        "history": [{ "created_by": format!("vmctl: {} with {} applets", busybox.display(), applets.len()) }],
    });
    let config = serde_json::to_vec(&config).expect("JSON");
    let layer_digest = Digest::of(&layer_gz);
    let manifest = crate::manifest::synthesize_manifest(
        &Digest::of(&config),
        config.len() as u64,
        &[crate::fetched::LayerRef {
            digest: layer_digest,
            size: layer_gz.len() as u64,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_owned(),
        }],
    );
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(&manifest).to_string(),
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": TAG },
        }],
    });
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(|e| ImageError::io("writing the default image", e))?;
    for bytes in [&layer_gz, &config, &manifest] {
        fs::write(blobs.join(Digest::of(bytes).hex()), bytes)
            .map_err(|e| ImageError::io("writing the default image", e))?;
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .and_then(|()| fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("JSON")))
        .map_err(|e| ImageError::io("writing the default image", e))
}

/// `busybox --list-full`: every applet's path (`bin/sh`, `usr/bin/env`, ...).
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let output = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| ImageError::io(format!("running {} --list-full", busybox.display()), e))?;
    if !output.status.success() {
        return Err(ImageError::new(
            crate::ErrorCode::Internal,
            format!("{} --list-full failed", busybox.display()),
        ));
    }
    let mut list: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "bin/busybox" && crate::unpack::clean_path(l.as_bytes()).is_ok())
        .map(str::to_owned)
        .collect();
    list.sort();
    list.dedup();
    Ok(list)
}

fn layer(busybox: &[u8], applets: &[String]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: EntryType, mode: u32, data: &[u8], link: Option<&str>| -> Result<()> {
        let mut header = Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header
                .set_link_name(link)
                .map_err(|e| ImageError::io("building the default image", e))?;
        }
        builder
            .append_data(&mut header, path, data)
            .map_err(|e| ImageError::io("building the default image", e))
    };
    let dirs = [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("sbin", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("var", 0o755),
        ("var/tmp", 0o1777),
    ];
    for (dir, mode) in dirs {
        add(dir, EntryType::Directory, mode, &[], None)?;
    }
    add("bin/busybox", EntryType::Regular, 0o755, busybox, None)?;
    add(
        "etc/passwd",
        EntryType::Regular,
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        None,
    )?;
    add(
        "etc/group",
        EntryType::Regular,
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
        None,
    )?;
    for applet in applets {
        add(applet, EntryType::Symlink, 0o777, &[], Some("/bin/busybox"))?;
    }
    builder
        .into_inner()
        .map_err(|e| ImageError::io("building the default image", e))
}
