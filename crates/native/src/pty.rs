//! Pseudo-terminals, for running a command on a terminal (`exec` with a tty): Node has no
//! API to make one. The caller gives the slave to the child as its stdio and keeps the
//! master, which it reads and writes (non-blocking) and resizes.

use std::io;
use std::os::fd::RawFd;

use napi::{Error, Result, Status};
use napi_derive::napi;

/// The two ends of a new pseudo-terminal, as file descriptors of this process.
#[napi(object)]
pub struct PtyPair {
    /// The side this process reads the terminal's output from and writes its input to.
    /// Non-blocking and close-on-exec.
    pub master: i32,
    /// The terminal the command runs on. Close-on-exec: give it to a child as its stdio
    /// (dup2 clears the flag there), and close it here once the child has it.
    pub slave: i32,
}

/// Opens a pseudo-terminal of `rows` × `cols` character cells. With `raw`, it passes
/// bytes through unchanged (no echo, no line editing, no CR/LF translation): for a
/// runtime that gives the command a terminal of its own and only relays this one.
#[napi]
pub fn open_pty(rows: u32, cols: u32, raw: Option<bool>) -> Result<PtyPair> {
    let size = window_size(rows, cols)?;
    let mut master: RawFd = -1;
    let mut slave: RawFd = -1;
    // SAFETY: openpty writes two descriptors into the out-pointers, which point at live
    // locals; name, termios are null (not wanted) and size points at a valid winsize.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if r != 0 {
        return Err(os_error("openpty"));
    }
    // Close-on-exec on both ends, so no other child spawned meanwhile holds the terminal
    // open (the master would then never see the end of the command's output).
    let flags = set_fd_flag(master, libc::FD_CLOEXEC)
        .and_then(|()| set_fd_flag(slave, libc::FD_CLOEXEC))
        .and_then(|()| set_status_flag(master, libc::O_NONBLOCK))
        .and_then(|()| {
            if raw == Some(true) {
                make_raw(slave)
            } else {
                Ok(())
            }
        });
    if let Err(err) = flags {
        close(master);
        close(slave);
        return Err(err);
    }
    Ok(PtyPair { master, slave })
}

/// Sets the terminal's size (TIOCSWINSZ on either end). The kernel signals SIGWINCH only
/// to a foreground process group the terminal controls; a caller whose child does not
/// have it as its controlling terminal sends SIGWINCH itself.
#[napi]
pub fn resize_pty(fd: i32, rows: u32, cols: u32) -> Result<()> {
    let size = window_size(rows, cols)?;
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which points at a valid local.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) };
    if r != 0 {
        return Err(os_error("TIOCSWINSZ"));
    }
    Ok(())
}

/// A second descriptor of the same open file as `fd` (close-on-exec). The terminal's
/// reader keeps one: Node's stream reports the end of a pseudo-terminal early (at the
/// hangup, with output still in the kernel's buffers) and closes its descriptor then,
/// so the rest is read, and the terminal written and resized, through the copy.
#[napi]
pub fn dup_fd(fd: i32) -> Result<i32> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int and no pointers; a bad fd is an error return.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(os_error("fcntl(F_DUPFD_CLOEXEC)"));
    }
    Ok(copy)
}

fn window_size(rows: u32, cols: u32) -> Result<libc::winsize> {
    let cells = |n: u32, what: &str| {
        u16::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| Error::new(Status::InvalidArg, format!("{what} must be 1..65535, not {n}")))
    };
    Ok(libc::winsize {
        ws_row: cells(rows, "rows")?,
        ws_col: cells(cols, "cols")?,
        ws_xpixel: 0,
        ws_ypixel: 0,
    })
}

fn make_raw(fd: RawFd) -> Result<()> {
    // SAFETY: termios is plain data that tcgetattr fills in; the pointers are to a local.
    let ok = unsafe {
        let mut tios: libc::termios = std::mem::zeroed();
        libc::tcgetattr(fd, &mut tios) == 0 && {
            libc::cfmakeraw(&mut tios);
            libc::tcsetattr(fd, libc::TCSANOW, &tios) == 0
        }
    };
    if ok { Ok(()) } else { Err(os_error("tcsetattr")) }
}

fn set_fd_flag(fd: RawFd, flag: libc::c_int) -> Result<()> {
    // SAFETY: F_GETFD/F_SETFD on a descriptor this function's caller owns; no pointers.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFD, flags | flag) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(os_error("fcntl(F_SETFD)"))
    }
}

fn set_status_flag(fd: RawFd, flag: libc::c_int) -> Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor this function's caller owns; no pointers.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | flag) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(os_error("fcntl(F_SETFL)"))
    }
}

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this module opened and has not handed out.
    unsafe { libc::close(fd) };
}

fn os_error(what: &str) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("{what}: {}", io::Error::last_os_error()),
    )
}
