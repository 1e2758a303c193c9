//! The agent as the guest's init (PID 1): the kernel filesystems, the root assembled from
//! the image's read-only disk and the VM's writable one, the hostname, the network (net.rs),
//! and at the end sync and power off.
//!
//! Everything here changes the mount namespace it runs in, so it only runs as init (in a
//! VM, or as PID 1 of the new PID and mount namespaces the tests make). Mounts are made
//! by name in this namespace only: nothing is removed or created in a shared devtmpfs.

use std::ffi::CString;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::net::{self, NetConfig};

/// How the root is assembled (both disks ext4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDisks {
    /// The image: mounted read-only, the overlay's lower layer.
    pub base: PathBuf,
    /// The VM's writable disk: `upper/` and `work/` of the overlay.
    pub scratch: PathBuf,
}

/// What the init steps are given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitOptions {
    pub root: Option<RootDisks>,
    pub hostname: Option<String>,
    /// `--net`; None: `vmctl.net=` of the kernel command line, if any.
    pub network: Option<NetConfig>,
    /// `--dns`; empty: `vmctl.dns=` of the kernel command line.
    pub dns: Vec<IpAddr>,
}

/// Where the root is assembled before it becomes `/`: a tmpfs on the initial root's
/// /tmp (so that root need not be writable), outside the mounts moved into the new root,
/// and left behind with the initial root.
const STAGING: &str = "/tmp";
/// Where the agent's binary stays reachable once the root has changed.
pub const AGENT_BINARY: &str = "/run/vmctl/vmctl-agent";

/// Why an init step failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("mount {fstype} on {target}: {source}")]
    Mount {
        fstype: String,
        target: String,
        source: std::io::Error,
    },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("pivot to the assembled root: {0}")]
    Pivot(#[source] std::io::Error),
}

/// The kernel filesystems: (source, target, type, flags, data).
const KERNEL_MOUNTS: &[(&str, &str, &str, libc::c_ulong, &str)] = &[
    ("proc", "/proc", "proc", NOSUID_NODEV_NOEXEC, ""),
    ("sysfs", "/sys", "sysfs", NOSUID_NODEV_NOEXEC, ""),
    ("devtmpfs", "/dev", "devtmpfs", libc::MS_NOSUID, "mode=0755"),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620,gid=5",
    ),
    (
        "shm",
        "/dev/shm",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777",
    ),
    (
        "tmpfs",
        "/run",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0755",
    ),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", NOSUID_NODEV_NOEXEC, ""),
];
const NOSUID_NODEV_NOEXEC: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;

/// Runs the init steps. Failures of single kernel mounts are logged and skipped (the
/// guest may still be usable); a root that cannot be assembled is an error.
pub fn setup(options: &InitOptions) -> Result<(), InitError> {
    // Nothing we mount may propagate out (the tests' namespaces; a shared initial root).
    let _ = mount(None, "/", None, libc::MS_REC | libc::MS_PRIVATE, None);
    mount_kernel_filesystems();
    if let Some(root) = &options.root {
        assemble_root(root)?;
    }
    mount_or_log(
        "tmpfs",
        "/tmp",
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=1777",
    );
    if let Some(hostname) = &options.hostname {
        // SAFETY: the pointer and length describe `hostname`'s bytes.
        if unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) } < 0 {
            log!("sethostname {hostname}: {}", std::io::Error::last_os_error());
        }
    }
    setup_network(options);
    // Ctrl-Alt-Del becomes SIGINT to init instead of an immediate reboot. In a PID
    // namespace other than the first this fails (EINVAL), harmlessly.
    // SAFETY: reboot with CAD_OFF only changes what the key sequence does.
    unsafe { libc::reboot(libc::LINUX_REBOOT_CMD_CAD_OFF) };
    Ok(())
}

fn mount_kernel_filesystems() {
    for (source, target, fstype, flags, data) in KERNEL_MOUNTS {
        mount_or_log(source, target, fstype, *flags, data);
    }
    // With a devpts of its own, /dev/ptmx must be that instance's: bound over it here
    // (not replaced by a symlink, which would change a devtmpfs other namespaces share).
    if Path::new("/dev/pts/ptmx").exists() {
        let _ = mount(Some("/dev/pts/ptmx"), "/dev/ptmx", None, libc::MS_BIND, None);
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        if std::fs::symlink_metadata(link).is_err() {
            let _ = std::os::unix::fs::symlink(target, link);
        }
    }
}

