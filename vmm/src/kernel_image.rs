//! Recognising kernel images and checking their headers: which format a file is (ELF64
//! `vmlinux` or `bzImage`), and whether a bzImage's setup header offers what the VMM needs
//! (the Linux 64-bit boot protocol). Used when the boot source is configured and again
//! when the kernel is loaded.

use crate::arch::x86_64::layout::HIMEM_START;

/// The kernel formats the VMM boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// ELF64 `vmlinux`, entered at its 64-bit entry point.
    Elf,
    /// `bzImage`, its protected-mode part entered at the 64-bit entry (+0x200).
    BzImage,
}

/// Recognises a kernel image from its first bytes.
pub fn detect_format(head: &[u8]) -> Option<KernelFormat> {
    const ELFCLASS64: u8 = 2;
    if head.len() >= 5 && head[..4] == *b"\x7fELF" {
        return (head[4] == ELFCLASS64).then_some(KernelFormat::Elf);
    }
    // bzImage: "HdrS" at 0x202 and the boot sector signature at 0x1fe.
    if head.len() >= 0x206 && head[0x202..0x206] == *b"HdrS" && head[0x1fe..0x200] == [0x55, 0xaa] {
        return Some(KernelFormat::BzImage);
    }
    None
}

/// Offset of the 64-bit entry point in a bzImage's protected-mode code.
pub const BZIMAGE_64BIT_ENTRY: u64 = 0x200;
/// The setup header ends here (file offset); a bzImage shorter than this is truncated.
pub const SETUP_HEADER_END: usize = 0x26c;
/// The first boot protocol with `xloadflags`, hence a verifiable 64-bit entry.
const MIN_BZIMAGE_PROTOCOL: u16 = 0x020c;
/// `loadflags`: the protected-mode code is loaded at 0x100000 (a bzImage, not a zImage).
const LOADED_HIGH: u8 = 0x01;
/// `xloadflags`: the kernel has the 64-bit entry point at +0x200.
pub const XLF_KERNEL_64: u16 = 0x01;

/// What the VMM takes from a bzImage's setup header, checked against the Linux 64-bit
/// boot protocol by [`check_bzimage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BzImageInfo {
    /// Bytes before the protected-mode code: the boot sector and the setup sectors.
    pub setup_bytes: u64,
    /// Bytes of protected-mode code in the file.
    pub image_bytes: u64,
    /// Where the protected-mode code is loaded.
    pub code32_start: u64,
    /// Guest memory the kernel uses from `code32_start`: `init_size`, at least the image.
    pub footprint: u64,
}

/// Why a bzImage's setup header was refused: one variant per rule of [`check_bzimage`].
/// The text is a sentence for the client (the caller names the field and path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BzImageError {
    #[error(
        "truncated bzImage: {file_len} bytes is shorter than the setup header ({SETUP_HEADER_END:#x} bytes)"
    )]
    TruncatedHeader { file_len: u64 },
    #[error("not a bzImage: no setup header (boot_flag 0xaa55 at 0x1fe, \"HdrS\" at 0x202)")]
    NoSetupHeader,
    #[error(
        "bzImage boot protocol {}.{:02} is older than 2.12: without xloadflags there is no 64-bit entry point to use",
        .version >> 8,
        .version & 0xff
    )]
    OldProtocol { version: u16 },
    #[error("bzImage loadflags lack LOADED_HIGH: a zImage (loaded at 0x10000) is not supported")]
    NotLoadedHigh,
    #[error("bzImage xloadflags lack XLF_KERNEL_64: the kernel has no 64-bit entry point")]
    No64BitEntry,
    #[error(
        "truncated bzImage: {image_bytes} bytes of protected-mode code after {setup_bytes} setup bytes, so no 64-bit entry at +{BZIMAGE_64BIT_ENTRY:#x}"
    )]
    TruncatedBeforeEntry { image_bytes: u64, setup_bytes: u64 },
    #[error(
        "truncated bzImage: syssize declares {declared} bytes of protected-mode code, the file has {image_bytes} after {setup_bytes} setup bytes"
    )]
    TruncatedCode {
        declared: u64,
        image_bytes: u64,
        setup_bytes: u64,
    },
    #[error("bzImage code32_start {code32_start:#x} is below {HIMEM_START:#x}")]
    Code32StartTooLow { code32_start: u64 },
}

