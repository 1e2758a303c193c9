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
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            if HIMEM_START + size > mem_bytes {
                return Err(too_big(HIMEM_START + size));
            }
            let r = BzImage::load(mem, None, &mut file, Some(GuestAddress(HIMEM_START)))
                .map_err(|e| bad(format!("not a loadable bzImage: {e}")))?;
            let hdr = r
                .setup_header
                .ok_or_else(|| bad("bzImage without a setup header".into()))?;
            let needed = r.kernel_load.0 + u64::from(hdr.init_size);
            if needed > mem_bytes {
                return Err(too_big(needed));
            }
            Ok(LoadedKernel {
                entry: r.kernel_load.0 + BZIMAGE_64BIT_ENTRY,
                end: r.kernel_end,
                setup_header: Some(hdr),
            })
        }
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
}
