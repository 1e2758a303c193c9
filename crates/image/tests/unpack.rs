//! The unpacker against layers built here with the tar crate: the container-runtime
//! semantics (whiteouts, opaque directories, hard links, type changes, special files,
//! owners and modes) and the refusals (paths and links that would leave the tree),
//! including property-based hostile layers that must never touch anything outside.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use proptest::prelude::*;
use tar::{EntryType, Header};
use vmctl_image::ErrorCode;
use vmctl_image::unpack::Unpacker;

/// One tar entry; `name` is written raw into the header, unchecked, as an attacker would.
#[derive(Debug, Clone)]
struct Entry {
    name: Vec<u8>,
    kind: EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
    mode: u32,
    uid: u64,
    gid: u64,
}

fn entry(name: &str, kind: EntryType) -> Entry {
    Entry {
        name: name.into(),
        kind,
        data: Vec::new(),
        link: Vec::new(),
        mode: 0o755,
        uid: 0,
        gid: 0,
    }
}
fn dir(name: &str) -> Entry {
    entry(name, EntryType::Directory)
}
fn file(name: &str, content: &str) -> Entry {
    Entry {
        data: content.into(),
        mode: 0o644,
        ..entry(name, EntryType::Regular)
    }
}
fn symlink(name: &str, target: &str) -> Entry {
    Entry {
        link: target.into(),
        ..entry(name, EntryType::Symlink)
    }
}
fn hardlink(name: &str, source: &str) -> Entry {
    Entry {
        link: source.into(),
        ..entry(name, EntryType::Link)
    }
}

fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = Header::new_gnu();
        let gnu = header.as_gnu_mut().expect("a GNU header");
        gnu.name = [0; 100];
        gnu.name[..e.name.len().min(100)].copy_from_slice(&e.name[..e.name.len().min(100)]);
        gnu.linkname = [0; 100];
        gnu.linkname[..e.link.len().min(100)].copy_from_slice(&e.link[..e.link.len().min(100)]);
        header.set_entry_type(e.kind);
        header.set_mode(e.mode);
        header.set_uid(e.uid);
        header.set_gid(e.gid);
        header.set_mtime(1_700_000_000);
        header.set_size(e.data.len() as u64);
        header.set_cksum();
        builder.append(&header, e.data.as_slice()).expect("append");
    }
    builder.into_inner().expect("finish")
}

struct Sandbox {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

/// `root` to unpack into, next to `outside`, which nothing may ever change.
fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("canary"), "untouched").unwrap();
    Sandbox {
        _dir: dir,
        root,
        outside,
    }
}

impl Sandbox {
    fn apply(&self, layers: &[&[Entry]]) -> Result<(), vmctl_image::ImageError> {
        let mut unpacker = Unpacker::new(&self.root);
        for (i, entries) in layers.iter().enumerate() {
            unpacker.apply(&format!("layer{i}"), layer(entries).as_slice())?;
        }
        Ok(())
    }

    fn outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["canary"], "something was written outside the tree");
        assert_eq!(
            fs::read_to_string(self.outside.join("canary")).unwrap(),
            "untouched"
        );
        let parent: Vec<_> = fs::read_dir(self.root.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            parent.len(),
            2,
            "something was written next to the tree: {parent:?}"
        );
    }
}

