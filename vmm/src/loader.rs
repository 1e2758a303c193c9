//! Loading the kernel (ELF vmlinux or bzImage, through linux-loader), the initrd and the
//! command line into guest memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::arch::x86_64::boot_params::InitrdRegion;
use crate::arch::x86_64::layout::{CMDLINE_ADDR, CMDLINE_MAX_SIZE, HIMEM_START};
use crate::vmm_config::boot_source::KernelFormat;

/// Offset of the 64-bit entry point in a bzImage's protected-mode code.
const BZIMAGE_64BIT_ENTRY: u64 = 0x200;
const PAGE: u64 = 4096;
/// The setup header ends here (file offset); a bzImage shorter than this is truncated.
const SETUP_HEADER_END: usize = 0x26c;
/// The first boot protocol with `xloadflags`, hence a verifiable 64-bit entry.
const MIN_BZIMAGE_PROTOCOL: u16 = 0x020c;
/// `loadflags`: the protected-mode code is loaded at 0x100000 (a bzImage, not a zImage).
const LOADED_HIGH: u8 = 0x01;
/// `xloadflags`: the kernel has the 64-bit entry point at +0x200.
const XLF_KERNEL_64: u16 = 0x01;

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

/// Checks a bzImage's setup header: `head` is the start of the file (at least up to the
/// end of the setup header, 0x26c, when the file is that long), `file_len` its size.
/// The error is a sentence for the client (the caller names the field and path).
pub fn check_bzimage(head: &[u8], file_len: u64) -> Result<BzImageInfo, String> {
    if head.len() < SETUP_HEADER_END || file_len < SETUP_HEADER_END as u64 {
        return Err(format!(
            "truncated bzImage: {file_len} bytes is shorter than the setup header ({SETUP_HEADER_END:#x} bytes)"
        ));
    }
    let u8_at = |o: usize| head[o];
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
    if u16_at(0x1fe) != 0xaa55 || head[0x202..0x206] != *b"HdrS" {
        return Err("not a bzImage: no setup header (boot_flag 0xaa55 at 0x1fe, \"HdrS\" at 0x202)".into());
    }
    let version = u16_at(0x206);
    if version < MIN_BZIMAGE_PROTOCOL {
        return Err(format!(
            "bzImage boot protocol {}.{:02} is older than 2.12: without xloadflags there is no 64-bit entry point to use",
            version >> 8,
            version & 0xff
        ));
    }
    if u8_at(0x211) & LOADED_HIGH == 0 {
        return Err(
            "bzImage loadflags lack LOADED_HIGH: a zImage (loaded at 0x10000) is not supported".into(),
        );
    }
    if u16_at(0x236) & XLF_KERNEL_64 == 0 {
        return Err("bzImage xloadflags lack XLF_KERNEL_64: the kernel has no 64-bit entry point".into());
    }
    let setup_sects = match u8_at(0x1f1) {
        0 => 4,
        n => u64::from(n),
    };
    let setup_bytes = (setup_sects + 1) * 512;
    let image_bytes = file_len.saturating_sub(setup_bytes);
    if image_bytes <= BZIMAGE_64BIT_ENTRY {
        return Err(format!(
            "truncated bzImage: {image_bytes} bytes of protected-mode code after {setup_bytes} setup bytes, so no 64-bit entry at +{BZIMAGE_64BIT_ENTRY:#x}"
        ));
    }
    let declared = u64::from(u32_at(0x1f4)) * 16;
    if declared > image_bytes.next_multiple_of(16) {
        return Err(format!(
            "truncated bzImage: syssize declares {declared} bytes of protected-mode code, the file has {image_bytes} after {setup_bytes} setup bytes"
        ));
    }
    let code32_start = u64::from(u32_at(0x214));
    if code32_start < HIMEM_START {
        return Err(format!(
            "bzImage code32_start {code32_start:#x} is below {HIMEM_START:#x}"
        ));
    }
    Ok(BzImageInfo {
        setup_bytes,
        image_bytes,
        code32_start,
        footprint: u64::from(u32_at(0x260)).max(image_bytes),
    })
}

