//! The host side of microVM networking, in process: links (bridges, persistent TAPs,
//! ports, state, addresses) and routes over rtnetlink, nftables through libnftables, and
//! network sysctls through /proc/sys. No child process anywhere.
//!
//! Everything acts on the calling thread's network namespace. The functions are
//! synchronous: each is one or a few netlink round trips (microseconds) or one nft
//! transaction (about a millisecond), cheaper than a hop to a worker thread.
//! Errors reach JavaScript with a `code` property: INVALID_ARGUMENT (naming the field),
//! NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION or INTERNAL.

mod links;
mod netlink;
mod nft;
mod sysctl;
mod tap;

use std::io;
use std::net::Ipv4Addr;

use napi_derive::napi;

pub use links::{Link, LinkChange, Route};
use netlink::RtSocket;

/// An error of the host networking primitives.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{field}: {problem}")]
    InvalidArgument { field: String, problem: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("netlink {op}: {source}")]
    Netlink { op: String, source: io::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// nft refused the commands; its own error text.
    #[error("nft: {text}")]
    Nft { code: NetCode, text: String },
}

/// The kinds JavaScript sees as the error's `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Internal,
}

impl AsRef<str> for NetCode {
    fn as_ref(&self) -> &str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Internal => "INTERNAL",
        }
    }
}

impl NetError {
    pub fn code(&self) -> NetCode {
        match self {
            Self::InvalidArgument { .. } => NetCode::InvalidArgument,
            Self::NotFound(_) => NetCode::NotFound,
            Self::AlreadyExists(_) => NetCode::AlreadyExists,
            Self::FailedPrecondition(_) => NetCode::FailedPrecondition,
            Self::Netlink { source, .. } | Self::Io { source, .. } => match source.raw_os_error() {
                Some(libc::EEXIST) => NetCode::AlreadyExists,
                Some(libc::ENODEV | libc::ENOENT) => NetCode::NotFound,
                // Not allowed here (no CAP_NET_ADMIN), or busy: the host's state, not a bug.
                Some(libc::EPERM | libc::EACCES | libc::EBUSY) => NetCode::FailedPrecondition,
                _ => NetCode::Internal,
            },
            Self::Nft { code, .. } => *code,
        }
    }

    /// nft's error text, its kind read from the errno words the library prints.
    fn from_nft(text: &str) -> Self {
        let code = if text.contains("No such file or directory") {
            NetCode::NotFound
        } else if text.contains("File exists") {
            NetCode::AlreadyExists
        } else if text.contains("Operation not permitted") || text.contains("Device or resource busy") {
            NetCode::FailedPrecondition
        } else if text.contains("Could not process rule") || text.is_empty() {
            // The kernel refused it for another reason.
            NetCode::Internal
        } else {
            // libnftables' own parser and checks: the document is what is wrong.
            NetCode::InvalidArgument
        };
        let text = if text.is_empty() {
            "failed, without a message"
        } else {
            text
        };
        Self::Nft {
            code,
            text: text.to_owned(),
        }
    }
}

impl From<NetError> for napi::Error<NetCode> {
    fn from(err: NetError) -> Self {
        napi::Error::new(err.code(), err.to_string())
    }
}

