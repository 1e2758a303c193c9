//! The rtnetlink socket: vmctl-netlink's (shared with the guest agent), opened with the
//! host side's error. Blocking calls on a socket opened by the calling thread, so the
//! socket lives in that thread's network namespace (tests rely on it).

use std::ops::{Deref, DerefMut};

use super::NetError;

pub struct RtSocket(vmctl_netlink::RtSocket);

impl RtSocket {
    pub fn open() -> Result<Self, NetError> {
        vmctl_netlink::RtSocket::open()
            .map(Self)
            .map_err(|source| NetError::Netlink {
                op: "open".into(),
                source,
            })
    }
}

impl Deref for RtSocket {
    type Target = vmctl_netlink::RtSocket;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for RtSocket {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
