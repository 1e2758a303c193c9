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
use crate::kernel_image::{
    BZIMAGE_64BIT_ENTRY, BzImageError, BzImageInfo, KernelFormat, SETUP_HEADER_END, check_bzimage,
};

const PAGE: u64 = 4096;

/// Reads a bzImage's first bytes (enough for the setup header) and checks them.
fn read_bzimage_header(file: &mut File) -> std::io::Result<Result<BzImageInfo, BzImageError>> {
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
    #[error("boot_source.kernel_image_path: {}: {source}", path.display())]
    BadKernel { path: PathBuf, source: KernelError },
    #[error(
        "machine_config.mem_size_mib: {mem_mib} MiB is too small for the kernel, which needs guest memory up to {needed:#x}"
    )]
    KernelTooBig { mem_mib: u64, needed: u64 },
    #[error("boot_source.initrd_path: {0}")]
    Initrd(String),
    #[error("boot_source.boot_args: {0}")]
    Cmdline(String),
}

/// Why the kernel file is not one the VMM can load (the cause in [`LoadError::BadKernel`]).
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("reading ELF headers: {0}")]
    ElfHeaders(std::io::Error),
    #[error("not a loadable ELF64 vmlinux: {0}")]
    Elf(linux_loader::loader::Error),
    #[error("reading the bzImage setup header: {0}")]
    BzImageHeader(std::io::Error),
    #[error(transparent)]
    BzImage(BzImageError),
    #[error("not a loadable bzImage: {0}")]
    BzImageLoad(linux_loader::loader::Error),
    #[error("bzImage without a setup header")]
    NoSetupHeader,
}

impl LoadError {
    /// True when the error is in the client's configuration (versus a host failure).
    pub fn is_config(&self) -> bool {
        !matches!(self, LoadError::Open { .. })
    }
}

impl crate::vmm_config::FieldError for LoadError {
    fn field(&self) -> &'static str {
        match self {
            LoadError::Open { .. } | LoadError::BadKernel { .. } => "boot_source.kernel_image_path",
            LoadError::KernelTooBig { .. } => "machine_config.mem_size_mib",
            LoadError::Initrd(_) => "boot_source.initrd_path",
            LoadError::Cmdline(_) => "boot_source.boot_args",
        }
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
    let bad = |source: KernelError| LoadError::BadKernel {
        path: path.to_owned(),
        source,
    };
    let too_big = |needed| LoadError::KernelTooBig {
        mem_mib: mem_bytes >> 20,
        needed,
    };
    match format {
        KernelFormat::Elf => {
            let end = elf_end(&mut file).map_err(|e| bad(KernelError::ElfHeaders(e)))?;
            if let Some(end) = end
                && end > mem_bytes
            {
                return Err(too_big(end));
            }
            let r = Elf::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|e| bad(KernelError::Elf(e)))?;
            Ok(LoadedKernel {
                entry: r.kernel_load.0,
                end: r.kernel_end,
                setup_header: None,
            })
        }
        KernelFormat::BzImage => {
            // Checked again here (not only at PutBootSource): the file may have changed.
            let info = read_bzimage_header(&mut file)
                .map_err(|e| bad(KernelError::BzImageHeader(e)))?
                .map_err(|e| bad(KernelError::BzImage(e)))?;
            let needed = info.code32_start + info.footprint;
            if needed > mem_bytes {
                return Err(too_big(needed));
            }
            let r = BzImage::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|e| bad(KernelError::BzImageLoad(e)))?;
            let hdr = r.setup_header.ok_or_else(|| bad(KernelError::NoSetupHeader))?;
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
    use crate::kernel_image::{XLF_KERNEL_64, test_bzimage as bzimage};

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