fn invalid(field: &str, problem: impl Into<String>) -> NetError {
    NetError::InvalidArgument {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A Linux interface name as the kernel accepts it (dev_valid_name).
pub fn check_link_name(field: &str, name: &str) -> Result<(), NetError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 15 {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is . or ..")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
    {
        Some("holds '/', ':', a space or a NUL")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(invalid(field, format!("interface name {name:?} {problem}"))),
        None => Ok(()),
    }
}

/// "10.88.1.1/24" as (address, prefix).
pub fn parse_cidr(field: &str, text: &str) -> Result<(Ipv4Addr, u8), NetError> {
    let bad = || {
        invalid(
            field,
            format!("{text:?} is not an IPv4 address with a prefix length (a.b.c.d/n)"),
        )
    };
    let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
    let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
    if prefix.is_empty() || prefix.len() > 2 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    Ok((address, prefix))
}

fn check_mtu(mtu: Option<u32>) -> Result<(), NetError> {
    match mtu {
        Some(m) if !(68..=65535).contains(&m) => Err(invalid("mtu", format!("{m} is outside 68..65535"))),
        _ => Ok(()),
    }
}

/// A bridge and its address.
#[napi(object)]
pub struct BridgeRequest {
    /// The bridge's interface name (at most 15 bytes).
    pub name: String,
    /// Its IPv4 address with the subnet's prefix length: "10.88.1.1/24".
    pub address: String,
    /// A mark for whoever lists links later (IFLA_IFALIAS).
    pub alias: Option<String>,
}

/// Makes the bridge if absent, gives it exactly `address` (an earlier IPv4 address goes),
/// sets its alias and brings it up. Idempotent. A link of that name that is not a bridge
/// is ALREADY_EXISTS.
#[napi]
pub fn ensure_bridge(request: BridgeRequest) -> napi::Result<(), NetCode> {
    Ok(bridge(&request)?)
}

fn bridge(request: &BridgeRequest) -> Result<(), NetError> {
    check_link_name("name", &request.name)?;
    let (address, prefix) = parse_cidr("address", &request.address)?;
    let mut socket = RtSocket::open()?;
    links::ensure_bridge(
        &mut socket,
        &request.name,
        address,
        prefix,
        request.alias.as_deref(),
    )
}

/// A persistent TAP.
#[napi(object)]
pub struct TapRequest {
    /// The TAP's interface name (at most 15 bytes).
    pub name: String,
    /// The bridge to attach it to.
    pub bridge: Option<String>,
    pub mtu: Option<u32>,
    /// A mark for whoever lists links later (IFLA_IFALIAS).
    pub alias: Option<String>,
}

/// Makes a persistent TAP (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as the VMM opens it),
/// attaches it to `bridge`, sets MTU and alias, and brings it up. An existing TAP of that
/// name is reused; any other link of that name is ALREADY_EXISTS. A TAP made here is
/// deleted again when a later step fails.
#[napi]
pub fn create_tap(request: TapRequest) -> napi::Result<(), NetCode> {
    Ok(tap(&request)?)
}

fn tap(request: &TapRequest) -> Result<(), NetError> {
    check_link_name("name", &request.name)?;
    if let Some(bridge) = &request.bridge {
        check_link_name("bridge", bridge)?;
    }
    check_mtu(request.mtu)?;
    let mut socket = RtSocket::open()?;
    let existed = links::find(&mut socket, &request.name)?.is_some();
    tap::create_persistent(&request.name)?;
    let change = LinkChange {
        master: request.bridge.as_deref().map(Some),
        up: Some(true),
        mtu: request.mtu,
        alias: request.alias.as_deref(),
    };
    links::set_link(&mut socket, &request.name, &change).inspect_err(|_| {
        if !existed {
            let _ = links::delete(&mut socket, &request.name);
        }
    })
}

/// Deletes a link (a TAP, a veth and its peer, a bridge); false when there was none.
#[napi]
pub fn delete_link(name: String) -> napi::Result<bool, NetCode> {
    check_link_name("name", &name)?;
    let mut socket = RtSocket::open()?;
    Ok(links::delete(&mut socket, &name)?)
}

/// Attaches a link to the bridge `master`, or detaches it when `master` is null.
#[napi]
pub fn set_link_master(name: String, master: Option<String>) -> napi::Result<(), NetCode> {
    check_link_name("name", &name)?;
    if let Some(master) = &master {
        check_link_name("master", master)?;
    }
    let mut socket = RtSocket::open()?;
    links::set_link(
        &mut socket,
        &name,
        &LinkChange {
            master: Some(master.as_deref()),
            ..LinkChange::default()
        },
    )?;
    Ok(())
}

/// Brings a link up or down.
#[napi]
pub fn set_link_up(name: String, up: bool) -> napi::Result<(), NetCode> {
    check_link_name("name", &name)?;
    let mut socket = RtSocket::open()?;
    links::set_link(
        &mut socket,
        &name,
        &LinkChange {
            up: Some(up),
            ..LinkChange::default()
        },
    )?;
    Ok(())
}

/// A link of this network namespace.
#[napi(object)]
pub struct NetLink {
    pub name: String,
    pub index: u32,
    /// "bridge", "tun" (TAPs too), "veth"...; absent for loopback and physical devices.
    pub kind: Option<String>,
    /// The bridge it is a port of.
    pub master: Option<String>,
    /// Administratively up.
    pub up: bool,
    pub mac: Option<String>,
    pub mtu: u32,
    /// IPv4 addresses as CIDRs: "10.88.1.1/24".
    pub addresses: Vec<String>,
    pub alias: Option<String>,
}

/// Every link, with its IPv4 addresses.
#[napi]
pub fn list_links() -> napi::Result<Vec<NetLink>, NetCode> {
    let mut socket = RtSocket::open()?;
    Ok(links::list(&mut socket)?
        .into_iter()
        .map(|l| NetLink {
            name: l.name,
            index: l.index,
            kind: l.kind,
            master: l.master,
            up: l.up,
            mac: l.mac,
            mtu: l.mtu,
            addresses: l.addresses,
            alias: l.alias,
        })
        .collect())
}

/// An IPv4 route of the main table.
#[napi(object)]
pub struct NetRoute {
    /// "0.0.0.0/0" for the default route.
    pub destination: String,
    pub gateway: Option<String>,
    pub device: Option<String>,
}

/// The unicast IPv4 routes of the main table.
#[napi]
pub fn list_routes() -> napi::Result<Vec<NetRoute>, NetCode> {
    let mut socket = RtSocket::open()?;
    Ok(links::routes(&mut socket)?
        .into_iter()
        .map(|r| NetRoute {
            destination: r.destination,
            gateway: r.gateway,
            device: r.device,
        })
        .collect())
}

/// Writes a sysctl below /proc/sys/net: `key` is its path there ("ipv4/ip_forward",
/// "ipv4/conf/vmbr-x/route_localnet").
#[napi]
pub fn write_net_sysctl(key: String, value: String) -> napi::Result<(), NetCode> {
    Ok(sysctl::write(&key, &value)?)
}

/// Reads a sysctl below /proc/sys/net (trimmed).
#[napi]
pub fn read_net_sysctl(key: String) -> napi::Result<String, NetCode> {
    Ok(sysctl::read(&key)?)
}

/// Runs an nftables JSON command document (`{"nftables": [...]}`) as one transaction
/// through libnftables and returns nft's JSON output ("" when nothing is printed). A
/// refusal carries nft's own error text.
#[napi]
pub fn nft_run(commands: String) -> napi::Result<String, NetCode> {
    Ok(nft::run(&commands)?)
}

#[cfg(test)]
mod tests;
