//! Pseudo-terminals: a master the agent reads and writes, a slave the command gets as
//! its controlling terminal. Opened from `/dev/pts/ptmx` (the devpts instance the agent
//! mounted, `newinstance`) when there is one, else `/dev/ptmx`; the slave is opened from
//! the master (TIOCGPTPEER), so it is the right instance whatever `/dev/pts` shows.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::WindowSize;

/// Opens a new pty with the given size. Both ends are close-on-exec; the master is
/// non-blocking (it is read and written by the event loop).
pub fn open(size: WindowSize) -> io::Result<(OwnedFd, OwnedFd)> {
    let master = open_master()?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer, which is valid.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new descriptor.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl returned a new descriptor that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    resize(&master, size)?;
    Ok((master, slave))
}

fn open_master() -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK;
    for path in [c"/dev/pts/ptmx", c"/dev/ptmx"] {
        // SAFETY: `path` is a NUL-terminated string.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: open returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(io::Error::last_os_error())
}

/// Sets the terminal's size; the kernel sends SIGWINCH to its foreground process group.
pub fn resize(master: &impl AsRawFd, size: WindowSize) -> io::Result<()> {
    let winsize = libc::winsize {
        ws_row: u16::try_from(size.rows).unwrap_or(u16::MAX),
        ws_col: u16::try_from(size.cols).unwrap_or(u16::MAX),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer, which is valid.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &winsize) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