fn mount_or_log(source: &str, target: &str, fstype: &str, flags: libc::c_ulong, data: &str) {
    let _ = std::fs::create_dir_all(target);
    let data = (!data.is_empty()).then_some(data);
    match mount(Some(source), target, Some(fstype), flags, data) {
        // The same filesystem is already mounted there (the kernel's devtmpfs automount;
        // the host's sysfs in the tests' namespaces): keep it.
        Err(InitError::Mount { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => log!("{e}"),
        Ok(()) => {}
    }
}

/// The image's disk read-only, the VM's disk writable, an overlay of both as the new
/// root; /proc, /sys, /dev and /run moved into it; then it becomes `/`.
fn assemble_root(root: &RootDisks) -> Result<(), InitError> {
    let staging = Path::new(STAGING);
    let (base, scratch, merged) = (
        staging.join("base"),
        staging.join("scratch"),
        staging.join("root"),
    );
    mkdir(staging)?;
    mount(
        Some("tmpfs"),
        STAGING,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("mode=0700"),
    )?;
    for dir in [&base, &scratch, &merged] {
        mkdir(dir)?;
    }
    let disk = |p: &Path| p.to_string_lossy().into_owned();
    mount(
        Some(&disk(&root.base)),
        &disk(&base),
        Some("ext4"),
        libc::MS_RDONLY,
        None,
    )?;
    mount(Some(&disk(&root.scratch)), &disk(&scratch), Some("ext4"), 0, None)?;
    let (upper, work) = (scratch.join("upper"), scratch.join("work"));
    mkdir(&upper)?;
    mkdir(&work)?;
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.display(),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &disk(&merged),
        Some("overlay"),
        0,
        Some(&options),
    )?;

    // The agent's binary comes from the initial root, which goes away: bound into /run
    // (moved along below), so it can still be run (`exec` into the guest, a re-exec).
    let _ = std::fs::create_dir_all("/run/vmctl");
    if std::fs::write(AGENT_BINARY, b"").is_ok() {
        let _ = mount(Some("/proc/self/exe"), AGENT_BINARY, None, libc::MS_BIND, None);
    }
    for target in ["/dev", "/proc", "/sys", "/run"] {
        let inside = merged.join(&target[1..]);
        mkdir(&inside)?;
        mount(Some(target), &disk(&inside), None, libc::MS_MOVE, None)?;
    }
    pivot(&merged)
}

/// Makes `new_root` the root: pivot_root, or, from an initramfs (which cannot be
/// pivoted), a move of the new root over `/` and a chroot.
fn pivot(new_root: &Path) -> Result<(), InitError> {
    let path = cstring(new_root);
    // SAFETY: `path` is NUL-terminated.
    if unsafe { libc::chdir(path.as_ptr()) } < 0 {
        return Err(InitError::Pivot(std::io::Error::last_os_error()));
    }
    // pivot_root(".", "."): the old root ends up on top of the new one, then is detached.
    // SAFETY: the arguments are NUL-terminated strings.
    let pivoted = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } == 0;
    if pivoted {
        // SAFETY: the argument is NUL-terminated.
        if unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) } < 0 {
            return Err(InitError::Pivot(std::io::Error::last_os_error()));
        }
    } else {
        mount(Some("."), "/", None, libc::MS_MOVE, None).map_err(|e| match e {
            InitError::Mount { source, .. } => InitError::Pivot(source),
            other => other,
        })?;
        // SAFETY: the argument is NUL-terminated.
        if unsafe { libc::chroot(c".".as_ptr()) } < 0 {
            return Err(InitError::Pivot(std::io::Error::last_os_error()));
        }
    }
    // SAFETY: the argument is NUL-terminated.
    if unsafe { libc::chdir(c"/".as_ptr()) } < 0 {
        return Err(InitError::Pivot(std::io::Error::last_os_error()));
    }
    Ok(())
}

fn mkdir(path: &Path) -> Result<(), InitError> {
    std::fs::create_dir_all(path).map_err(|source| InitError::Io {
        action: "mkdir",
        path: path.to_owned(),
        source,
    })
}

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), InitError> {
    let c = |s: &str| CString::new(s).unwrap_or_default();
    let (source_c, target_c) = (source.map(c), c(target));
    let (fstype_c, data_c) = (fstype.map(c), data.map(c));
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            ptr(&source_c),
            target_c.as_ptr(),
            ptr(&fstype_c),
            flags,
            ptr(&data_c).cast(),
        )
    };
    if rc < 0 {
        return Err(InitError::Mount {
            fstype: fstype.unwrap_or(source.unwrap_or("bind")).to_owned(),
            target: target.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// `lo`, the NIC and the root's /etc/resolv.conf, before anything is served or run. A
/// failure is logged on the console and the agent serves on: the workload then runs
/// without a network, exec still works to look into why, and the host reads the reason
/// in the console (an unreachable VM says more there than one that never booted).
fn setup_network(options: &InitOptions) {
    let (mut network, mut dns) = (options.network, options.dns.clone());
    if network.is_none() || dns.is_empty() {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        match net::from_cmdline(&cmdline) {
            Ok((from_kernel, servers)) => {
                network = network.or(from_kernel);
                if dns.is_empty() {
                    dns = servers;
                }
            }
            // The command line's own settings (if any) still apply.
            Err(e) => log!("network: the kernel command line's {e}; ignored"),
        }
    }
    let configured = match net::configure(network.as_ref()) {
        Ok(configured) => configured,
        Err(e) => {
            log!("{e}; the workload runs without a network");
            return;
        }
    };
    let mut line = configured.map(|c| format!("network: {c}"));
    if !dns.is_empty() {
        // Only on the assembled root (its writable layer): never the file of a root that
        // is not the VM's own (the agent as init in a test's namespaces).
        let servers = dns.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        let done = if options.root.is_none() {
            "no root assembled: /etc/resolv.conf left alone".to_owned()
        } else {
            match net::write_resolv_conf(Path::new("/"), &dns) {
                Ok(()) => format!("nameservers {servers}"),
                Err(e) => format!("cannot write /etc/resolv.conf (nameservers {servers}): {e}"),
            }
        };
        line = Some(match line {
            Some(l) => format!("{l}; {done}"),
            None => format!("network: {done}"),
        });
    }
    if let Some(line) = line {
        log!("{line}");
    }
}

/// Flushes every filesystem, then powers off (or reboots). Only as PID 1: anywhere else
/// (a mistaken `--init` on a host) the caller exits instead. In a PID namespace other
/// than the first, the kernel ends the namespace instead of the machine.
pub fn power_off(reboot: bool) {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        return;
    }
    let command = if reboot {
        libc::LINUX_REBOOT_CMD_RESTART
    } else {
        libc::LINUX_REBOOT_CMD_POWER_OFF
    };
    // SAFETY: reboot ends the machine (or this PID namespace); nothing is left to clean.
    unsafe { libc::reboot(command) };
}
