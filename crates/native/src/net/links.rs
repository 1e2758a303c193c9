//! Links, addresses and routes over rtnetlink: bridges, attaching a port to one, link
//! state, and the listings the orchestrator reconciles and checks subnets against.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::NetError;
use super::netlink::RtSocket;

/// A link as the orchestrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub index: u32,
    /// "bridge", "tun", "veth"... ; None for a plain device (loopback, physical).
    pub kind: Option<String>,
    /// The bridge it is a port of, by name.
    pub master: Option<String>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    pub mac: Option<String>,
    pub mtu: u32,
    /// IPv4 addresses as CIDRs ("10.88.1.1/24").
    pub addresses: Vec<String>,
    pub alias: Option<String>,
}

/// An IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination as a CIDR ("0.0.0.0/0" for the default route).
    pub destination: String,
    pub gateway: Option<String>,
    pub device: Option<String>,
}

/// What to change on a link; None leaves it as it is.
#[derive(Debug, Default)]
pub struct LinkChange<'a> {
    /// Some(None) detaches it from its bridge.
    pub master: Option<Option<&'a str>>,
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    pub alias: Option<&'a str>,
}

fn netlink(op: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let op = op.into();
    move |source| NetError::Netlink { op, source }
}

fn by_name(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.attributes.push(LinkAttribute::IfName(name.to_owned()));
    message
}

/// The link named `name`, or None.
pub fn find(socket: &mut RtSocket, name: &str) -> Result<Option<LinkMessage>, NetError> {
    match socket.request(RouteNetlinkMessage::GetLink(by_name(name)), 0) {
        Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(netlink(format!("get link {name}"))(e)),
    }
}

fn kind_of(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(kind) => Some(kind.to_string()),
            _ => None,
        }),
        _ => None,
    })
}

/// The bridge `name` with exactly the IPv4 address `address/prefix`, up, and `alias`.
/// Idempotent; a link of that name that is not a bridge is ALREADY_EXISTS.
pub fn ensure_bridge(
    socket: &mut RtSocket,
    name: &str,
    address: Ipv4Addr,
    prefix: u8,
    alias: Option<&str>,
) -> Result<(), NetError> {
    let link = match find(socket, name)? {
        Some(link) => link,
        None => {
            let mut message = by_name(name);
            message
                .attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
            match socket.request(RouteNetlinkMessage::NewLink(message), NLM_F_CREATE | NLM_F_EXCL) {
                // Made meanwhile by another caller: checked below like any existing link.
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                    return Err(netlink(format!("create bridge {name}"))(e));
                }
                _ => {}
            }
            find(socket, name)?
                .ok_or_else(|| NetError::NotFound(format!("bridge {name} vanished as it was made")))?
        }
    };
    match kind_of(&link).as_deref() {
        Some("bridge") => {}
        other => {
            return Err(NetError::AlreadyExists(format!(
                "{name} exists and is not a bridge (kind {})",
                other.unwrap_or("none")
            )));
        }
    }
    let index = link.header.index;
    let wanted = format!("{address}/{prefix}");
    let mut present = false;
    for (addr, len) in ipv4_addresses(socket, Some(index))?
        .remove(&index)
        .unwrap_or_default()
    {
        if addr == address && len == prefix {
            present = true;
        } else {
            // The bridge is ours: an address left from an earlier definition goes.
            let message = address_message(index, addr, len);
            socket
                .request(RouteNetlinkMessage::DelAddress(message), 0)
                .or_else(ignore(libc::EADDRNOTAVAIL))
                .map_err(netlink(format!("remove {addr}/{len} from {name}")))?;
        }
    }
    if !present {
        socket
            .request(
                RouteNetlinkMessage::NewAddress(address_message(index, address, prefix)),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .map_err(netlink(format!("add {wanted} to {name}")))?;
    }
    set_link(
        socket,
        name,
        &LinkChange {
            up: Some(true),
            alias,
            ..LinkChange::default()
        },
    )
}

fn ignore(errno: i32) -> impl FnOnce(io::Error) -> io::Result<Vec<RouteNetlinkMessage>> {
    move |e| {
        if e.raw_os_error() == Some(errno) {
            Ok(Vec::new())
        } else {
            Err(e)
        }
    }
}

fn address_message(index: u32, address: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(IpAddr::V4(address)));
    message
        .attributes
        .push(AddressAttribute::Address(IpAddr::V4(address)));
    if prefix < 31 {
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        let broadcast = Ipv4Addr::from(u32::from(address) | !mask);
        message.attributes.push(AddressAttribute::Broadcast(broadcast));
    }
    message
}