/// Reads a bzImage's first bytes (enough for the setup header) and checks them.
fn read_bzimage_header(file: &mut File) -> std::io::Result<Result<BzImageInfo, String>> {
    let len = file.metadata()?.len();
    let mut head = Vec::with_capacity(SETUP_HEADER_END);
    file.seek(SeekFrom::Start(0))?;
    file.take(SETUP_HEADER_END as u64).read_to_end(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(check_bzimage(&head, len))
}

/// Why the kernel, initrd or command line could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("boot_source.kernel_image_path: cannot read {}: {source}", path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("boot_source.kernel_image_path: {}: {detail}", path.display())]
    BadKernel { path: PathBuf, detail: String },
    #[error(
        "machine_config.mem_size_mib: {mem_mib} MiB is too small for the kernel, which needs guest memory up to {needed:#x}"
    )]
    KernelTooBig { mem_mib: u64, needed: u64 },
    #[error("boot_source.initrd_path: {0}")]
    Initrd(String),
    #[error("boot_source.boot_args: {0}")]
    Cmdline(String),
}

impl LoadError {
    /// True when the error is in the client's configuration (versus a host failure).
    pub fn is_config(&self) -> bool {
        !matches!(self, LoadError::Open { .. })
    }
}

/// Where the kernel went and how to enter it.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    pub entry: u64,
    pub end: u64,
    /// The bzImage's setup header, for the zero page.
    pub setup_header: Option<setup_header>,
}

/// The highest guest-physical address an ELF's PT_LOAD segments reach.
fn elf_end(file: &mut File) -> std::io::Result<Option<u64>> {
    let mut ehdr = [0u8; 64];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut ehdr)?;
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
    let phoff = u64_at(&ehdr, 0x20);
    let phentsize = u16_at(&ehdr, 0x36) as usize;
    let phnum = u16_at(&ehdr, 0x38) as usize;
    if phentsize < 56 || phnum == 0 || phnum > 256 {
        return Ok(None);
    }
    let mut end = 0u64;
    let mut ph = vec![0u8; phentsize];
    for i in 0..phnum {
        file.seek(SeekFrom::Start(phoff + (i * phentsize) as u64))?;
        file.read_exact(&mut ph)?;
        const PT_LOAD: u32 = 1;
        if u32::from_le_bytes(ph[0..4].try_into().unwrap_or_default()) == PT_LOAD {
            let paddr = u64_at(&ph, 0x18);
            let memsz = u64_at(&ph, 0x28);
            end = end.max(paddr.saturating_add(memsz));
        }
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(Some(end))
}

/// Loads the kernel at `path`.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    mem_bytes: u64,
    path: &Path,
    format: KernelFormat,
) -> Result<LoadedKernel, LoadError> {
    let mut file = File::open(path).map_err(|source| LoadError::Open {
        path: path.to_owned(),
        source,
    })?;
    let bad = |detail: String| LoadError::BadKernel {
        path: path.to_owned(),
        detail,
    };
    let too_big = |needed| LoadError::KernelTooBig {
        mem_mib: mem_bytes >> 20,
        needed,
    };
    match format {
        KernelFormat::Elf => {
            let end = elf_end(&mut file).map_err(|e| bad(format!("reading ELF headers: {e}")))?;
            if let Some(end) = end
                && end > mem_bytes
            {
                return Err(too_big(end));
            }
            let r = Elf::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|e| bad(format!("not a loadable ELF64 vmlinux: {e}")))?;
            Ok(LoadedKernel {
                entry: r.kernel_load.0,
                end: r.kernel_end,
                setup_header: None,
            })
        }
        KernelFormat::BzImage => {
            // Checked again here (not only at PutBootSource): the file may have changed.
            let info = read_bzimage_header(&mut file)
                .map_err(|e| bad(format!("reading the bzImage setup header: {e}")))?
                .map_err(bad)?;
            let needed = info.code32_start + info.footprint;
            if needed > mem_bytes {
                return Err(too_big(needed));
            }
            let r = BzImage::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|e| bad(format!("not a loadable bzImage: {e}")))?;
            let hdr = r
                .setup_header
                .ok_or_else(|| bad("bzImage without a setup header".into()))?;
            Ok(LoadedKernel {
                entry: r.kernel_load.0 + BZIMAGE_64BIT_ENTRY,
                // The kernel owns init_size bytes from its load address (its bss, or
                // room to decompress): the initrd must go above all of it.
                end: r.kernel_end.max(r.kernel_load.0 + info.footprint),
                setup_header: Some(hdr),
            })
        }
    }
}

/// Checks that the command line (`len` bytes, NUL excluded) fits in what the kernel
/// accepts: a bzImage says so in its setup header (`cmdline_size`).
pub fn check_cmdline_fits(kernel: &LoadedKernel, len: usize) -> Result<(), LoadError> {
    match kernel.setup_header {
        Some(hdr) if len > hdr.cmdline_size as usize => Err(LoadError::Cmdline(format!(
            "the command line is {len} bytes (with the VMM's device declarations) but the bzImage accepts at most {} (cmdline_size)",
            { hdr.cmdline_size }
        ))),
        _ => Ok(()),
    }
}

