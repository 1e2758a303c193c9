//! Boots the test guest from its bzImage (tests/guests/bzimage, boot protocol 2.12)
//! through the API: linux-loader's setup-header parsing, the protected-mode code loaded
//! at code32_start, the 64-bit entry at +0x200 and the image's setup header passed on in
//! the zero page. Then broken bzImages: refused naming the field, the VMM stays ready.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{connect, guest_bzimage, run_kernel, spawn_vmm, wait_exited};
use tonic::Code;
use vmctl_vmm_api::v1 as pb;
use vmctl_vmm_api::v1::vmm_client::VmmClient;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn bzimage_bytes() -> Vec<u8> {
    std::fs::read(guest_bzimage()).expect("read the guest bzImage")
}

/// Writes `bytes` as a kernel file in `dir`; returns its path.
fn write_kernel(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn boot_source(kernel: &str, test: &str) -> pb::BootSource {
    pb::BootSource {
        kernel_image_path: kernel.to_owned(),
        boot_args: format!("console=ttyS0 vmctl.test={test}"),
        initrd_path: String::new(),
    }
}

fn assert_kernel_refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, why: &str) {
    let s = r.expect_err("the bad bzImage should be refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().starts_with("boot_source.kernel_image_path"),
        "message {:?} should name boot_source.kernel_image_path",
        s.message()
    );
    assert!(
        s.message().contains(why),
        "message {:?} should say {why:?}",
        s.message()
    );
}

/// The VMM is still ready: the real bzImage is accepted and boots `hello` to exit 0.
async fn assert_still_boots(c: &mut VmmClient<tonic::transport::Channel>) {
    let state = c.get_state(pb::GetStateRequest {}).await.unwrap().into_inner();
    assert_eq!(state.phase, pb::Phase::Configuring as i32, "{state:?}");
    c.put_boot_source(boot_source(&guest_bzimage(), "hello"))
        .await
        .expect("the good bzImage is accepted after a refusal");
    c.start(pb::StartRequest {}).await.expect("Start");
    let end = wait_exited(c, Duration::from_secs(20)).await;
    assert_eq!(
        (end.exit_reason, end.exit_code),
        (pb::ExitReason::GuestExit as i32, 0),
        "{end:?}"
    );
}

#[test]
fn the_built_bzimage_has_a_64bit_setup_header() {
    let b = bzimage_bytes();
    assert_eq!(u16_at(&b, 0x1fe), 0xaa55, "boot_flag");
    assert_eq!(&b[0x202..0x206], b"HdrS");
    assert!(u16_at(&b, 0x206) >= 0x020c, "protocol 2.12+ for xloadflags");
    assert_eq!(b[0x211] & 0x01, 0x01, "loadflags LOADED_HIGH");
    assert_eq!(u16_at(&b, 0x236) & 0x01, 0x01, "xloadflags XLF_KERNEL_64");
    assert_eq!(u32_at(&b, 0x214), 0x10_0000, "code32_start");
    let setup = (usize::from(b[0x1f1]) + 1) * 512;
    let image = b.len() - setup;
    assert_eq!(u32_at(&b, 0x1f4) as usize, image.div_ceil(16), "syssize");
    assert!(u32_at(&b, 0x260) as usize >= image, "init_size covers the image");
    // The 64-bit entry (+0x200) starts with the runtime's `cli; cld`.
    assert_eq!(&b[setup + 0x200..setup + 0x202], &[0xfa, 0xfc]);
}

#[tokio::test]
async fn bzimage_hello_boots_through_the_64bit_entry() {
    let run = run_kernel(&guest_bzimage(), "hello", "", 1, 32, Vec::new()).await;
    run.assert_passed("hello");
    assert!(
        run.console.contains("hello from the vmctl test guest\n"),
        "{}",
        run.console
    );
    assert_eq!(run.reason(), pb::ExitReason::GuestExit);
    assert!(run.metrics.boot_done_us > 0, "{:?}", run.metrics);
}

#[tokio::test]
async fn bzimage_boot_params_carry_the_images_setup_header() {
    let b = bzimage_bytes();
    let run = run_kernel(&guest_bzimage(), "boot_params", "extra.word=1", 1, 64, Vec::new()).await;
    run.assert_passed("boot_params");
    // Entered at code32_start + 0x200, the zero page in RSI.
    assert_eq!(run.fact("entry"), Some("0x100200"), "{}", run.console);
    assert_eq!(run.fact("boot_params"), Some("0x7000"));
    // The image's header, copied into the zero page...
    assert_eq!(run.fact("hdr_header"), Some("HdrS"));
    assert_eq!(
        run.fact("hdr_version"),
        Some(format!("{:#x}", u16_at(&b, 0x206)).as_str())
    );
    assert_eq!(run.fact("hdr_xloadflags"), Some("0x1"));
    assert_eq!(run.fact("hdr_code32_start"), Some("0x100000"));
    assert_eq!(run.fact("hdr_pref_address"), Some("0x100000"));
    assert_eq!(
        run.fact("hdr_kernel_alignment"),
        Some(format!("{:#x}", u32_at(&b, 0x230)).as_str())
    );
    assert_eq!(
        run.fact("hdr_init_size"),
        Some(format!("{:#x}", u32_at(&b, 0x260)).as_str())
    );
    // ...with the boot loader's fields filled in: LOADED_HIGH kept, CAN_USE_HEAP set,
    // type_of_loader "undefined", and the command line.
    assert_eq!(run.fact("hdr_loadflags"), Some("0x81"));
    assert_eq!(run.fact("hdr_type_of_loader"), Some("0xff"));
    assert_eq!(run.fact("cmd_line_ptr"), Some("0x20000"));
    assert_eq!(
        run.fact("cmdline"),
        Some("console=ttyS0 vmctl.test=boot_params extra.word=1")
    );
    assert_eq!(run.fact("e820_ram_top"), Some("0x4000000"));
}

