//! `prepare` end to end on local sources (no registry): the built-in default image, and a
//! layer that expands far beyond its compressed size so the in-memory unpack area fills
//! up and the engine unpacks on disk instead.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use vmctl_image::{PrepareRequest, Progress, ProgressFn, prepare};

fn request(store: &Path, source: String, memory_scratch: Option<&Path>) -> PrepareRequest {
    PrepareRequest {
        store_dir: store.to_path_buf(),
        source,
        insecure_registries: Vec::new(),
        docker_config: None,
        timeout: Duration::from_secs(10),
        busybox: None,
        memory_scratch: memory_scratch.map(Path::to_path_buf),
    }
}

fn no_progress() -> ProgressFn {
    Arc::new(|_: Progress| {})
}

fn debugfs(disk: &Path, request: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", request])
        .arg(disk)
        .output()
        .expect("debugfs (e2fsprogs) runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fsck_clean(disk: &Path) {
    let status = Command::new("e2fsck")
        .arg("-fn")
        .arg(disk)
        .output()
        .expect("e2fsck runs")
        .status;
    assert!(status.success(), "e2fsck -fn {} failed", disk.display());
}

fn hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// An OCI layout holding one image with one gzip layer of `tar` bytes.
fn write_layout(dir: &Path, tar: &[u8]) {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).unwrap();
    let layer = gz.finish().unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", hex(tar))] },
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", hex(&config)), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", hex(&layer)), "size": layer.len() }],
    }))
    .unwrap();
    fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    for blob in [&layer, &config, &manifest] {
        fs::write(dir.join("blobs/sha256").join(hex(blob)), blob).unwrap();
    }
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", hex(&manifest)), "size": manifest.len(),
        "annotations": { "org.opencontainers.image.ref.name": "t" },
    }]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A tar holding one file of `size` zero bytes: a few hundred KiB once gzipped.
fn zeros_tar(size: u64) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "zeros.bin", std::io::repeat(0).take(size))
        .unwrap();
    builder.into_inner().unwrap()
}

#[tokio::test]
async fn the_default_image_unpacked_on_disk_and_in_memory() {
    for memory in [None, vmctl_image::default_memory_dir()] {
        let store = tempfile::tempdir().unwrap();
        let prepared = prepare(
            request(store.path(), "builtin:default".into(), memory.as_deref()),
            no_progress(),
        )
        .await
        .unwrap();
        assert_eq!(prepared.fetched.names, vec![vmctl_image::DEFAULT_IMAGE_NAME]);
        assert_eq!(prepared.fetched.config.cmd, vec!["/bin/sh"]);
        fsck_clean(&prepared.disk);
        assert!(debugfs(&prepared.disk, "stat /bin/sh").contains("Fast link dest: \"/bin/busybox\""));
        assert!(debugfs(&prepared.disk, "stat /tmp").contains("Mode:  01777"));
        assert_eq!(
            fs::read_dir(store.path().join("tmp")).unwrap().count(),
            0,
            "scratch left behind ({memory:?})"
        );
    }
}

/// A tmpfs of 128 MiB (mounted here: the tests run as root) and a layer of 200 MiB of
/// zeros: the estimate says it fits, the unpack fills the tmpfs, and the engine goes on
/// on disk. Nothing is left in either place.
#[tokio::test]
async fn a_tree_that_outgrows_the_memory_area_is_unpacked_on_disk() {
    let work = tempfile::tempdir().unwrap();
    let tmpfs = work.path().join("tmpfs");
    fs::create_dir(&tmpfs).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=128m", "vmctl-test"])
        .arg(&tmpfs)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a tmpfs for the test failed (the tests run as root)"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&tmpfs);

    let layout = work.path().join("layout");
    write_layout(&layout, &zeros_tar(200 * 1024 * 1024));
    let store = work.path().join("store");
    let prepared = prepare(
        request(&store, format!("oci:{}:t", layout.display()), Some(&tmpfs)),
        no_progress(),
    )
    .await
    .unwrap();
    fsck_clean(&prepared.disk);
    assert!(debugfs(&prepared.disk, "stat /zeros.bin").contains("Size: 209715200"));
    assert_eq!(
        fs::read_dir(&tmpfs).unwrap().count(),
        0,
        "the memory area is empty again"
    );
    assert_eq!(fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

/// Sources that are not what they claim: each one clear error of the right kind.
#[tokio::test]
async fn bad_local_sources_are_named_errors() {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let file = work.path().join("a-file");
    fs::write(&file, "not an archive").unwrap();
    let long = format!("/{}", "x".repeat(300));
    let cases = [
        (format!("oci:{long}"), vmctl_image::ErrorCode::InvalidArgument),
        (
            format!("docker-archive:{long}"),
            vmctl_image::ErrorCode::InvalidArgument,
        ),
        (
            format!("docker-archive:{}", work.path().display()),
            vmctl_image::ErrorCode::InvalidArgument,
        ),
        (
            format!("oci:{}", file.display()),
            vmctl_image::ErrorCode::InvalidArgument,
        ),
        (
            format!("docker-archive:{}", file.display()),
            vmctl_image::ErrorCode::InvalidArgument,
        ),
        (
            format!("oci:{}/missing", work.path().display()),
            vmctl_image::ErrorCode::NotFound,
        ),
        ("builtin:nothing".to_owned(), vmctl_image::ErrorCode::NotFound),
    ];
    for (source, code) in cases {
        let err = prepare(request(&store, source.clone(), None), no_progress())
            .await
            .unwrap_err();
        assert_eq!(err.code, code, "{source}: {err}");
        assert!(!err.message.contains('\n'), "{source}: one line");
    }
    assert_eq!(fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

/// A tmpfs of `size` mounted at `dir` for one test (the tests run as root), unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "vmctl-test"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs for the test failed (the tests run as root)"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk, while a blob is stored and while the tree is unpacked: RESOURCE_EXHAUSTED
/// in one line, and the store holds no part of the image.
#[tokio::test]
async fn a_full_disk_is_resource_exhausted_and_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    // Incompressible: its blob alone does not fit a 1 MiB store.
    let mut noise = vec![0u8; 3 * 1024 * 1024];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for byte in noise.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(noise.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder
        .append_data(&mut header, "noise.bin", noise.as_slice())
        .unwrap();
    let big_blob = work.path().join("big-blob");
    write_layout(&big_blob, &builder.into_inner().unwrap());
    let expands = work.path().join("expands");
    write_layout(&expands, &zeros_tar(200 * 1024 * 1024));

    for (layout, size) in [(&big_blob, "1m"), (&expands, "16m")] {
        let store = work.path().join(format!("store-{size}"));
        let _tmpfs = Tmpfs::mount(&store, size);
        let err = prepare(
            request(&store, format!("oci:{}:t", layout.display()), None),
            no_progress(),
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.code,
            vmctl_image::ErrorCode::ResourceExhausted,
            "{size}: {err}"
        );
        assert!(!err.message.contains('\n'));
        assert_eq!(
            fs::read_dir(store.join("tmp")).unwrap().count(),
            0,
            "{size}: scratch left"
        );
        assert_eq!(
            fs::read_dir(store.join("disks")).unwrap().count(),
            0,
            "{size}: a disk"
        );
    }
}