/// Loads the initrd page-aligned at the top of low memory, above the kernel.
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    low_mem_end: u64,
    kernel_end: u64,
    path: &Path,
) -> Result<InitrdRegion, LoadError> {
    let mut file =
        File::open(path).map_err(|e| LoadError::Initrd(format!("cannot read {}: {e}", path.display())))?;
    let size = file
        .metadata()
        .map_err(|e| LoadError::Initrd(e.to_string()))?
        .len();
    let addr = low_mem_end.checked_sub(size).map(|a| a & !(PAGE - 1));
    let addr = addr.filter(|a| *a >= kernel_end).ok_or_else(|| {
        LoadError::Initrd(format!(
            "{} ({size} bytes) does not fit in guest memory above the kernel",
            path.display()
        ))
    })?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut file, size as usize)
        .map_err(|e| LoadError::Initrd(format!("loading {}: {e}", path.display())))?;
    Ok(InitrdRegion { addr, size })
}

/// Builds the command line: the user's arguments, then the VMM's device declarations.
pub fn build_cmdline(boot_args: &str, extra: &[String]) -> Result<Cmdline, LoadError> {
    let mut cmdline = Cmdline::new(CMDLINE_MAX_SIZE).map_err(|e| LoadError::Cmdline(e.to_string()))?;
    if !boot_args.trim().is_empty() {
        cmdline
            .insert_str(boot_args.trim())
            .map_err(|e| LoadError::Cmdline(format!("{e}")))?;
    }
    for word in extra {
        cmdline
            .insert_str(word)
            .map_err(|e| LoadError::Cmdline(format!("{e}")))?;
    }
    Ok(cmdline)
}