/// IPv4 addresses by link index (of `only` when given).
fn ipv4_addresses(
    socket: &mut RtSocket,
    only: Option<u32>,
) -> Result<HashMap<u32, Vec<(Ipv4Addr, u8)>>, NetError> {
    let mut request = AddressMessage::default();
    request.header.family = AddressFamily::Inet;
    let replies = socket
        .dump(RouteNetlinkMessage::GetAddress(request))
        .map_err(netlink("list addresses"))?;
    let mut out: HashMap<u32, Vec<(Ipv4Addr, u8)>> = HashMap::new();
    for reply in replies {
        let RouteNetlinkMessage::NewAddress(message) = reply else {
            continue;
        };
        if only.is_some_and(|i| i != message.header.index) {
            continue;
        }
        let local = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(v4)) => Some(*v4),
            _ => None,
        });
        let address = local.or_else(|| {
            message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(IpAddr::V4(v4)) => Some(*v4),
                _ => None,
            })
        });
        if let Some(address) = address {
            out.entry(message.header.index)
                .or_default()
                .push((address, message.header.prefix_len));
        }
    }
    Ok(out)
}

/// Changes a link's master, state, MTU or alias in one request.
pub fn set_link(socket: &mut RtSocket, name: &str, change: &LinkChange<'_>) -> Result<(), NetError> {
    let mut message = by_name(name);
    if let Some(master) = change.master {
        let index = match master {
            None => 0,
            Some(bridge) => {
                find(socket, bridge)?
                    .ok_or_else(|| {
                        NetError::NotFound(format!("bridge {bridge} (master of {name}) does not exist"))
                    })?
                    .header
                    .index
            }
        };
        message.attributes.push(LinkAttribute::Controller(index));
    }
    if let Some(mtu) = change.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(alias) = change.alias {
        message.attributes.push(LinkAttribute::IfAlias(alias.to_owned()));
    }
    if let Some(up) = change.up {
        message.header.change_mask = LinkFlags::Up;
        message.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
    }
    socket
        .request(RouteNetlinkMessage::SetLink(message), 0)
        .map(drop)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENODEV) => NetError::NotFound(format!("link {name} does not exist")),
            _ => netlink(format!("set link {name}"))(e),
        })
}

/// Deletes a link; false when there was none of that name.
pub fn delete(socket: &mut RtSocket, name: &str) -> Result<bool, NetError> {
    match socket.request(RouteNetlinkMessage::DelLink(by_name(name)), 0) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(netlink(format!("delete link {name}"))(e)),
    }
}

/// Every link of this network namespace, with its IPv4 addresses.
pub fn list(socket: &mut RtSocket) -> Result<Vec<Link>, NetError> {
    let replies = socket
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(netlink("list links"))?;
    let mut addresses = ipv4_addresses(socket, None)?;
    let messages: Vec<LinkMessage> = replies
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })
        .collect();
    let names: HashMap<u32, String> = messages
        .iter()
        .filter_map(|m| Some((m.header.index, name_of(m)?)))
        .collect();
    let mut links = Vec::with_capacity(messages.len());
    for message in &messages {
        let Some(name) = name_of(message) else { continue };
        let mut link = Link {
            name,
            index: message.header.index,
            kind: kind_of(message),
            master: None,
            up: message.header.flags.contains(LinkFlags::Up),
            mac: None,
            mtu: 0,
            addresses: addresses
                .remove(&message.header.index)
                .unwrap_or_default()
                .into_iter()
                .map(|(a, p)| format!("{a}/{p}"))
                .collect(),
            alias: None,
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::Controller(i) => link.master = names.get(i).cloned(),
                LinkAttribute::Mtu(m) => link.mtu = *m,
                LinkAttribute::Address(bytes) if bytes.len() == 6 => link.mac = Some(format_mac(bytes)),
                LinkAttribute::IfAlias(a) if !a.is_empty() => link.alias = Some(a.clone()),
                _ => {}
            }
        }
        links.push(link);
    }
    Ok(links)
}

fn name_of(message: &LinkMessage) -> Option<String> {
    message.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The unicast IPv4 routes of the main table.
pub fn routes(socket: &mut RtSocket) -> Result<Vec<Route>, NetError> {
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet;
    let replies = socket
        .dump(RouteNetlinkMessage::GetRoute(request))
        .map_err(netlink("list routes"))?;
    let links = socket
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(netlink("list links"))?;
    let names: HashMap<u32, String> = links
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some((l.header.index, name_of(l)?)),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewRoute(route) = reply else {
            continue;
        };
        // The table is in the header up to 255 and in an attribute beyond.
        let table = route
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(route.header.table));
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) || route.header.kind != RouteType::Unicast {
            continue;
        }
        let mut destination = Ipv4Addr::UNSPECIFIED;
        let mut entry = Route {
            destination: String::new(),
            gateway: None,
            device: None,
        };
        for attribute in &route.attributes {
            match attribute {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => destination = *d,
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => entry.gateway = Some(g.to_string()),
                RouteAttribute::Oif(i) => entry.device = names.get(i).cloned(),
                _ => {}
            }
        }
        entry.destination = format!("{destination}/{}", route.header.destination_prefix_length);
        out.push(entry);
    }
    Ok(out)
}
