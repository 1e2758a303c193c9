//! The guest's network, set up by init before anything is served or run: `lo` up, the
//! first Ethernet interface (the VM's virtio-net NIC) up with its address, MTU and a
//! default route, through rtnetlink (the guest kernel has no `ip=` autoconfiguration);
//! and the root's /etc/resolv.conf.
//!
//! The settings come from `--net`/`--dns`, or in a VM from `vmctl.net=`/`vmctl.dns=` on
//! the kernel command line: Linux does not hand init a word with a dot, so an address
//! cannot reach init's arguments; a dotted `name=value` stays in /proc/cmdline instead.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use vmctl_netlink::RtSocket;
use vmctl_netlink::netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use vmctl_netlink::netlink_packet_route::address::{AddressAttribute, AddressMessage};
use vmctl_netlink::netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage};
use vmctl_netlink::netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use vmctl_netlink::netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The interface's IPv4 settings (`--net ADDR/PREFIX,GATEWAY[,MTU]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetConfig {
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// None: the driver's default (1500 for virtio-net).
    pub mtu: Option<u32>,
}

impl fmt::Display for NetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{},{}", self.address, self.prefix, self.gateway)?;
        if let Some(mtu) = self.mtu {
            write!(f, ",{mtu}")?;
        }
        Ok(())
    }
}

/// The kernel command line's names for `--net` and `--dns` (see the module's comment).
pub const CMDLINE_NET: &str = "vmctl.net";
pub const CMDLINE_DNS: &str = "vmctl.dns";

/// Below this Linux refuses IPv4 on the link (68, RFC 791); above, no virtio-net goes.
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// `ADDR/PREFIX,GATEWAY[,MTU]`; the error names `option` and what is wrong.
pub fn parse_net(option: &str, text: &str) -> Result<NetConfig, String> {
    let bad = |why: String| format!("{option} {text}: {why} (expected ADDR/PREFIX,GATEWAY[,MTU])");
    let parts: Vec<&str> = text.split(',').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("needs 2 or 3 comma-separated fields".into()));
    }
    let (address, prefix) = parts[0]
        .split_once('/')
        .ok_or_else(|| bad(format!("the address {:?} has no /PREFIX", parts[0])))?;
    let address: Ipv4Addr = address
        .parse()
        .map_err(|_| bad(format!("the address {address:?} is not an IPv4 address")))?;
    let prefix: u8 = match prefix.parse() {
        Ok(p) if (1..=30).contains(&p) => p,
        _ => return Err(bad(format!("the prefix {prefix:?} is not a number from 1 to 30"))),
    };
    let gateway: Ipv4Addr = parts[1]
        .parse()
        .map_err(|_| bad(format!("the gateway {:?} is not an IPv4 address", parts[1])))?;
    let mask = u32::MAX << (32 - prefix);
    let (a, g) = (u32::from(address), u32::from(gateway));
    if a & !mask == 0 || a & !mask == !mask {
        return Err(bad(format!(
            "{address} is the network or broadcast address of /{prefix}"
        )));
    }
    if a & mask != g & mask {
        return Err(bad(format!("the gateway {gateway} is not in {address}/{prefix}")));
    }
    if a == g {
        return Err(bad("the gateway is the address itself".into()));
    }
    let mtu = match parts.get(2) {
        None => None,
        Some(m) => match m.parse() {
            Ok(m) if MTU_RANGE.contains(&m) => Some(m),
            _ => return Err(bad(format!("the MTU {m:?} is not a number from 68 to 65535"))),
        },
    };
    Ok(NetConfig {
        address,
        prefix,
        gateway,
        mtu,
    })
}

/// `IP[,IP...]` (IPv4 or IPv6), appended to `out`; the error names `option`.
pub fn parse_dns(option: &str, text: &str, out: &mut Vec<IpAddr>) -> Result<(), String> {
    for word in text.split(',') {
        let ip = word
            .parse()
            .map_err(|_| format!("{option} {text}: {word:?} is not an IP address"))?;
        out.push(ip);
    }
    Ok(())
}

