//! From an `ExecStart` to a running process: the environment merged, the user resolved,
//! the program looked up in PATH (so "not found" and "not permitted" are told apart as a
//! shell does), then fork/exec with the child's own session, identity and directory.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{ExecError, WindowSize, pty};
use crate::user::{self, Identity};

/// PATH when neither the image nor the caller sets one (the OCI runtimes' default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command checked and ready to start.
#[derive(Debug)]
pub struct Prepared {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub identity: Identity,
    /// Some: on a new pty of this size.
    pub tty: Option<WindowSize>,
    /// Keep a stdin pipe open (otherwise stdin is /dev/null); a tty always has one.
    pub stdin: bool,
}

/// What the caller asked for, before checking.
pub struct Request<'a> {
    pub args: &'a [String],
    pub image_env: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a str,
    pub tty: Option<WindowSize>,
    pub stdin: bool,
}

/// Checks a request: the caller's mistakes become errors (INVALID_ARGUMENT).
pub fn prepare(request: Request<'_>, root: &Path) -> Result<Prepared, ExecError> {
    if request.args.is_empty() || request.args[0].is_empty() {
        return Err(ExecError::NoCommand);
    }
    let nul = |field: String, value: &str| {
        if value.contains('\0') {
            Err(ExecError::Nul(field))
        } else {
            Ok(())
        }
    };
    for (i, arg) in request.args.iter().enumerate() {
        nul(format!("args[{i}]"), arg)?;
    }
    for (i, entry) in request.image_env.iter().enumerate() {
        nul(format!("image_env[{i}]"), entry)?;
    }
    for (i, entry) in request.env.iter().enumerate() {
        nul(format!("env[{i}]"), entry)?;
    }
    nul("cwd".to_owned(), request.cwd)?;
    nul("user".to_owned(), request.user)?;
    let identity = user::resolve(request.user, root)?;
    let mut env: Vec<(String, String)> = Vec::new();
    for entry in request.image_env.iter().chain(request.env) {
        let (key, value) = entry
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| ExecError::BadEnv(entry.clone()))?;
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_owned(),
            None => env.push((key.to_owned(), value.to_owned())),
        }
    }
    let mut default = |key: &str, value: &str| {
        if !env.iter().any(|(k, _)| k == key) {
            env.push((key.to_owned(), value.to_owned()));
        }
    };
    default("PATH", DEFAULT_PATH);
    default("HOME", &identity.home);
    if request.tty.is_some() {
        default("TERM", "xterm");
    }
    let cwd = PathBuf::from(if request.cwd.is_empty() {
        if Path::new(&identity.home).is_dir() {
            identity.home.as_str()
        } else {
            "/"
        }
    } else {
        request.cwd
    });
    if !cwd.is_absolute() || !cwd.is_dir() {
        return Err(ExecError::BadCwd(cwd));
    }
    Ok(Prepared {
        args: request.args.to_vec(),
        env,
        cwd,
        identity,
        tty: request.tty,
        stdin: request.stdin,
    })
}

/// Where a command's program is, or why it cannot be run (as a shell would say).
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(PathBuf),
    /// Exit 127.
    NotFound,
    /// Exit 126: exists, but is a directory or not executable.
    NotPermitted(PathBuf),
}

/// Looks `name` up: as a path when it has a '/', else in each directory of `path`.
pub fn lookup(name: &str, path: &str, cwd: &Path) -> Lookup {
    let runnable = |candidate: &Path| -> Option<bool> {
        let meta = std::fs::metadata(candidate).ok()?;
        Some(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let candidate = cwd.join(name);
        return match runnable(&candidate) {
            Some(true) => Lookup::Found(candidate),
            Some(false) => Lookup::NotPermitted(candidate),
            None => Lookup::NotFound,
        };
    }
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { cwd } else { Path::new(dir) };
        let candidate = dir.join(name);
        match runnable(&candidate) {
            Some(true) => return Lookup::Found(candidate),
            Some(false) if denied.is_none() => denied = Some(candidate),
            _ => {}
        }
    }
    denied.map_or(Lookup::NotFound, Lookup::NotPermitted)
}

/// The agent's ends of a started process's stdio.
pub enum Stdio3 {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// The pty's master: output and input, one stream.
    Pty { master: OwnedFd },
}

