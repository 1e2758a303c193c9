//! Applies image layers, in order, to a directory: the tree a container runtime would
//! show. Whiteouts (`.wh.NAME`) delete from lower layers, opaque markers
//! (`.wh..wh..opq`) hide a lower directory's contents, a later entry of another type
//! replaces what was there. The tar crate parses; the file system work is done here so
//! every write is checked: no entry may name a path outside the tree (absolute, `..`)
//! or be written through a symbolic link, and device nodes and fifos are made as such.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timestamps, Uid, XattrFlags};
use tar::{Archive, EntryType, Header};

use crate::error::{ErrorCode, ImageError, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// Unpacks layers into `root`, which must exist and be empty before the first layer.
pub struct Unpacker {
    root: PathBuf,
    /// Relative directories known to be real directories (no symlink on the way).
    verified_dirs: BTreeSet<PathBuf>,
    /// Paths written by the layer being applied (opaque markers keep them).
    layer_paths: HashSet<PathBuf>,
    /// Their ancestors, which an opaque marker keeps too.
    layer_ancestors: HashSet<PathBuf>,
}

/// What applying one layer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub whiteouts: u64,
}

impl Unpacker {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            verified_dirs: BTreeSet::new(),
            layer_paths: HashSet::new(),
            layer_ancestors: HashSet::new(),
        }
    }

    /// Applies one uncompressed layer tar stream. `layer` names it in errors.
    pub fn apply(&mut self, layer: &str, tar: impl Read) -> Result<LayerStats> {
        self.layer_paths.clear();
        self.layer_ancestors.clear();
        let mut stats = LayerStats::default();
        let mut archive = Archive::new(tar);
        let entries = archive
            .entries()
            .map_err(|e| corrupt(layer, "reading the tar stream", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| corrupt(layer, "reading a tar header", e))?;
            let raw_path = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw_path).into_owned();
            self.apply_entry(&mut entry, &raw_path, &mut stats)
                .map_err(|e| e.context(format!("layer {layer}, entry {shown:?}")))?;
        }
        Ok(stats)
    }

    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        raw_path: &[u8],
        stats: &mut LayerStats,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let path = clean_path(raw_path)?;
        stats.entries += 1;
        let Some(name) = path.file_name().map(|n| n.to_owned()) else {
            // The root itself ("./"): only its metadata can change.
            if kind.is_dir() {
                let meta = EntryMeta::read(entry)?;
                self.set_meta(&self.root.clone(), &meta, false)?;
            }
            return Ok(());
        };
        let parent = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let name_bytes = name.as_bytes();

        if name_bytes == OPAQUE_MARKER.as_bytes() {
            stats.whiteouts += 1;
            self.ensure_dir_chain(&parent, true)?;
            return self.opaque(&parent);
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(ImageError::invalid("a whiteout that names nothing"));
            }
            stats.whiteouts += 1;
            self.ensure_dir_chain(&parent, true)?;
            return self.remove(&parent.join(OsStr::from_bytes(hidden)));
        }

        self.ensure_dir_chain(&parent, true)?;
        let meta = EntryMeta::read(entry)?;
        let target = self.root.join(&path);
        let existing = fs::symlink_metadata(&target).ok();
        if let Some(existing) = &existing
            && !(kind.is_dir() && existing.is_dir())
        {
            self.remove(&path)?;
        }
        match kind {
            EntryType::Directory => {
                if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                    fs::create_dir(&target).map_err(|e| ImageError::io("creating a directory", e))?;
                }
                self.set_meta(&target, &meta, false)?;
                self.verified_dirs.insert(path.clone());
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&target)
                    .map_err(|e| ImageError::io("creating a file", e))?;
                io::copy(entry, &mut file).map_err(|e| corrupt_io("reading the file's content", e))?;
                drop(file);
                self.set_meta(&target, &meta, false)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| ImageError::invalid("a symbolic link without a target"))?;
                if link.is_empty() {
                    return Err(ImageError::invalid("a symbolic link with an empty target"));
                }
                symlink(OsStr::from_bytes(&link), &target)
                    .map_err(|e| ImageError::io("creating a symbolic link", e))?;
                self.set_meta(&target, &meta, true)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| ImageError::invalid("a hard link without a source"))?;
                let source = clean_path(&link).map_err(|e| e.context("hard link source"))?;
                let source_parent = source.parent().unwrap_or(Path::new("")).to_path_buf();
                self.ensure_dir_chain(&source_parent, false)
                    .map_err(|e| e.context(format!("hard link source {:?}", source.display())))?;
                let source_path = self.root.join(&source);
                match fs::symlink_metadata(&source_path) {
                    Ok(m) if m.is_dir() => {
                        return Err(ImageError::invalid(format!(
                            "hard link to a directory ({})",
                            source.display()
                        )));
                    }
                    Ok(_) => {}
                    Err(_) => {
                        return Err(ImageError::invalid(format!(
                            "hard link to {}, which does not exist",
                            source.display()
                        )));
                    }
                }
                fs::hard_link(&source_path, &target)
                    .map_err(|e| ImageError::io("creating a hard link", e))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                rustix::fs::mknodat(
                    CWD,
                    &target,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    rustix::fs::makedev(major, minor),
                )
                .map_err(|e| ImageError::io("creating a device node or fifo", e.into()))?;
                self.set_meta(&target, &meta, false)?;
            }
            other => {
                return Err(ImageError::invalid(format!(
                    "unsupported tar entry type {other:?}"
                )));
            }
        }
        self.note_written(path);
        Ok(())
    }

    /// Makes sure every directory from the root down to `dir` is a real directory, creating
    /// missing ones (0755, root-owned, as runtimes do) when `create` is set.
    fn ensure_dir_chain(&mut self, dir: &Path, create: bool) -> Result<()> {
        if dir.as_os_str().is_empty() || self.verified_dirs.contains(dir) {
            return Ok(());
        }
        let mut sofar = PathBuf::new();
        for component in dir.components() {
            sofar.push(component);
            if self.verified_dirs.contains(&sofar) {
                continue;
            }
            let full = self.root.join(&sofar);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ImageError::invalid(format!(
                        "writes through the symbolic link {} (refused: it could lead outside the image)",
                        sofar.display()
                    )));
                }
                Ok(_) => {
                    return Err(ImageError::invalid(format!(
                        "{} is not a directory",
                        sofar.display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&full).map_err(|e| ImageError::io("creating a parent directory", e))?;
                }
                Err(e) => return Err(ImageError::io(format!("looking up {}", sofar.display()), e)),
            }
            self.verified_dirs.insert(sofar.clone());
        }
        Ok(())
    }

    /// Removes `path` (relative) and everything under it, if present.
    fn remove(&mut self, path: &Path) -> Result<()> {
        let full = self.root.join(path);
        let result = match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&full),
            Ok(_) => fs::remove_file(&full),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        result.map_err(|e| ImageError::io(format!("removing {}", path.display()), e))?;
        let stale: Vec<PathBuf> = self
            .verified_dirs
            .range(path.to_path_buf()..)
            .take_while(|p| p.starts_with(path))
            .cloned()
            .collect();
        for p in stale {
            self.verified_dirs.remove(&p);
        }
        Ok(())
    }

    /// Hides what lower layers put in `dir`, keeping what this layer wrote.
    fn opaque(&mut self, dir: &Path) -> Result<()> {
        let full = self.root.join(dir);
        let children = match fs::read_dir(&full) {
            Ok(children) => children,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ImageError::io(format!("reading {}", dir.display()), e)),
        };
        let mut names = Vec::new();
        for child in children {
            names.push(
                child
                    .map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?
                    .file_name(),
            );
        }
        for name in names {
            let child = dir.join(&name);
            if self.layer_paths.contains(&child) || self.layer_ancestors.contains(&child) {
                // Written by this layer (or holds what it wrote): kept, but a directory's
                // lower contents are hidden too.
                if self
                    .root
                    .join(&child)
                    .symlink_metadata()
                    .is_ok_and(|m| m.is_dir())
                {
                    self.opaque(&child)?;
                }
            } else {
                self.remove(&child)?;
            }
        }
        Ok(())
    }

    fn note_written(&mut self, path: PathBuf) {
        let mut ancestor = path.parent();
        while let Some(dir) = ancestor {
            if dir.as_os_str().is_empty() || !self.layer_ancestors.insert(dir.to_path_buf()) {
                break;
            }
            ancestor = dir.parent();
        }
        self.layer_paths.insert(path);
    }

    fn set_meta(&self, target: &Path, meta: &EntryMeta, is_symlink: bool) -> Result<()> {
        // Ownership before mode: chown clears setuid and setgid bits.
        rustix::fs::chownat(
            CWD,
            target,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ImageError::io("setting the owner", e.into()))?;
        if !is_symlink {
            rustix::fs::chmodat(CWD, target, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                .map_err(|e| ImageError::io("setting the mode", e.into()))?;
        }
        for (name, value) in &meta.xattrs {
            // Linux keeps user.* attributes off symbolic links.
            if is_symlink && name.starts_with(b"user.") {
                continue;
            }
            rustix::fs::lsetxattr(target, name.as_slice(), value, XattrFlags::empty()).map_err(|e| {
                let what = format!("setting xattr {}", String::from_utf8_lossy(name));
                if e == rustix::io::Errno::NOTSUP {
                    ImageError::new(
                        ErrorCode::Unsupported,
                        format!("{what}: the file system does not support it"),
                    )
                } else {
                    ImageError::io(what, e.into())
                }
            })?;
        }

        let time = rustix::fs::Timespec {
            tv_sec: meta.mtime,
            tv_nsec: 0,
        };
        rustix::fs::utimensat(
            CWD,
            target,
            &Timestamps {
                last_access: time,
                last_modification: time,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| ImageError::io("setting the modification time", e.into()))?;
        Ok(())
    }
}

/// Owner, mode, time and extended attributes of one entry (PAX records win over the header).
struct EntryMeta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl EntryMeta {
    fn read<R: Read>(entry: &mut tar::Entry<R>) -> Result<Self> {
        let header: &Header = entry.header();
        let mut uid = header.uid().map_err(|e| corrupt_io("reading the owner", e))?;
        let mut gid = header.gid().map_err(|e| corrupt_io("reading the group", e))?;
        let mode = header.mode().map_err(|e| corrupt_io("reading the mode", e))? & 0o7777;
        let mut mtime = header.mtime().unwrap_or(0) as i64;
        let mut xattrs = Vec::new();
        if let Some(extensions) = entry
            .pax_extensions()
            .map_err(|e| corrupt_io("reading PAX records", e))?
        {
            for extension in extensions {
                let extension = extension.map_err(|e| corrupt_io("reading a PAX record", e))?;
                let key = extension.key_bytes();
                match key {
                    b"uid" => uid = parse_number(extension.value_bytes()).unwrap_or(uid),
                    b"gid" => gid = parse_number(extension.value_bytes()).unwrap_or(gid),
                    b"mtime" => {
                        let whole = extension
                            .value_bytes()
                            .split(|b| *b == b'.')
                            .next()
                            .unwrap_or_default();
                        mtime = parse_number(whole).map_or(mtime, |v| v as i64);
                    }
                    _ => {
                        if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX.as_bytes()) {
                            xattrs.push((name.to_vec(), extension.value_bytes().to_vec()));
                        }
                    }
                }
            }
        }
        let uid =
            u32::try_from(uid).map_err(|_| ImageError::invalid(format!("owner {uid} is out of range")))?;
        let gid =
            u32::try_from(gid).map_err(|_| ImageError::invalid(format!("group {gid} is out of range")))?;
        Ok(Self {
            uid,
            gid,
            mode,
            mtime,
            xattrs,
        })
    }
}

fn parse_number(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// The entry's path relative to the root, or an error for one that leaves the tree.
pub fn clean_path(raw: &[u8]) -> Result<PathBuf> {
    if raw.contains(&0) {
        return Err(ImageError::invalid("a path with a NUL byte"));
    }
    let path = Path::new(OsStr::from_bytes(raw));
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(ImageError::invalid(
                    "an absolute path (refused: it would leave the image)",
                ));
            }
            Component::ParentDir => {
                return Err(ImageError::invalid(
                    "a path with \"..\" (refused: it could leave the image)",
                ));
            }
        }
    }
    Ok(clean)
}

fn corrupt(layer: &str, what: &str, err: io::Error) -> ImageError {
    ImageError::data_loss(format!("layer {layer}: {what}: {err} (truncated or corrupt)"))
}

fn corrupt_io(what: &str, err: io::Error) -> ImageError {
    if err.raw_os_error().is_some() {
        ImageError::io(what, err)
    } else {
        ImageError::data_loss(format!("{what}: {err} (truncated or corrupt)"))
    }
}
