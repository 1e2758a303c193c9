//! The agent as a program: PID 1 of new PID, mount and UTS namespaces on the host,
//! serving on a unix socket, driven by the generated client.

mod common;

use std::time::Duration;

use common::{Agent, collect, command, input};
use vmctl_guest_agent::pb::exited::Status as ExitStatus;
use vmctl_guest_agent::pb::{self, exec_input::Input, exec_output::Output};

#[tokio::test]
async fn info_reports_version_boot_time_and_hostname() {
    let mut agent = Agent::start().await;
    let info = agent
        .client
        .get_info(pb::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.agent_start_boottime_ns > 0);
    assert_eq!(info.workload_exec_boottime_ns, 0);
    assert_eq!(info.hostname, "agent-test");
    assert!(info.init, "PID 1 does init's work");
    // Init's mounts, in the namespace only: a devpts of its own, fresh /tmp and cgroup2.
    let mounts = agent.sh("cat /proc/self/mounts").await.stdout();
    for (target, fstype) in [
        ("/proc", "proc"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/tmp", "tmpfs"),
        ("/run", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ] {
        assert!(
            mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(target) && l.split(' ').nth(2) == Some(fstype)),
            "{target} ({fstype}) not mounted:\n{mounts}"
        );
    }
}

#[tokio::test]
async fn env_cwd_and_user() {
    let mut agent = Agent::start().await;
    let mut start = command(&[
        "sh",
        "-c",
        r#"echo "$A|$B|$(pwd)|$(id -u)|$(id -g)|$HOME|${PATH:+path}""#,
    ]);
    start.image_env = vec!["A=image".into(), "B=image".into()];
    start.env = vec!["B=caller".into()];
    start.cwd = "/usr".into();
    start.user = "65534".into();
    let result = agent.run(start).await;
    assert_eq!(
        result.status(),
        ExitStatus::Code(0),
        "stderr: {}",
        result.stderr()
    );
    let nobody_gid = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&"65534")).then(|| f[3].to_owned())
        })
        .unwrap_or_else(|| "0".to_owned());
    let home = if nobody_gid == "0" { "/" } else { "/nonexistent" };
    let stdout = result.stdout();
    let fields: Vec<&str> = stdout.trim().split('|').collect();
    assert_eq!(
        &fields[..5],
        &["image", "caller", "/usr", "65534", nobody_gid.as_str()]
    );
    assert!(fields[5] == home || !fields[5].is_empty(), "HOME: {stdout}");
    assert_eq!(fields[6], "path", "a default PATH");

    // A name from /etc/passwd, and a user that does not exist (the caller's mistake).
    let mut start = command(&["id", "-un"]);
    start.user = "root".into();
    assert_eq!(agent.run(start).await.stdout().trim(), "root");
    let mut start = command(&["true"]);
    start.user = "no-such-user".into();
    let Err(err) = agent.exec(start).await else {
        panic!("an unknown user is refused");
    };
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("no-such-user"), "{}", err.message());
}