/// Checks a bzImage's setup header: `head` is the start of the file (at least up to the
/// end of the setup header, 0x26c, when the file is that long), `file_len` its size.
pub fn check_bzimage(head: &[u8], file_len: u64) -> Result<BzImageInfo, BzImageError> {
    if head.len() < SETUP_HEADER_END || file_len < SETUP_HEADER_END as u64 {
        return Err(BzImageError::TruncatedHeader { file_len });
    }
    let u8_at = |o: usize| head[o];
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
    if u16_at(0x1fe) != 0xaa55 || head[0x202..0x206] != *b"HdrS" {
        return Err(BzImageError::NoSetupHeader);
    }
    let version = u16_at(0x206);
    if version < MIN_BZIMAGE_PROTOCOL {
        return Err(BzImageError::OldProtocol { version });
    }
    if u8_at(0x211) & LOADED_HIGH == 0 {
        return Err(BzImageError::NotLoadedHigh);
    }
    if u16_at(0x236) & XLF_KERNEL_64 == 0 {
        return Err(BzImageError::No64BitEntry);
    }
    let setup_sects = match u8_at(0x1f1) {
        0 => 4,
        n => u64::from(n),
    };
    let setup_bytes = (setup_sects + 1) * 512;
    let image_bytes = file_len.saturating_sub(setup_bytes);
    if image_bytes <= BZIMAGE_64BIT_ENTRY {
        return Err(BzImageError::TruncatedBeforeEntry {
            image_bytes,
            setup_bytes,
        });
    }
    let declared = u64::from(u32_at(0x1f4)) * 16;
    if declared > image_bytes.next_multiple_of(16) {
        return Err(BzImageError::TruncatedCode {
            declared,
            image_bytes,
            setup_bytes,
        });
    }
    let code32_start = u64::from(u32_at(0x214));
    if code32_start < HIMEM_START {
        return Err(BzImageError::Code32StartTooLow { code32_start });
    }
    Ok(BzImageInfo {
        setup_bytes,
        image_bytes,
        code32_start,
        footprint: u64::from(u32_at(0x260)).max(image_bytes),
    })
}

/// A minimal bzImage for tests: `setup_sects` setup sectors, then `image` bytes of
/// protected-mode code whose +0x200 is the 64-bit entry; boot protocol 2.12,
/// `cmdline_size` 2047.
#[cfg(test)]
pub(crate) fn test_bzimage(setup_sects: u8, image: usize, init_size: u32) -> Vec<u8> {
    let setup = (usize::from(setup_sects.max(1)) + 1) * 512;
    let mut b = vec![0u8; setup + image];
    b[0x1f1] = setup_sects;
    b[0x1f4..0x1f8].copy_from_slice(&(image.div_ceil(16) as u32).to_le_bytes());
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020cu16.to_le_bytes());
    b[0x211] = LOADED_HIGH;
    b[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    b[0x236..0x238].copy_from_slice(&XLF_KERNEL_64.to_le_bytes());
    b[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    b[0x260..0x264].copy_from_slice(&init_size.to_le_bytes());
    b[setup + 0x200] = 0xfa; // the 64-bit entry's first byte
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bzimage_head() -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        b[0x1fe] = 0x55;
        b[0x1ff] = 0xaa;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b
    }

    #[test]
    fn detects_elf64_and_bzimage_only() {
        assert_eq!(detect_format(b"\x7fELF\x02\x01\x01"), Some(KernelFormat::Elf));
        assert_eq!(detect_format(b"\x7fELF\x01\x01\x01"), None);
        assert_eq!(detect_format(&bzimage_head()), Some(KernelFormat::BzImage));
        assert_eq!(detect_format(b"this is not a kernel"), None);
    }

    fn check(b: &[u8]) -> Result<BzImageInfo, BzImageError> {
        check_bzimage(&b[..b.len().min(0x400)], b.len() as u64)
    }

    #[test]
    fn a_64bit_bzimage_header_is_accepted_with_its_layout() {
        let info = check(&test_bzimage(1, 0x1000, 0x8000)).unwrap();
        assert_eq!(
            info,
            BzImageInfo {
                setup_bytes: 0x400,
                image_bytes: 0x1000,
                code32_start: 0x10_0000,
                footprint: 0x8000,
            }
        );
        // setup_sects 0 means 4; init_size smaller than the image counts the image.
        let mut b = test_bzimage(4, 0x1000, 0x10);
        b[0x1f1] = 0;
        let info = check(&b).unwrap();
        assert_eq!((info.setup_bytes, info.footprint), (0xa00, 0x1000));
        // syssize rounded up to 16 bytes is not truncation.
        assert!(check(&test_bzimage(1, 0x1008, 0)).is_ok());
    }

    #[test]
    fn bzimage_headers_without_a_usable_64bit_entry_are_refused() {
        let refused = |b: Vec<u8>, why: &str| {
            let e = check(&b).unwrap_err().to_string();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        };
        let mut b = test_bzimage(1, 0x1000, 0);
        b[0x236] = 0;
        refused(b, "XLF_KERNEL_64");
        let mut b = test_bzimage(1, 0x1000, 0);
        b[0x206..0x208].copy_from_slice(&0x020au16.to_le_bytes());
        refused(b, "2.10 is older than 2.12");
        let mut b = test_bzimage(1, 0x1000, 0);
        b[0x211] = 0;
        refused(b, "LOADED_HIGH");
        let mut b = test_bzimage(1, 0x1000, 0);
        b[0x214..0x218].copy_from_slice(&0x1_0000u32.to_le_bytes());
        refused(b, "code32_start 0x10000");
        let mut b = test_bzimage(1, 0x1000, 0);
        b[0x202] = b'X';
        refused(b, "no setup header");
        // Truncated: in the header, before the 64-bit entry, inside the declared code.
        let b = test_bzimage(1, 0x1000, 0);
        refused(b[..0x240].to_vec(), "shorter than the setup header");
        refused(b[..0x400 + 0x200].to_vec(), "no 64-bit entry");
        refused(b[..0x400 + 0x800].to_vec(), "syssize declares 4096 bytes");
    }
}
