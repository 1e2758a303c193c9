//! The signals the agent handles — SIGCHLD (reap), SIGTERM and SIGINT (a stop) — read
//! from a signalfd on the event loop. They are blocked in the main thread before any
//! other thread exists, so every thread inherits the mask and none runs a handler; the
//! children unblock them before exec (`exec::spawn`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

/// A signal the agent acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSignal {
    Child,
    Stop,
}

fn handled() -> libc::sigset_t {
    // SAFETY: all-zero is a valid sigset_t for sigemptyset; the calls only write to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks the handled signals in the calling thread (call before starting threads).
pub fn block() -> io::Result<()> {
    let set = handled();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// The signalfd, registered with the event loop.
pub struct Signals(AsyncFd<OwnedFd>);

impl Signals {
    /// Must be called inside the runtime, after [`block`].
    pub fn new() -> io::Result<Self> {
        let set = handled();
        // SAFETY: `set` is initialised and outlives the call.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the AsyncFd owns `fd`, which stays open and the same descriptor until
        // the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self(fd))
    }

    /// The next signal (several of one kind may have been merged into one).
    pub async fn recv(&self) -> io::Result<AgentSignal> {
        loop {
            let mut ready = self.0.readable().await?;
            let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`, which has room for them.
            let read = unsafe { libc::read(self.0.get_ref().as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if usize::try_from(read).is_ok_and(|n| n == size) {
                // SAFETY: the kernel filled the whole struct.
                let info = unsafe { info.assume_init() };
                let signal = i32::try_from(info.ssi_signo).unwrap_or(0);
                return Ok(if signal == libc::SIGCHLD {
                    AgentSignal::Child
                } else {
                    AgentSignal::Stop
                });
            }
            ready.clear_ready();
        }
    }
}