#[tokio::test]
async fn exit_codes_and_death_by_signal() {
    let mut agent = Agent::start().await;
    assert_eq!(agent.sh("exit 0").await.status(), ExitStatus::Code(0));
    assert_eq!(agent.sh("exit 7").await.status(), ExitStatus::Code(7));
    let killed = agent.sh("kill -KILL $$").await;
    assert_eq!(killed.status(), ExitStatus::Signal("SIGKILL".into()));
    assert!(!killed.exited.unwrap().oom, "not an OOM kill");

    // A signal sent through the session, and through Signal by pid.
    let (inputs, mut outputs) = agent.exec(command(&["sleep", "30"])).await.unwrap();
    let Some(Output::Started(started)) = outputs.message().await.unwrap().unwrap().output else {
        panic!("Started first");
    };
    agent
        .client
        .signal(pb::SignalRequest {
            target: Some(pb::signal_request::Target::Pid(started.pid)),
            signal: "TERM".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        collect(outputs).await.status(),
        ExitStatus::Signal("SIGTERM".into())
    );
    drop(inputs);
    let (inputs, outputs) = agent.exec(command(&["sleep", "30"])).await.unwrap();
    inputs.send(input(Input::Signal("SIGINT".into()))).await.unwrap();
    assert_eq!(
        collect(outputs).await.status(),
        ExitStatus::Signal("SIGINT".into())
    );
    let unknown = agent
        .client
        .signal(pb::SignalRequest {
            target: Some(pb::signal_request::Target::Pid(started.pid)),
            signal: "TERM".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        unknown.code(),
        tonic::Code::NotFound,
        "a reaped pid is not signalled"
    );
}

#[tokio::test]
async fn orphaned_grandchild_is_reaped() {
    let mut agent = Agent::start().await;
    // The shell exits at once; its background child is orphaned to the agent (PID 1).
    let result = agent.sh("sleep 0.3 >/dev/null 2>&1 & echo $!").await;
    assert_eq!(result.status(), ExitStatus::Code(0));
    let orphan: u32 = result.stdout().trim().parse().unwrap();
    let script = format!(
        "for i in $(seq 100); do [ -e /proc/{orphan} ] || break; sleep 0.05; done; \
         [ -e /proc/{orphan} ] && cat /proc/{orphan}/status; \
         grep -l '^State:.*Z' /proc/[0-9]*/status; true"
    );
    let check = agent.sh(&script).await;
    assert_eq!(check.stdout(), "", "a zombie is left in the namespace");
}

#[tokio::test]
async fn stdout_and_stderr_are_kept_apart_and_in_order() {
    let mut agent = Agent::start().await;
    let result = agent
        .sh("i=0; while [ $i -lt 500 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done")
        .await;
    let expected = |prefix: &str| (0..500).map(|i| format!("{prefix}{i}\n")).collect::<String>();
    assert_eq!(result.stdout(), expected("out"));
    assert_eq!(result.stderr(), expected("err"));
    assert_eq!(result.status(), ExitStatus::Code(0));
}

#[tokio::test]
async fn large_output_is_streamed_with_bounded_memory() {
    const SIZE: usize = 64 << 20;
    let mut agent = Agent::start().await;
    let host_pid = agent.host_pid();
    let rss = |field: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    let before = rss("VmRSS:");
    let (_inputs, mut outputs) = agent
        .exec(command(&["head", "-c", &SIZE.to_string(), "/dev/zero"]))
        .await
        .unwrap();
    // A slow reader first: the command must wait, not the agent buffer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut bytes, mut largest, mut exited) = (0usize, 0usize, None);
    while let Some(message) = outputs.message().await.unwrap() {
        match message.output.unwrap() {
            Output::Stdout(data) => {
                bytes += data.len();
                largest = largest.max(data.len());
            }
            Output::Exited(e) => exited = e.status,
            _ => {}
        }
    }
    assert_eq!(bytes, SIZE);
    assert_eq!(exited, Some(ExitStatus::Code(0)));
    assert!(largest <= 32 * 1024, "chunks are bounded: {largest}");
    let peak = rss("VmHWM:");
    assert!(
        peak < before + 16 * 1024,
        "the agent's peak RSS grew from {before} kB to {peak} kB for a 64 MiB output"
    );
}

#[tokio::test]
async fn sigterm_is_forwarded_to_the_workload() {
    let mut agent = Agent::start().await;
    let mut start = command(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
    ]);
    start.workload = true;
    let (inputs, mut outputs) = agent.exec(start).await.unwrap();
    let mut stdout = String::new();
    while !stdout.contains("ready") {
        match outputs.message().await.unwrap().unwrap().output.unwrap() {
            Output::Stdout(data) => stdout.push_str(&String::from_utf8_lossy(&data)),
            Output::Started(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let info = agent
        .client
        .get_info(pb::GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.workload_exec_boottime_ns >= info.agent_start_boottime_ns);
    // A second workload is refused while this one runs.
    let mut second = command(&["true"]);
    second.workload = true;
    assert_eq!(
        agent.exec(second).await.err().unwrap().code(),
        tonic::Code::FailedPrecondition
    );

    // What the VMM does on a stop: SIGTERM to the guest's init.
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(agent.host_pid(), libc::SIGTERM) }, 0);
    let rest = tokio::time::timeout(Duration::from_secs(10), collect(outputs))
        .await
        .expect("the workload did not end after the agent's SIGTERM");
    assert!(rest.stdout().contains("got-term"), "{}", rest.stdout());
    assert_eq!(rest.status(), ExitStatus::Code(3));
    // The workload has ended: init powers off (here: its PID namespace ends).
    drop(inputs);
    assert!(
        agent.wait_exit(Duration::from_secs(10)).is_some(),
        "the agent did not power off after its workload ended"
    );
}

#[tokio::test]
async fn exec_on_a_pty_sees_a_terminal_and_its_resize() {
    let mut agent = Agent::start().await;
    let mut start = command(&[
        "sh",
        "-c",
        "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo size=$(stty size); read line; echo size=$(stty size)",
    ]);
    start.tty = true;
    start.window = Some(pb::WindowSize { rows: 24, cols: 80 });
    let (inputs, mut outputs) = agent.exec(start).await.unwrap();
    let mut seen = String::new();
    while !seen.contains("size=24 80") {
        match outputs.message().await.unwrap().unwrap().output.unwrap() {
            Output::Stdout(data) => seen.push_str(&String::from_utf8_lossy(&data)),
            Output::Started(_) => {}
            other => panic!("unexpected {other:?} after {seen:?}"),
        }
    }
    assert!(seen.contains("is-a-tty"), "{seen}");
    inputs
        .send(input(Input::Resize(pb::WindowSize { rows: 40, cols: 100 })))
        .await
        .unwrap();
    inputs.send(input(Input::Stdin(b"go\n".to_vec()))).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(10), collect(outputs))
        .await
        .expect("the command on the pty did not end");
    assert!(rest.stdout().contains("size=40 100"), "{}", rest.stdout());
    assert!(rest.stderr.is_empty(), "one stream on a tty");
    assert_eq!(rest.status(), ExitStatus::Code(0));
}

#[tokio::test]
async fn stdin_is_forwarded_and_closed() {
    let mut agent = Agent::start().await;
    let mut start = command(&["sh", "-c", "wc -c"]);
    start.stdin = true;
    let (inputs, outputs) = agent.exec(start).await.unwrap();
    for _ in 0..100 {
        inputs.send(input(Input::Stdin(vec![b'x'; 1000]))).await.unwrap();
    }
    inputs
        .send(input(Input::CloseStdin(pb::CloseStdin {})))
        .await
        .unwrap();
    let result = collect(outputs).await;
    assert_eq!(result.stdout().trim(), "100000");
}

#[tokio::test]
async fn missing_or_unrunnable_commands_exit_like_a_shell() {
    let mut agent = Agent::start().await;
    let missing = agent.run(command(&["no-such-command-xyz", "arg"])).await;
    assert_eq!(missing.status(), ExitStatus::Code(127));
    assert!(missing.pid.is_none(), "nothing was started");
    assert!(
        missing.stderr().contains("no-such-command-xyz"),
        "{}",
        missing.stderr()
    );
    assert!(missing.exited.unwrap().message.contains("no-such-command-xyz"));
    let path = agent.run(command(&["/no/such/path"])).await;
    assert_eq!(path.status(), ExitStatus::Code(127));
    let not_executable = agent.run(command(&["/etc/passwd"])).await;
    assert_eq!(not_executable.status(), ExitStatus::Code(126));
    assert!(not_executable.stderr().contains("/etc/passwd"));
}

#[tokio::test]
async fn several_execs_run_at_once() {
    let mut agent = Agent::start().await;
    // Five sessions, all started, wait for a file that only a sixth one makes.
    let mut waiting = Vec::new();
    for i in 0..5 {
        let script = format!("while [ ! -e /tmp/go ]; do sleep 0.02; done; echo {i}");
        let (inputs, mut outputs) = agent.exec(command(&["sh", "-c", &script])).await.unwrap();
        let first = outputs.message().await.unwrap().unwrap().output.unwrap();
        assert!(matches!(first, Output::Started(_)), "{first:?}");
        waiting.push((i, inputs, outputs));
    }
    assert_eq!(agent.sh("touch /tmp/go").await.status(), ExitStatus::Code(0));
    for (i, _inputs, outputs) in waiting {
        let result = tokio::time::timeout(Duration::from_secs(10), collect(outputs))
            .await
            .expect("a waiting session did not finish");
        assert_eq!(result.stdout(), format!("{i}\n"));
    }
}

#[tokio::test]
async fn copy_in_and_out_keep_content_mode_and_mtime() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut agent = Agent::start().await;
    // A tree on the host: files of several sizes, modes, a subdirectory, a symlink.
    let host = agent.dir.path().join("src");
    std::fs::create_dir_all(host.join("sub/deeper")).unwrap();
    let mut seed = 0x1234_5678u32;
    let mut bytes = |n: usize| {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect::<Vec<u8>>()
    };
    std::fs::write(host.join("small.txt"), b"hello\n").unwrap();
    std::fs::write(host.join("sub/big.bin"), bytes(3 << 20)).unwrap();
    std::fs::write(host.join("sub/deeper/run.sh"), b"#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(
        host.join("sub/deeper/run.sh"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("../small.txt", host.join("sub/link")).unwrap();
    std::os::unix::fs::chown(host.join("small.txt"), Some(1234), Some(5678)).unwrap();
    let mut archive = tar::Builder::new(Vec::new());
    archive.follow_symlinks(false);
    archive.append_dir_all(".", &host).unwrap();
    let archive = archive.into_inner().unwrap();

    // In, in chunks: the destination is the namespace's own /tmp.
    let requests: Vec<pb::CopyInRequest> = archive
        .chunks(50_000)
        .enumerate()
        .map(|(i, chunk)| pb::CopyInRequest {
            destination: if i == 0 { "/tmp/ws".into() } else { String::new() },
            tar: chunk.to_vec(),
        })
        .collect();
    let unpacked = agent
        .client
        .copy_in(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    assert!(unpacked.entries >= 6, "{unpacked:?}");
    let guest = agent
        .sh("cd /tmp/ws && sha256sum small.txt sub/big.bin sub/deeper/run.sh && ./sub/deeper/run.sh && readlink sub/link && stat -c %u:%g small.txt")
        .await;
    let host_sums = std::process::Command::new("sha256sum")
        .args(["small.txt", "sub/big.bin", "sub/deeper/run.sh"])
        .current_dir(&host)
        .output()
        .unwrap();
    assert_eq!(
        guest.stdout(),
        format!(
            "{}ran\n../small.txt\n1234:5678\n",
            String::from_utf8_lossy(&host_sums.stdout)
        )
    );

    // Out again, and compared with the original: content, mode, mtime, the link.
    let mut stream = agent
        .client
        .copy_out(pb::CopyOutRequest {
            path: "/tmp/ws".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut tarball = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        assert!(chunk.data.len() <= 64 * 1024);
        tarball.extend(chunk.data);
    }
    let out = agent.dir.path().join("out");
    let mut unpack = tar::Archive::new(&tarball[..]);
    unpack.set_preserve_permissions(true);
    unpack.set_preserve_mtime(true);
    unpack.set_preserve_ownerships(true);
    unpack.unpack(&out).unwrap();
    for file in ["small.txt", "sub/big.bin", "sub/deeper/run.sh"] {
        let (a, b) = (host.join(file), out.join("ws").join(file));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{file}");
        let (ma, mb) = (std::fs::metadata(&a).unwrap(), std::fs::metadata(&b).unwrap());
        assert_eq!(ma.permissions().mode(), mb.permissions().mode(), "{file}");
        assert_eq!((ma.uid(), ma.gid()), (mb.uid(), mb.gid()), "{file}");
        assert_eq!(
            ma.modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            mb.modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            "{file}"
        );
    }
    assert_eq!(
        std::fs::read_link(out.join("ws/sub/link")).unwrap(),
        std::path::PathBuf::from("../small.txt")
    );

    let missing = agent
        .client
        .copy_out(pb::CopyOutRequest {
            path: "/tmp/nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn copy_in_refuses_an_entry_that_escapes() {
    let mut agent = Agent::start().await;
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    // The tar crate refuses to write '..' itself: the name is written raw, as an
    // attacker's archive would have it.
    let name = b"../escaped";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_cksum();
    let mut archive = tar::Builder::new(Vec::new());
    archive.append(&header, &b"evil"[..]).unwrap();
    let archive = archive.into_inner().unwrap();
    let refused = agent
        .client
        .copy_in(tokio_stream::iter([pb::CopyInRequest {
            destination: "/tmp/ws".into(),
            tar: archive,
        }]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().contains("../escaped"), "{}", refused.message());
    assert_eq!(
        agent.sh("test -e /tmp/escaped").await.status(),
        ExitStatus::Code(1)
    );
}

#[tokio::test]
async fn shutdown_ends_the_agent() {
    let mut agent = Agent::start().await;
    agent
        .client
        .shutdown(pb::ShutdownRequest {
            action: pb::shutdown_request::Action::PowerOff as i32,
        })
        .await
        .unwrap();
    assert!(agent.wait_exit(Duration::from_secs(10)).is_some());
}

#[tokio::test]
async fn an_exec_whose_client_goes_away_is_killed_with_its_children() {
    let mut agent = Agent::start().await;
    let (inputs, mut outputs) = agent
        .exec(command(&["sh", "-c", "sleep 30 & echo $$ $!; wait"]))
        .await
        .unwrap();
    let mut pids = String::new();
    while !pids.ends_with('\n') {
        if let Output::Stdout(data) = outputs.message().await.unwrap().unwrap().output.unwrap() {
            pids.push_str(&String::from_utf8_lossy(&data));
        }
    }
    drop((inputs, outputs));
    let (shell, child) = pids.trim().split_once(' ').unwrap();
    let script = format!(
        "for i in $(seq 100); do [ -e /proc/{shell} ] || [ -e /proc/{child} ] || exit 0; sleep 0.05; done; exit 1"
    );
    assert_eq!(
        agent.sh(&script).await.status(),
        ExitStatus::Code(0),
        "still running"
    );
}

#[tokio::test]
async fn a_signal_is_not_held_up_by_unread_stdin() {
    let mut agent = Agent::start().await;
    let mut start = command(&["sleep", "30"]);
    start.stdin = true;
    let (inputs, outputs) = agent.exec(start).await.unwrap();
    // More than the pipe holds: the command never reads it.
    for _ in 0..3 {
        inputs
            .send(input(Input::Stdin(vec![b'x'; 100_000])))
            .await
            .unwrap();
    }
    inputs.send(input(Input::Signal("TERM".into()))).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), collect(outputs))
        .await
        .expect("the signal waited behind stdin");
    assert_eq!(result.status(), ExitStatus::Signal("SIGTERM".into()));
}

#[tokio::test]
async fn serves_on_vsock_too() {
    // No vsock loopback transport here: the proof is that the port is taken.
    let port = 20_000 + (std::process::id() % 40_000);
    let mut agent = Agent::start_with(&["--listen", &format!("vsock:{port}")]).await;
    assert_eq!(agent.sh("true").await.status(), ExitStatus::Code(0));
    // SAFETY: a new socket, closed below; the address is a valid sockaddr_vm.
    let bind = unsafe {
        let fd = libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(
            fd >= 0,
            "no vsock on this host: {}",
            std::io::Error::last_os_error()
        );
        let mut addr: libc::sockaddr_vm = std::mem::zeroed();
        addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
        addr.svm_cid = libc::VMADDR_CID_ANY;
        addr.svm_port = port;
        let rc = libc::bind(
            fd,
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t,
        );
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        (rc, error)
    };
    assert_eq!(
        bind.0, -1,
        "vsock port {port} is free: the agent does not listen on it"
    );
    assert_eq!(bind.1.raw_os_error(), Some(libc::EADDRINUSE), "{}", bind.1);
}

#[tokio::test]
async fn the_workload_outlives_its_client_and_a_new_one_attaches_for_the_rest() {
    let mut agent = Agent::start().await;
    let attach = pb::ExecStart {
        workload: true,
        attach: true,
        ..Default::default()
    };
    // Nothing to attach to yet; only the workload can be attached to.
    assert_eq!(
        agent.exec(attach.clone()).await.err().unwrap().code(),
        tonic::Code::FailedPrecondition
    );
    let not_workload = pb::ExecStart {
        attach: true,
        ..Default::default()
    };
    assert_eq!(
        agent.exec(not_workload).await.err().unwrap().code(),
        tonic::Code::InvalidArgument
    );

    // Past USR1 it prints ~100 KiB (more than a pipe holds) while nobody listens.
    let mut start = command(&[
        "sh",
        "-c",
        "trap 'go=1' USR1; echo first; while [ -z \"$go\" ]; do sleep 0.05; done; \
         i=0; while [ $i -lt 10000 ]; do echo line-$i; i=$((i+1)); done; echo last >&2; exit 5",
    ]);
    start.workload = true;
    let (inputs, mut outputs) = agent.exec(start).await.unwrap();
    let mut stdout = String::new();
    let mut pid = 0;
    while !stdout.contains("first") {
        match outputs.message().await.unwrap().unwrap().output.unwrap() {
            Output::Stdout(data) => stdout.push_str(&String::from_utf8_lossy(&data)),
            Output::Started(started) => pid = started.pid,
            other => panic!("unexpected {other:?}"),
        }
    }
    // The orchestrator goes away (a restart); the workload runs on and prints.
    drop((inputs, outputs));
    agent
        .client
        .signal(pb::SignalRequest {
            target: Some(pb::signal_request::Target::Workload(true)),
            signal: "USR1".to_owned(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A new client attaches: the pid, then everything printed since, in order, and the exit.
    let (inputs, outputs) = agent.exec(attach).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(20), collect(outputs))
        .await
        .expect("the attached client did not get the workload's end");
    assert_eq!(rest.pid, Some(pid));
    let expected: String = (0..10000).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(rest.stdout(), expected, "nothing lost or repeated while detached");
    assert_eq!(rest.stderr(), "last\n");
    assert_eq!(rest.status(), ExitStatus::Code(5));
    // The exit was read: init powers off.
    drop(inputs);
    assert!(
        agent.wait_exit(Duration::from_secs(10)).is_some(),
        "the agent did not power off after its workload ended"
    );
}

#[tokio::test]
async fn a_client_attaching_takes_over_from_one_that_stopped_reading() {
    let mut agent = Agent::start().await;
    let mut start = command(&[
        "sh",
        "-c",
        // Far more than the stuck call's queues and windows hold.
        "echo first; seq 1 2000000; exit 4",
    ]);
    start.workload = true;
    // The first client stops reading but keeps its call open (a half-dead connection).
    let (stuck_inputs, mut stuck) = agent.exec(start).await.unwrap();
    while !matches!(
        stuck.message().await.unwrap().unwrap().output.unwrap(),
        Output::Stdout(_)
    ) {}
    tokio::time::sleep(Duration::from_millis(500)).await;

    let attach = pb::ExecStart {
        workload: true,
        attach: true,
        ..Default::default()
    };
    let (inputs, outputs) = agent.exec(attach).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(20), collect(outputs))
        .await
        .expect("the new client did not get the workload's end: the stuck one held it");
    assert_eq!(rest.status(), ExitStatus::Code(4));
    // What was queued to the stuck client is its; the rest, in order, to the end, is the
    // new one's (its first chunk may start inside a line: that fragment is skipped).
    let text = rest.stdout();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let first: usize = lines[0].parse().unwrap();
    assert!(first < 2_000_000, "the new client got nothing but the end");
    let expected: Vec<String> = (first..=2_000_000).map(|i| i.to_string()).collect();
    assert!(
        lines == expected,
        "a gap or a repeat after the new client's first line ({first})"
    );
    drop((stuck_inputs, stuck, inputs));
    assert!(agent.wait_exit(Duration::from_secs(10)).is_some());
}