/// Starts `program` as `prepared` says. Returns its pid and the agent's ends of its
/// stdio. Must run inside `Reaper::spawn` (std waits for a child whose exec failed).
pub fn start(prepared: &Prepared, program: &Path) -> std::io::Result<(i32, Stdio3)> {
    let mut command = Command::new(program);
    command
        .arg0(&prepared.args[0])
        .args(&prepared.args[1..])
        .env_clear()
        .envs(prepared.env.iter().map(|(k, v)| (k, v)));
    let mut master = None;
    match prepared.tty {
        Some(size) => {
            let (m, slave) = pty::open(size)?;
            command
                .stdin(Stdio::from(slave.try_clone()?))
                .stdout(Stdio::from(slave.try_clone()?))
                .stderr(Stdio::from(slave));
            master = Some(m);
        }
        None => {
            command
                .stdin(if prepared.stdin {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
    let child_setup = ChildSetup {
        tty: master.is_some(),
        identity: (prepared.identity.uid != 0
            || prepared.identity.gid != 0
            || prepared.identity.groups.len() > 1)
            .then(|| prepared.identity.clone()),
        cwd: CString::new(prepared.cwd.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?,
    };
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (sigprocmask, setsid, ioctl, setgroups, setgid, setuid,
    // chdir); it allocates nothing (everything it needs was made before the fork).
    unsafe { command.pre_exec(move || child_setup.run()) };
    let mut child = command.spawn()?;
    // The pty's slave copies are closed with `command` (dropped at the end of this
    // function), so the master reads EIO once the command and its children are gone.
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let io = match master {
        Some(master) => Stdio3::Pty { master },
        None => Stdio3::Pipes {
            stdin: child.stdin.take().map(OwnedFd::from),
            stdout: child.stdout.take().map(OwnedFd::from).expect("stdout is piped"),
            stderr: child.stderr.take().map(OwnedFd::from).expect("stderr is piped"),
        },
    };
    Ok((pid, io))
}

/// What the child does before exec: its own session (and the pty as its controlling
/// terminal), every signal unblocked (the agent blocks some for its signalfd), the
/// identity, the directory.
struct ChildSetup {
    tty: bool,
    identity: Option<Identity>,
    cwd: CString,
}

impl ChildSetup {
    fn run(&self) -> std::io::Result<()> {
        let check = |rc: libc::c_int| {
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        // SAFETY: all-zero is a valid sigset_t to pass to sigemptyset; the calls only
        // write to `set` and the process's signal mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            check(libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()))?;
        }
        // SAFETY: plain system calls on this (child) process.
        unsafe {
            check(libc::setsid())?;
            if self.tty {
                check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
            }
        }
        if let Some(identity) = &self.identity {
            // SAFETY: `groups` is a valid slice of gid_t for its length.
            unsafe {
                check(libc::setgroups(identity.groups.len(), identity.groups.as_ptr()))?;
                check(libc::setgid(identity.gid))?;
                check(libc::setuid(identity.uid))?;
            }
        }
        // SAFETY: `cwd` is a NUL-terminated string.
        check(unsafe { libc::chdir(self.cwd.as_ptr()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(args: &'a [String], image_env: &'a [String], env: &'a [String]) -> Request<'a> {
        Request {
            args,
            image_env,
            env,
            cwd: "/",
            user: "",
            tty: None,
            stdin: false,
        }
    }

    #[test]
    fn env_is_merged_over_the_image_and_defaulted() {
        let args = ["sh".to_owned()];
        let image = ["A=image".to_owned(), "B=image".to_owned()];
        let env = ["B=caller".to_owned(), "C=x=y".to_owned()];
        let prepared = prepare(request(&args, &image, &env), Path::new("/")).unwrap();
        let get = |k: &str| {
            prepared
                .env
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("A"), Some("image"));
        assert_eq!(get("B"), Some("caller"));
        assert_eq!(get("C"), Some("x=y"));
        assert_eq!(get("PATH"), Some(DEFAULT_PATH));
        let bad = ["NOEQUALS".to_owned()];
        assert!(matches!(
            prepare(request(&args, &[], &bad), Path::new("/")),
            Err(ExecError::BadEnv(_))
        ));
    }

    #[test]
    fn lookup_tells_missing_from_not_permitted() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "").unwrap();
        let path = dir.path().to_str().unwrap();
        assert_eq!(lookup("tool", path, Path::new("/")), Lookup::Found(exe));
        assert_eq!(lookup("data", path, Path::new("/")), Lookup::NotPermitted(plain));
        assert_eq!(lookup("nosuch", path, Path::new("/")), Lookup::NotFound);
        assert_eq!(lookup("./nosuch", path, dir.path()), Lookup::NotFound);
    }
}