fn read(path: &Path) -> String {
    let mut s = String::new();
    fs::File::open(path).unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn whiteouts_opaque_dirs_and_type_changes() {
    let sb = sandbox();
    sb.apply(&[
        &[
            dir("etc"),
            file("etc/gone", "x"),
            file("etc/kept", "kept"),
            dir("opq"),
            file("opq/old", "old"),
            dir("opq/sub"),
            file("opq/sub/deep", "deep"),
            dir("change"),
            file("change/file2dir", "f"),
            dir("change/dir2link"),
            file("change/dir2link/inner", "i"),
            symlink("change/link2file", "../etc/kept"),
        ],
        &[
            file("opq/new-before-marker", "kept: same layer"),
            file("opq/.wh..wh..opq", ""),
            dir("opq/sub"),
            file("opq/sub/fresh", "fresh"),
            file("etc/.wh.gone", ""),
            dir("change/file2dir"),
            file("change/file2dir/child", "c"),
            symlink("change/dir2link", "/usr/bin"),
            file("change/link2file", "now a file"),
        ],
    ])
    .unwrap();
    let r = &sb.root;
    assert!(!r.join("etc/gone").exists());
    assert!(
        !r.join("etc/.wh.gone").exists(),
        "a whiteout marker itself is never in the tree"
    );
    assert_eq!(read(&r.join("etc/kept")), "kept");
    assert!(!r.join("opq/old").exists());
    assert!(
        !r.join("opq/sub/deep").exists(),
        "lower contents of a re-declared dir are hidden too"
    );
    assert!(!r.join("opq/.wh..wh..opq").exists());
    assert_eq!(read(&r.join("opq/new-before-marker")), "kept: same layer");
    assert_eq!(read(&r.join("opq/sub/fresh")), "fresh");
    assert!(r.join("change/file2dir").is_dir());
    assert_eq!(read(&r.join("change/file2dir/child")), "c");
    assert_eq!(
        fs::read_link(r.join("change/dir2link")).unwrap(),
        Path::new("/usr/bin")
    );
    assert!(
        fs::symlink_metadata(r.join("change/link2file"))
            .unwrap()
            .is_file()
    );
    sb.outside_untouched();
}

#[test]
fn hard_links_within_and_across_layers_survive_a_deleted_source() {
    let sb = sandbox();
    sb.apply(&[
        &[
            dir("d"),
            file("d/source", "shared"),
            hardlink("d/same-layer", "d/source"),
        ],
        &[hardlink("d/next-layer", "d/source"), file("d/.wh.source", "")],
    ])
    .unwrap();
    assert!(!sb.root.join("d/source").exists());
    assert_eq!(read(&sb.root.join("d/same-layer")), "shared");
    assert_eq!(read(&sb.root.join("d/next-layer")), "shared");
    assert_eq!(fs::metadata(sb.root.join("d/next-layer")).unwrap().nlink(), 2);
}

#[test]
fn owners_modes_and_special_files() {
    let sb = sandbox();
    let mut suid = file("suid", "#!/bin/sh\n");
    suid.mode = 0o4755;
    suid.uid = 1000;
    suid.gid = 1000;
    let mut tmp = dir("tmp");
    tmp.mode = 0o1777;
    let mut fifo = entry("fifo", EntryType::Fifo);
    fifo.mode = 0o600;
    let mut null = entry("null", EntryType::Char);
    null.mode = 0o666;
    sb.apply(&[&[suid, tmp, fifo, null]]).unwrap();
    let m = fs::metadata(sb.root.join("suid")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
        (1000, 1000, 0o4755),
        "setuid survives chown"
    );
    assert_eq!(
        fs::metadata(sb.root.join("tmp")).unwrap().permissions().mode() & 0o7777,
        0o1777
    );
    assert!(fs::metadata(sb.root.join("fifo")).unwrap().file_type().is_fifo());
    assert!(
        fs::metadata(sb.root.join("null"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn entries_that_leave_the_tree_are_refused() {
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        ("dot-dot", vec![file("../outside/evil", "x")]),
        ("inner dot-dot", vec![dir("a"), file("a/../../outside/evil", "x")]),
        ("absolute", vec![file("/tmp/evil", "x")]),
        (
            "through an absolute symlink",
            vec![symlink("link", "/"), file("link/evil", "x")],
        ),
        (
            "through a relative symlink",
            vec![symlink("link", "../outside"), file("link/evil", "x")],
        ),
        (
            "through a symlinked dir",
            vec![symlink("link", "."), file("link/evil", "x")],
        ),
        ("hard link out", vec![hardlink("h", "../outside/canary")]),
        (
            "hard link through a symlink",
            vec![symlink("link", "../outside"), hardlink("h", "link/canary")],
        ),
        (
            "whiteout through a symlink",
            vec![symlink("link", "../outside"), file("link/.wh.canary", "")],
        ),
        (
            "opaque through a symlink",
            vec![symlink("link", "../outside"), file("link/.wh..wh..opq", "")],
        ),
    ];
    for (what, entries) in cases {
        let sb = sandbox();
        let err = sb.apply(&[&entries]).expect_err(what);
        assert_eq!(err.code, ErrorCode::InvalidArgument, "{what}: {err}");
        assert!(
            err.message.contains("layer0"),
            "{what}: the error names the layer: {err}"
        );
        sb.outside_untouched();
    }
}

#[test]
fn a_truncated_layer_is_data_loss() {
    let sb = sandbox();
    let bytes = layer(&[file("big", &"x".repeat(10_000))]);
    let err = Unpacker::new(&sb.root).apply("cut", &bytes[..3000]).unwrap_err();
    assert_eq!(err.code, ErrorCode::DataLoss, "{err}");
}

fn hostile_entry() -> impl Strategy<Value = Entry> {
    let part = prop::sample::select(vec![
        "a",
        "b",
        "..",
        ".",
        "",
        "link",
        "outside",
        "canary",
        ".wh.a",
        ".wh..wh..opq",
        "/",
    ]);
    let name = prop::collection::vec(part, 1..5).prop_map(|parts| parts.join("/").into_bytes());
    let target = prop::sample::select(vec![
        "/",
        "..",
        "../..",
        "../outside",
        "a",
        "/tmp",
        "link",
        ".",
        "../outside/canary",
    ]);
    let kind = prop::sample::select(vec![
        EntryType::Regular,
        EntryType::Directory,
        EntryType::Symlink,
        EntryType::Link,
        EntryType::Fifo,
    ]);
    (name, kind, target).prop_map(|(name, kind, target)| Entry {
        name,
        kind,
        data: if kind == EntryType::Regular {
            b"payload".to_vec()
        } else {
            Vec::new()
        },
        link: target.as_bytes().to_vec(),
        mode: 0o755,
        uid: 0,
        gid: 0,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the layers say, nothing outside the tree is created, changed or removed;
    /// a refusal is INVALID_ARGUMENT, never a panic or an I/O error.
    #[test]
    fn hostile_layers_never_touch_anything_outside(
        layers in prop::collection::vec(prop::collection::vec(hostile_entry(), 1..8), 1..4)
    ) {
        let sb = sandbox();
        let mut unpacker = Unpacker::new(&sb.root);
        for (i, entries) in layers.iter().enumerate() {
            if let Err(err) = unpacker.apply(&format!("layer{i}"), layer(entries).as_slice()) {
                prop_assert!(
                    matches!(err.code, ErrorCode::InvalidArgument),
                    "unexpected {:?}: {}", err.code, err
                );
                break;
            }
        }
        sb.outside_untouched();
    }
}