/// Writes the command line at [`CMDLINE_ADDR`]; returns its length without the NUL.
pub fn write_cmdline(mem: &GuestMemoryMmap, cmdline: &Cmdline) -> Result<usize, LoadError> {
    let c = cmdline
        .as_cstring()
        .map_err(|e| LoadError::Cmdline(e.to_string()))?;
    let bytes = c.as_bytes_with_nul();
    mem.write_slice(bytes, GuestAddress(CMDLINE_ADDR))
        .map_err(|e| LoadError::Cmdline(format!("writing into guest memory: {e}")))?;
    Ok(bytes.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_appends_device_declarations_after_the_users_args() {
        let c = build_cmdline(
            " console=ttyS0 vmctl.test=hello ",
            &["virtio_mmio.device=4K@0xd0000000:5".into()],
        )
        .unwrap();
        assert_eq!(
            c.as_cstring().unwrap().to_str().unwrap(),
            "console=ttyS0 vmctl.test=hello virtio_mmio.device=4K@0xd0000000:5"
        );
        assert!(build_cmdline(&"x".repeat(CMDLINE_MAX_SIZE + 1), &[]).is_err());
    }

    #[test]
    fn too_little_memory_for_an_elf_is_named_as_mem_size() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        // A minimal ELF64 header with one PT_LOAD at 1 MiB of 64 KiB.
        let mut elf = vec![0u8; 64 + 56];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[5] = 1;
        elf[0x12] = 62; // EM_X86_64
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let ph = &mut elf[64..];
        ph[0..4].copy_from_slice(&1u32.to_le_bytes());
        ph[0x18..0x20].copy_from_slice(&(1u64 << 20).to_le_bytes());
        ph[0x28..0x30].copy_from_slice(&0x10000u64.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vmlinux");
        std::fs::write(&p, &elf).unwrap();
        let e = load_kernel(&mem, 1 << 20, &p, KernelFormat::Elf).unwrap_err();
        assert!(e.to_string().starts_with("machine_config.mem_size_mib:"), "{e}");
        assert!(e.is_config());
    }

    /// A minimal bzImage: `setup_sects` setup sectors, then `image` bytes of protected-mode
    /// code whose +0x200 is the 64-bit entry; boot protocol 2.12.
    fn bzimage(setup_sects: u8, image: usize, init_size: u32) -> Vec<u8> {
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

    fn check(b: &[u8]) -> Result<BzImageInfo, String> {
        check_bzimage(&b[..b.len().min(0x400)], b.len() as u64)
    }

    #[test]
    fn a_64bit_bzimage_header_is_accepted_with_its_layout() {
        let info = check(&bzimage(1, 0x1000, 0x8000)).unwrap();
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
        let mut b = bzimage(4, 0x1000, 0x10);
        b[0x1f1] = 0;
        let info = check(&b).unwrap();
        assert_eq!((info.setup_bytes, info.footprint), (0xa00, 0x1000));
        // syssize rounded up to 16 bytes is not truncation.
        assert!(check(&bzimage(1, 0x1008, 0)).is_ok());
    }

    #[test]
    fn bzimage_headers_without_a_usable_64bit_entry_are_refused() {
        let refused = |b: Vec<u8>, why: &str| {
            let e = check(&b).unwrap_err();
            assert!(e.contains(why), "{e:?} should say {why:?}");
        };
        let mut b = bzimage(1, 0x1000, 0);
        b[0x236] = 0;
        refused(b, "XLF_KERNEL_64");
        let mut b = bzimage(1, 0x1000, 0);
        b[0x206..0x208].copy_from_slice(&0x020au16.to_le_bytes());
        refused(b, "2.10 is older than 2.12");
        let mut b = bzimage(1, 0x1000, 0);
        b[0x211] = 0;
        refused(b, "LOADED_HIGH");
        let mut b = bzimage(1, 0x1000, 0);
        b[0x214..0x218].copy_from_slice(&0x1_0000u32.to_le_bytes());
        refused(b, "code32_start 0x10000");
        let mut b = bzimage(1, 0x1000, 0);
        b[0x202] = b'X';
        refused(b, "no setup header");
        // Truncated: in the header, before the 64-bit entry, inside the declared code.
        let b = bzimage(1, 0x1000, 0);
        refused(b[..0x240].to_vec(), "shorter than the setup header");
        refused(b[..0x400 + 0x200].to_vec(), "no 64-bit entry");
        refused(b[..0x400 + 0x800].to_vec(), "syssize declares 4096 bytes");
    }

    fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bzImage");
        std::fs::write(&p, bytes).unwrap();
        (dir, p)
    }

    #[test]
    fn a_bzimage_is_loaded_at_code32_start_and_entered_at_plus_0x200() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        let b = bzimage(1, 0x1000, 0x20000);
        let (_dir, p) = write_temp(&b);
        let k = load_kernel(&mem, 4 << 20, &p, KernelFormat::BzImage).unwrap();
        assert_eq!(k.entry, 0x10_0200);
        // The kernel owns init_size from its load address: the initrd goes above it.
        assert_eq!(k.end, 0x10_0000 + 0x20000);
        let hdr = k.setup_header.unwrap();
        assert_eq!(({ hdr.header }, { hdr.xloadflags }), (0x5372_6448, XLF_KERNEL_64));
        // The protected-mode code (not the setup sectors) is at 1 MiB.
        let first: u8 = mem.read_obj(GuestAddress(0x10_0200)).unwrap();
        assert_eq!(first, 0xfa);
        let initrd_file = write_temp(&[1u8; 4096]);
        let initrd = load_initrd(&mem, 4 << 20, k.end, &initrd_file.1).unwrap();
        assert!(initrd.addr >= k.end);
    }

    #[test]
    fn bad_or_too_big_bzimages_are_refused_at_load() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        // init_size beyond guest memory: named as mem_size_mib, with what is needed.
        let (_d, p) = write_temp(&bzimage(1, 0x1000, 0x20_0000));
        let e = load_kernel(&mem, 2 << 20, &p, KernelFormat::BzImage).unwrap_err();
        assert!(e.to_string().starts_with("machine_config.mem_size_mib:"), "{e}");
        assert!(e.to_string().contains("0x300000"), "{e}");
        // No XLF_KERNEL_64: named as kernel_image_path, a client error.
        let mut b = bzimage(1, 0x1000, 0);
        b[0x236] = 0;
        let (_d, p) = write_temp(&b);
        let e = load_kernel(&mem, 2 << 20, &p, KernelFormat::BzImage).unwrap_err();
        assert!(e.to_string().starts_with("boot_source.kernel_image_path:"), "{e}");
        assert!(e.to_string().contains("XLF_KERNEL_64"), "{e}");
        assert!(e.is_config());
    }

    #[test]
    fn the_command_line_must_fit_the_bzimages_cmdline_size() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        let (_d, p) = write_temp(&bzimage(1, 0x1000, 0));
        let k = load_kernel(&mem, 4 << 20, &p, KernelFormat::BzImage).unwrap();
        assert!(check_cmdline_fits(&k, 2047).is_ok());
        let e = check_cmdline_fits(&k, 2048).unwrap_err();
        assert!(e.to_string().starts_with("boot_source.boot_args:"), "{e}");
        let elf = LoadedKernel {
            entry: 0x10_0000,
            end: 0x20_0000,
            setup_header: None,
        };
        assert!(check_cmdline_fits(&elf, CMDLINE_MAX_SIZE - 1).is_ok());
    }
}
