//! Boots each basic test guest through real /dev/kvm and checks what it reports.

mod common;

use common::run_guest;
use vmctl_vmm_api::v1 as pb;

#[tokio::test]
async fn hello_prints_on_the_serial_console_and_passes() {
    let run = run_guest("hello", "", 1, 32).await;
    run.assert_passed("hello");
    assert!(
        run.console.contains("hello from the vmctl test guest\n"),
        "{}",
        run.console
    );
    assert!(run.metrics.boot_done_us > 0, "{:?}", run.metrics);
    assert!(run.metrics.start_to_run_us > 0, "{:?}", run.metrics);
    assert!(
        run.metrics.vm_exits.get("io_out").copied().unwrap_or(0) > 0,
        "{:?}",
        run.metrics
    );
    assert_eq!(run.metrics.console_bytes_out, run.console.len() as u64);
    assert_eq!(run.reason(), pb::ExitReason::GuestExit);
}

#[tokio::test]
async fn boot_params_e820_and_cmdline_match_the_configuration() {
    let run = run_guest("boot_params", "extra.word=1", 1, 64).await;
    run.assert_passed("boot_params");
    // RAM from 0 to the EBDA (0x9fc00) plus 1 MiB..64 MiB.
    let expected = 0x9fc00 + (64u64 << 20) - 0x10_0000;
    assert_eq!(
        run.fact("e820_ram_bytes"),
        Some(expected.to_string().as_str()),
        "{}",
        run.console
    );
    assert_eq!(run.fact("e820_entries"), Some("2"));
    assert_eq!(run.fact("e820_ram_top"), Some("0x4000000"));
    assert_eq!(run.fact("boot_params"), Some("0x7000"));
    assert_eq!(run.fact("cmd_line_ptr"), Some("0x20000"));
    assert_eq!(
        run.fact("cmdline"),
        Some("console=ttyS0 vmctl.test=boot_params extra.word=1")
    );
}

#[tokio::test]
async fn exit_port_reports_the_guests_code() {
    let run = run_guest("exit_code", "vmctl.exit=42", 1, 32).await;
    assert_eq!(run.reason(), pb::ExitReason::GuestExit, "{:?}", run.state);
    assert_eq!(run.state.exit_code, 42);
    assert_eq!(run.fact("exit"), Some("42"));
    assert!(run.metrics.boot_done_us > 0);
}

#[tokio::test]
async fn unknown_test_name_exits_2() {
    let run = run_guest("no_such_test", "", 1, 32).await;
    assert_eq!(
        (run.reason(), run.state.exit_code),
        (pb::ExitReason::GuestExit, 2)
    );
    assert!(
        run.console.contains("unknown test no_such_test"),
        "{}",
        run.console
    );
}

#[tokio::test]
async fn i8042_reset_ends_the_vm_with_reason_reset() {
    let run = run_guest("reset", "", 1, 32).await;
    assert_eq!(
        run.reason(),
        pb::ExitReason::Reset,
        "{:?}\n{}",
        run.state,
        run.console
    );
    assert!(
        run.state.exit_detail.contains("i8042"),
        "{}",
        run.state.exit_detail
    );
}

#[tokio::test]
async fn serial_interrupt_is_delivered_through_the_ioapic_to_the_idt() {
    let run = run_guest("irq_serial", "", 1, 32).await;
    run.assert_passed("irq_serial");
    assert_eq!(run.fact("irq_vector"), Some("0x40"));
}

#[tokio::test]
async fn int3_is_a_kvm_error_under_pvm_and_an_exception_otherwise() {
    let run = run_guest("int3", "", 1, 32).await;
    if std::path::Path::new("/sys/module/kvm_pvm").is_dir() {
        assert_eq!(
            run.reason(),
            pb::ExitReason::KvmError,
            "{:?}\n{}",
            run.state,
            run.console
        );
        assert!(
            run.state.exit_detail.contains("KVM internal error"),
            "{}",
            run.state.exit_detail
        );
        assert!(
            run.state.exit_detail.contains("emulation failure"),
            "{}",
            run.state.exit_detail
        );
        assert!(
            run.state.exit_detail.contains("rip=0x"),
            "{}",
            run.state.exit_detail
        );
        assert!(
            run.metrics.vm_exits.contains_key("internal_error"),
            "{:?}",
            run.metrics
        );
    } else {
        assert_eq!(
            (run.reason(), run.state.exit_code),
            (pb::ExitReason::GuestExit, 3)
        );
        assert!(run.console.contains("exception vector=3"), "{}", run.console);
    }
}

#[tokio::test]
async fn two_vcpus_both_reach_guest_code() {
    let run = run_guest("smp", "", 2, 32).await;
    assert_eq!(run.fact("mp_cpus"), Some("2"), "{}\n{:?}", run.console, run.state);
    run.assert_passed("smp");
    assert_eq!(run.fact("cpus_in_guest_code"), Some("2"));
}
