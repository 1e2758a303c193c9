//! `BootSource`: the kernel, its command line and an optional initrd.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::FieldError;
use crate::arch::x86_64::layout::CMDLINE_MAX_SIZE;
use crate::kernel_image::{BzImageError, KernelFormat, check_bzimage, detect_format};

/// Room kept on the command line for the VMM's own device declarations.
pub const MAX_BOOT_ARGS_LEN: usize = CMDLINE_MAX_SIZE / 2;

/// The validated boot source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSourceConfig {
    pub kernel_image_path: PathBuf,
    pub kernel_format: KernelFormat,
    pub boot_args: String,
    pub initrd_path: Option<PathBuf>,
}

/// Why a boot source was refused.
#[derive(Debug, thiserror::Error)]
pub enum BootSourceError {
    #[error("boot_source.kernel_image_path: must not be empty")]
    KernelMissing,
    #[error("boot_source.kernel_image_path: cannot read {}: {source}", path.display())]
    KernelUnreadable { path: PathBuf, source: std::io::Error },
    #[error("boot_source.kernel_image_path: {} is not a regular file", .0.display())]
    KernelNotAFile(PathBuf),
    #[error("boot_source.kernel_image_path: {} is neither an ELF64 vmlinux nor a bzImage", .0.display())]
    KernelFormat(PathBuf),
    #[error("boot_source.kernel_image_path: {}: {source}", path.display())]
    BadBzImage { path: PathBuf, source: BzImageError },
    #[error("boot_source.boot_args: longer than {MAX_BOOT_ARGS_LEN} bytes ({0})")]
    BootArgsTooLong(usize),
    #[error("boot_source.boot_args: must not contain NUL or newline characters")]
    BootArgsChars,
    #[error("boot_source.initrd_path: cannot read {}: {source}", path.display())]
    InitrdUnreadable { path: PathBuf, source: std::io::Error },
}

impl FieldError for BootSourceError {
    fn field(&self) -> &'static str {
        match self {
            BootSourceError::KernelMissing
            | BootSourceError::KernelUnreadable { .. }
            | BootSourceError::KernelNotAFile(_)
            | BootSourceError::KernelFormat(_)
            | BootSourceError::BadBzImage { .. } => "boot_source.kernel_image_path",
            BootSourceError::BootArgsTooLong(_) | BootSourceError::BootArgsChars => "boot_source.boot_args",
            BootSourceError::InitrdUnreadable { .. } => "boot_source.initrd_path",
        }
    }
}

/// Opens `path` for reading without blocking: opening a FIFO (or a terminal) blocks until
/// the other side appears, and the API must never wait on a path a client named.
/// `O_NONBLOCK` changes nothing for the regular files accepted afterwards.
pub(crate) fn open_nonblocking(path: &Path) -> Result<File, std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