/// `vmctl.net=` and `vmctl.dns=` of a kernel command line (the last `vmctl.net` wins,
/// every `vmctl.dns` adds).
pub fn from_cmdline(cmdline: &str) -> Result<(Option<NetConfig>, Vec<IpAddr>), String> {
    let (mut net, mut dns) = (None, Vec::new());
    for word in cmdline.split_whitespace() {
        match word.split_once('=') {
            Some((CMDLINE_NET, value)) => net = Some(parse_net(CMDLINE_NET, value)?),
            Some((CMDLINE_DNS, value)) => parse_dns(CMDLINE_DNS, value, &mut dns)?,
            _ => {}
        }
    }
    Ok((net, dns))
}

/// A step of the set-up that failed, and the kernel's reason.
#[derive(Debug, thiserror::Error)]
#[error("network: {step}: {source}")]
pub struct NetError {
    pub step: String,
    #[source]
    pub source: io::Error,
}

fn step(step: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
    let step = step.into();
    move |source| NetError { step, source }
}

/// How long init waits for the NIC to show up (virtio-net is probed before init runs;
/// this only covers a slow probe).
const LINK_WAIT: Duration = Duration::from_secs(2);

/// `lo` up; with `net`, the first Ethernet interface configured. Returns what was done,
/// for the console (`eth0 10.0.0.2/24 via 10.0.0.1 mtu 1500`).
pub fn configure(net: Option<&NetConfig>) -> Result<Option<String>, NetError> {
    let mut socket = RtSocket::open().map_err(step("open a netlink socket"))?;
    let lo = links(&mut socket)?
        .into_iter()
        .find(|l| l.header.link_layer_type == LinkLayerType::Loopback)
        .map(|l| l.header.index);
    if let Some(lo) = lo {
        set_up(&mut socket, lo, None).map_err(step("bring lo up"))?;
    }
    let Some(net) = net else { return Ok(None) };
    let deadline = Instant::now() + LINK_WAIT;
    let (index, name) = loop {
        let found = links(&mut socket)?.into_iter().find_map(|l| {
            let ether = l.header.link_layer_type == LinkLayerType::Ether;
            ether.then(|| (l.header.index, name_of(&l).unwrap_or_default()))
        });
        match found {
            Some(link) => break link,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => {
                return Err(NetError {
                    step: "find the network interface".into(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no Ethernet interface"),
                });
            }
        }
    };
    set_up(&mut socket, index, net.mtu).map_err(step(format!("bring {name} up")))?;
    socket
        .request(
            RouteNetlinkMessage::NewAddress(address_message(index, net.address, net.prefix)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(step(format!("add {}/{} to {name}", net.address, net.prefix)))?;
    socket
        .request(
            RouteNetlinkMessage::NewRoute(default_route(index, net.gateway)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map_err(step(format!("add the default route via {}", net.gateway)))?;
    let mtu = links(&mut socket)?
        .iter()
        .find(|l| l.header.index == index)
        .and_then(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::Mtu(m) => Some(*m),
                _ => None,
            })
        })
        .unwrap_or(0);
    Ok(Some(format!(
        "{name} {}/{} via {} mtu {mtu}",
        net.address, net.prefix, net.gateway
    )))
}

fn links(socket: &mut RtSocket) -> Result<Vec<LinkMessage>, NetError> {
    let replies = socket
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(step("list links"))?;
    let mut links: Vec<LinkMessage> = replies
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })
        .collect();
    // "The first" by creation order: eth0 before anything added later.
    links.sort_by_key(|l| l.header.index);
    Ok(links)
}

