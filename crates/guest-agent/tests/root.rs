//! The root as init assembles it in a VM: the image's disk read-only, the VM's disk
//! writable, an overlay of both pivoted to, the kernel filesystems moved along. Here the
//! disks are ext4 images on loop devices, and the agent is PID 1 of new namespaces.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Agent, command};
use vmctl_guest_agent::pb::exited::Status as ExitStatus;

/// A loop device over an image file, detached when dropped.
struct Loop(String);

impl Loop {
    fn attach(image: &Path, read_only: bool) -> Self {
        let mut losetup = Command::new("losetup");
        losetup.args(["--find", "--show"]);
        if read_only {
            losetup.arg("--read-only");
        }
        let output = losetup
            .arg(image)
            .output()
            .expect("losetup (util-linux) must be installed");
        assert!(
            output.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Self(String::from_utf8(output.stdout).unwrap().trim().to_owned())
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["--detach", &self.0]).status();
    }
}

fn run(program: &str, args: &[&str]) -> String {
    common::host_tool(program, "e2fsprogs", args)
}

/// A tiny image: a static busybox as every command, /etc/passwd and a marker file.
fn base_image(dir: &Path) -> PathBuf {
    let tree = dir.join("base");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", tree.join("bin/busybox")).expect("busybox-static must be installed");
    for applet in run("/bin/busybox", &["--list"]).lines() {
        let _ = std::os::unix::fs::symlink("busybox", tree.join("bin").join(applet));
    }
    // The agent under test may be linked dynamically (the static build is scripts/build's):
    // its loader and libraries go into the image too, so it can run from the new root.
    // (ldd fails on a static binary: then there is nothing to copy.)
    let ldd = Command::new("ldd").arg(common::AGENT).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    for library in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let target = tree.join(&library[1..]);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(library, target).unwrap();
    }
    std::fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(tree.join("etc/marker"), "from-the-base-image\n").unwrap();
    // As in images that use systemd-resolved: a link into a runtime dir a VM does not have.
    std::os::unix::fs::symlink(
        "../run/systemd/resolve/stub-resolv.conf",
        tree.join("etc/resolv.conf"),
    )
    .unwrap();
    let image = dir.join("base.ext4");
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-d",
            tree.to_str().unwrap(),
            image.to_str().unwrap(),
            "16M",
        ],
    );
    image
}

#[tokio::test]
async fn root_is_an_overlay_of_a_read_only_base_and_a_writable_scratch_disk() {
    let dir = tempfile::Builder::new()
        .prefix("root-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let base_image = base_image(dir.path());
    let scratch_image = dir.path().join("scratch.ext4");
    run("mkfs.ext4", &["-q", "-F", scratch_image.to_str().unwrap(), "16M"]);
    let (base, scratch) = (
        Loop::attach(&base_image, true),
        Loop::attach(&scratch_image, false),
    );

    let mut agent = Agent::start_with(&[
        "--root-base",
        &base.0,
        "--root-scratch",
        &scratch.0,
        "--dns",
        "10.77.0.1,2001:db8::53",
        "--dns",
        "1.1.1.1",
    ])
    .await;
    // The image's files, on an overlay root; the host's tree is gone.
    assert_eq!(
        agent.run(command(&["cat", "/etc/marker"])).await.stdout(),
        "from-the-base-image\n"
    );
    let mounts = agent.sh("cat /proc/self/mounts").await.stdout();
    assert!(
        mounts.lines().any(|l| l.starts_with("overlay / overlay ")),
        "{mounts}"
    );
    for target in ["/proc", "/dev", "/dev/pts", "/sys", "/run", "/tmp"] {
        assert!(
            mounts.lines().any(|l| l.split(' ').nth(1) == Some(target)),
            "{target} not mounted in the new root:\n{mounts}"
        );
    }
    assert_eq!(agent.sh("test -e /work").await.status(), ExitStatus::Code(1));
    // --dns: the root's resolv.conf, a file of the writable layer in place of the image's link.
    assert_eq!(
        agent
            .sh("test -L /etc/resolv.conf || cat /etc/resolv.conf")
            .await
            .stdout(),
        "# written by vmctl-agent\nnameserver 10.77.0.1\nnameserver 2001:db8::53\nnameserver 1.1.1.1\n"
    );
    // The agent's own binary is still there to run.
    let version = agent.run(command(&["/run/vmctl/vmctl-agent", "--version"])).await;
    assert_eq!(
        version.stdout(),
        format!("vmctl-agent {}\n", env!("CARGO_PKG_VERSION"))
    );
    // Writes land on the scratch disk.
    assert_eq!(
        agent.sh("echo written > /etc/new-file").await.status(),
        ExitStatus::Code(0)
    );

    common::shut_down(&mut agent).await;
    drop(agent);
    drop((base, scratch));
    let image = scratch_image.to_str().unwrap();
    assert_eq!(
        run("debugfs", &["-R", "cat /upper/etc/new-file", image]),
        "written\n"
    );
    let base_listing = run("debugfs", &["-R", "ls -l /etc", base_image.to_str().unwrap()]);
    assert!(!base_listing.contains("new-file"), "the base disk was written to");
    assert!(
        run("debugfs", &["-R", "cat /upper/etc/resolv.conf", image]).contains("nameserver 1.1.1.1\n"),
        "resolv.conf is in the writable layer"
    );
    let base_resolv = run(
        "debugfs",
        &["-R", "stat /etc/resolv.conf", base_image.to_str().unwrap()],
    );
    assert!(
        base_resolv.contains("Type: symlink"),
        "the image's resolv.conf is untouched: {base_resolv}"
    );
}