fn open_regular(path: &Path) -> Result<File, std::io::Error> {
    let f = open_nonblocking(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

impl BootSourceConfig {
    /// Validates raw API values; reads the kernel's first bytes to know its format.
    pub fn new(kernel_image_path: &str, boot_args: &str, initrd_path: &str) -> Result<Self, BootSourceError> {
        if kernel_image_path.is_empty() {
            return Err(BootSourceError::KernelMissing);
        }
        let path = PathBuf::from(kernel_image_path);
        let mut file = open_nonblocking(&path).map_err(|source| BootSourceError::KernelUnreadable {
            path: path.clone(),
            source,
        })?;
        let meta = file
            .metadata()
            .map_err(|source| BootSourceError::KernelUnreadable {
                path: path.clone(),
                source,
            })?;
        if !meta.is_file() {
            return Err(BootSourceError::KernelNotAFile(path));
        }
        let mut head = Vec::with_capacity(0x400);
        (&mut file).take(0x400).read_to_end(&mut head).map_err(|source| {
            BootSourceError::KernelUnreadable {
                path: path.clone(),
                source,
            }
        })?;
        let kernel_format =
            detect_format(&head).ok_or_else(|| BootSourceError::KernelFormat(path.clone()))?;
        if kernel_format == KernelFormat::BzImage {
            // The setup header must offer the 64-bit entry and the file must hold what it
            // declares; checked again at Start.
            check_bzimage(&head, meta.len()).map_err(|source| BootSourceError::BadBzImage {
                path: path.clone(),
                source,
            })?;
        }

        if boot_args.len() > MAX_BOOT_ARGS_LEN {
            return Err(BootSourceError::BootArgsTooLong(boot_args.len()));
        }
        if boot_args.contains(['\0', '\n']) {
            return Err(BootSourceError::BootArgsChars);
        }
        let initrd_path = if initrd_path.is_empty() {
            None
        } else {
            let p = PathBuf::from(initrd_path);
            open_regular(&p).map_err(|source| BootSourceError::InitrdUnreadable {
                path: p.clone(),
                source,
            })?;
            Some(p)
        };
        Ok(Self {
            kernel_image_path: path,
            kernel_format,
            boot_args: boot_args.to_owned(),
            initrd_path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_image::test_bzimage;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    }

    #[test]
    fn each_bad_field_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let elf = write(dir.path(), "vmlinux", b"\x7fELF\x02\x01\x01\x00");
        let junk = write(dir.path(), "junk", b"junk");
        let field = |r: Result<BootSourceConfig, BootSourceError>| r.unwrap_err().field();
        assert_eq!(
            field(BootSourceConfig::new("", "", "")),
            "boot_source.kernel_image_path"
        );
        assert_eq!(
            field(BootSourceConfig::new("/nonexistent/k", "", "")),
            "boot_source.kernel_image_path"
        );
        assert_eq!(
            field(BootSourceConfig::new(dir.path().to_str().unwrap(), "", "")),
            "boot_source.kernel_image_path"
        );
        let e = BootSourceConfig::new(&junk, "", "").unwrap_err();
        assert!(
            e.to_string().contains("neither an ELF64 vmlinux nor a bzImage"),
            "{e}"
        );
        assert_eq!(
            field(BootSourceConfig::new(&elf, "a\nb", "")),
            "boot_source.boot_args"
        );
        let long = "x".repeat(MAX_BOOT_ARGS_LEN + 1);
        assert_eq!(
            field(BootSourceConfig::new(&elf, &long, "")),
            "boot_source.boot_args"
        );
        assert_eq!(
            field(BootSourceConfig::new(&elf, "", "/nonexistent/i")),
            "boot_source.initrd_path"
        );
        let ok = BootSourceConfig::new(&elf, "console=ttyS0", &junk).unwrap();
        assert_eq!(ok.kernel_format, KernelFormat::Elf);
        assert_eq!(ok.initrd_path.as_deref(), Some(Path::new(&junk)));
    }

    #[test]
    fn a_bzimage_without_a_64bit_entry_or_truncated_is_refused_naming_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = test_bzimage(1, 0x1000, 0);
        let good = write(dir.path(), "good", &b);
        assert_eq!(
            BootSourceConfig::new(&good, "", "").unwrap().kernel_format,
            KernelFormat::BzImage
        );
        let truncated = write(dir.path(), "truncated", &b[..0x400 + 0x800]);
        let e = BootSourceConfig::new(&truncated, "", "").unwrap_err();
        assert_eq!(e.field(), "boot_source.kernel_image_path");
        assert!(e.to_string().contains("truncated"), "{e}");
        b[0x236] = 0;
        let no_xlf = write(dir.path(), "no-xlf", &b);
        let e = BootSourceConfig::new(&no_xlf, "", "").unwrap_err();
        assert_eq!(e.field(), "boot_source.kernel_image_path");
        assert!(e.to_string().contains("XLF_KERNEL_64"), "{e}");
    }
}