fn name_of(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn set_up(socket: &mut RtSocket, index: u32, mtu: Option<u32>) -> io::Result<()> {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.change_mask = LinkFlags::Up;
    message.header.flags = LinkFlags::Up;
    if let Some(mtu) = mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    socket.request(RouteNetlinkMessage::SetLink(message), 0).map(drop)
}

fn address_message(index: u32, address: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index;
    let ip = IpAddr::V4(address);
    message.attributes.push(AddressAttribute::Local(ip));
    message.attributes.push(AddressAttribute::Address(ip));
    let mask = u32::MAX << (32 - prefix);
    let broadcast = Ipv4Addr::from(u32::from(address) | !mask);
    message.attributes.push(AddressAttribute::Broadcast(broadcast));
    message
}

fn default_route(index: u32, gateway: Ipv4Addr) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    message.attributes.push(RouteAttribute::Oif(index));
    message
}

/// The root's /etc/resolv.conf with these nameservers, replacing whatever the image had
/// (a file, or a symlink into a resolver's runtime dir that is not there in a VM). On
/// the assembled root the new file lands in the VM's writable layer; the image's own
/// stays untouched in the base disk.
pub fn write_resolv_conf(root: &Path, nameservers: &[IpAddr]) -> io::Result<()> {
    let etc = root.join("etc");
    std::fs::create_dir_all(&etc)?;
    let mut text = String::from("# written by vmctl-agent\n");
    for ns in nameservers {
        text.push_str(&format!("nameserver {ns}\n"));
    }
    let temporary = etc.join(".resolv.conf.vmctl");
    std::fs::write(&temporary, text)?;
    // A rename replaces a symlink itself, never what it points to.
    std::fs::rename(&temporary, etc.join("resolv.conf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_parses_and_names_the_option() {
        let net = parse_net("--net", "10.88.1.5/24,10.88.1.1,1400").unwrap();
        assert_eq!(net.address, Ipv4Addr::new(10, 88, 1, 5));
        assert_eq!((net.prefix, net.mtu), (24, Some(1400)));
        assert_eq!(net.to_string(), "10.88.1.5/24,10.88.1.1,1400");
        assert_eq!(
            parse_net("--net", "192.168.0.2/30,192.168.0.1").unwrap().mtu,
            None
        );
        for (text, why) in [
            ("10.88.1.5/24", "2 or 3"),
            ("10.88.1.5,10.88.1.1", "no /PREFIX"),
            ("10.88.1/24,10.88.1.1", "not an IPv4 address"),
            ("10.88.1.5/33,10.88.1.1", "prefix"),
            ("10.88.1.5/0,10.88.1.1", "prefix"),
            ("10.88.1.5/24,gw", "gateway \"gw\""),
            ("10.88.1.5/24,10.88.2.1", "not in 10.88.1.5/24"),
            ("10.88.1.1/24,10.88.1.1", "the address itself"),
            ("10.88.1.0/24,10.88.1.1", "network or broadcast"),
            ("10.88.1.255/24,10.88.1.1", "network or broadcast"),
            ("10.88.1.5/24,10.88.1.1,9", "MTU"),
            ("10.88.1.5/24,10.88.1.1,big", "MTU"),
            ("10.88.1.5/24,10.88.1.1,1500,x", "2 or 3"),
        ] {
            let error = parse_net("--net", text).unwrap_err();
            assert!(error.starts_with(&format!("--net {text}: ")), "{error}");
            assert!(error.contains(why), "{text}: {error} should say {why}");
        }
    }

    #[test]
    fn dns_takes_lists_of_addresses() {
        let mut dns = Vec::new();
        parse_dns("--dns", "10.88.1.1,2001:db8::1", &mut dns).unwrap();
        parse_dns("--dns", "1.1.1.1", &mut dns).unwrap();
        assert_eq!(dns.len(), 3);
        let error = parse_dns("--dns", "1.1.1.1,resolver", &mut dns).unwrap_err();
        assert!(
            error.contains("--dns") && error.contains("\"resolver\""),
            "{error}"
        );
    }

    #[test]
    fn kernel_command_line_words() {
        let (net, dns) = from_cmdline(
            "console=ttyS0 quiet vmctl.net=10.0.0.2/24,10.0.0.1,1500 rdinit=/init vmctl.dns=10.0.0.1 vmctl.dns=9.9.9.9 --listen",
        )
        .unwrap();
        assert_eq!(net.unwrap().to_string(), "10.0.0.2/24,10.0.0.1,1500");
        assert_eq!(
            dns,
            ["10.0.0.1".parse::<IpAddr>().unwrap(), "9.9.9.9".parse().unwrap()]
        );
        assert_eq!(from_cmdline("console=ttyS0 quiet").unwrap(), (None, vec![]));
        let error = from_cmdline("vmctl.net=10.0.0.2").unwrap_err();
        assert!(error.starts_with("vmctl.net 10.0.0.2: "), "{error}");
    }

    use proptest::prelude::*;

    /// Text near the grammar (digits, dots, slashes, commas, anything else now and then),
    /// and configs built to be nearly right: a gateway in the address's subnet, edges included.
    fn near_net() -> impl Strategy<Value = String> {
        let built = (
            any::<u32>(),
            0u8..=32,
            any::<u32>(),
            proptest::option::of(0u32..70_000),
        )
            .prop_map(|(a, prefix, g, mtu)| {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                let gateway = (a & mask) | (g & !mask);
                let mtu = mtu.map_or(String::new(), |m| format!(",{m}"));
                format!("{}/{prefix},{}{mtu}", Ipv4Addr::from(a), Ipv4Addr::from(gateway))
            });
        prop_oneof![
            proptest::string::string_regex("[0-9./,]{0,40}|\\PC{0,20}").unwrap(),
            built
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the host (or anyone able to set the kernel command line) writes: a
        /// config that holds together, or an error naming the option; never a panic.
        #[test]
        fn any_net_text_is_a_sound_config_or_an_error_naming_the_option(text in near_net()) {
            match parse_net("--net", &text) {
                Ok(net) => {
                    prop_assert!((1..=30).contains(&net.prefix));
                    let mask = u32::MAX << (32 - net.prefix);
                    let (a, g) = (u32::from(net.address), u32::from(net.gateway));
                    prop_assert_eq!(a & mask, g & mask);
                    prop_assert!(a != g && a & !mask != 0 && a & !mask != !mask);
                    prop_assert!(net.mtu.is_none_or(|m| MTU_RANGE.contains(&m)));
                    // What the agent reports is what it parsed.
                    prop_assert_eq!(parse_net("--net", &net.to_string()), Ok(net));
                }
                Err(error) => prop_assert!(error.starts_with(&format!("--net {text}: ")), "{}", error),
            }
        }

        #[test]
        fn any_kernel_command_line_is_read_or_refused_naming_the_word(words in proptest::collection::vec(
            prop_oneof![
                near_net().prop_map(|v| format!("vmctl.net={v}")),
                "[0-9a-f:.,]{0,30}".prop_map(|v| format!("vmctl.dns={v}")),
                "\\PC{0,12}",
            ],
            0..6,
        )) {
            let cmdline = words.join(" ");
            match from_cmdline(&cmdline) {
                Ok((net, dns)) => {
                    prop_assert_eq!(net.is_some(), cmdline.split_whitespace().any(|w| w.starts_with("vmctl.net=")));
                    prop_assert!(dns.len() <= cmdline.matches(',').count() + cmdline.matches("vmctl.dns=").count());
                }
                Err(error) => prop_assert!(error.starts_with("vmctl.net ") || error.starts_with("vmctl.dns "), "{}", error),
            }
        }
    }

    #[test]
    fn resolv_conf_replaces_a_symlink_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let target = dir.path().join("stub-resolv.conf");
        std::fs::write(&target, "nameserver 127.0.0.53\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("etc/resolv.conf")).unwrap();
        write_resolv_conf(dir.path(), &["10.0.0.1".parse().unwrap()]).unwrap();
        let written = dir.path().join("etc/resolv.conf");
        assert!(!std::fs::symlink_metadata(&written).unwrap().is_symlink());
        assert_eq!(
            std::fs::read_to_string(&written).unwrap(),
            "# written by vmctl-agent\nnameserver 10.0.0.1\n"
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "nameserver 127.0.0.53\n"
        );
    }
}