#[tokio::test]
async fn bzimage_exit_code_is_the_vms_exit_code() {
    let run = run_kernel(&guest_bzimage(), "exit_code", "vmctl.exit=42", 1, 32, Vec::new()).await;
    assert_eq!(run.reason(), pb::ExitReason::GuestExit, "{:?}", run.state);
    assert_eq!(run.state.exit_code, 42);
    assert_eq!(run.fact("exit"), Some("42"));
}

#[tokio::test]
async fn a_truncated_bzimage_is_refused_at_put_boot_source() {
    let b = bzimage_bytes();
    let vmm = spawn_vmm();
    let mut c = connect(&vmm.socket).await;
    c.put_machine_config(pb::MachineConfig {
        vcpu_count: 1,
        mem_size_mib: 32,
    })
    .await
    .unwrap();
    // Cut inside the protected-mode code: syssize says there is more.
    let half = write_kernel(vmm.dir.path(), "half.bzImage", &b[..b.len() / 2]);
    assert_kernel_refused(c.put_boot_source(boot_source(&half, "hello")).await, "truncated");
    // Cut right after the setup sectors: no 64-bit entry at all.
    let setup = (usize::from(b[0x1f1]) + 1) * 512;
    let no_code = write_kernel(vmm.dir.path(), "setup-only.bzImage", &b[..setup + 0x100]);
    assert_kernel_refused(
        c.put_boot_source(boot_source(&no_code, "hello")).await,
        "truncated",
    );
    // Cut inside the setup header.
    let header = write_kernel(vmm.dir.path(), "header.bzImage", &b[..0x240]);
    assert_kernel_refused(
        c.put_boot_source(boot_source(&header, "hello")).await,
        "truncated",
    );
    assert_still_boots(&mut c).await;
}

#[tokio::test]
async fn a_bzimage_without_a_64bit_entry_is_refused() {
    let b = bzimage_bytes();
    let vmm = spawn_vmm();
    let mut c = connect(&vmm.socket).await;
    c.put_machine_config(pb::MachineConfig {
        vcpu_count: 1,
        mem_size_mib: 32,
    })
    .await
    .unwrap();
    let mut no_xlf = b.clone();
    no_xlf[0x236] &= !0x01;
    let no_xlf = write_kernel(vmm.dir.path(), "no-xlf.bzImage", &no_xlf);
    assert_kernel_refused(
        c.put_boot_source(boot_source(&no_xlf, "hello")).await,
        "XLF_KERNEL_64",
    );
    // Boot protocol 2.11: no xloadflags at all.
    let mut old = b.clone();
    old[0x206..0x208].copy_from_slice(&0x020bu16.to_le_bytes());
    let old = write_kernel(vmm.dir.path(), "old.bzImage", &old);
    assert_kernel_refused(c.put_boot_source(boot_source(&old, "hello")).await, "2.12");
    assert_still_boots(&mut c).await;
}

#[tokio::test]
async fn a_bzimage_broken_after_put_boot_source_is_refused_at_start() {
    let b = bzimage_bytes();
    let vmm = spawn_vmm();
    let mut c = connect(&vmm.socket).await;
    c.put_machine_config(pb::MachineConfig {
        vcpu_count: 1,
        mem_size_mib: 32,
    })
    .await
    .unwrap();
    let path = write_kernel(vmm.dir.path(), "guest.bzImage", &b);
    c.put_boot_source(boot_source(&path, "hello"))
        .await
        .expect("a good bzImage");
    // The file loses its 64-bit entry flag between PutBootSource and Start.
    let mut no_xlf = b.clone();
    no_xlf[0x236] &= !0x01;
    std::fs::write(&path, &no_xlf).unwrap();
    assert_kernel_refused(c.start(pb::StartRequest {}).await, "XLF_KERNEL_64");
    // Then it is truncated.
    std::fs::write(&path, &b[..b.len() / 2]).unwrap();
    assert_kernel_refused(c.start(pb::StartRequest {}).await, "truncated");
    assert_still_boots(&mut c).await;
}

#[tokio::test]
async fn memory_below_the_bzimages_init_size_is_refused_naming_mem_size_mib() {
    let b = bzimage_bytes();
    let vmm = spawn_vmm();
    let mut c = connect(&vmm.socket).await;
    // 1 MiB: the kernel goes at 1 MiB and needs init_size bytes from there.
    c.put_machine_config(pb::MachineConfig {
        vcpu_count: 1,
        mem_size_mib: 1,
    })
    .await
    .unwrap();
    c.put_boot_source(boot_source(&guest_bzimage(), "hello"))
        .await
        .unwrap();
    let s = c.start(pb::StartRequest {}).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().starts_with("machine_config.mem_size_mib"),
        "{}",
        s.message()
    );
    let needed = 0x10_0000 + u64::from(u32_at(&b, 0x260));
    assert!(s.message().contains(&format!("{needed:#x}")), "{}", s.message());
    c.put_machine_config(pb::MachineConfig {
        vcpu_count: 1,
        mem_size_mib: 32,
    })
    .await
    .unwrap();
    assert_still_boots(&mut c).await;
}
