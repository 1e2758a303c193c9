//! Each test runs on a thread of its own in a new network namespace (unshare is per
//! thread for CLONE_NEWNET), so nothing touches the host's links or ruleset. Results are
//! checked through netlink and, independently, with `ip -j` / `nft -j` run from that
//! thread (a child forked from it is in its namespace).

use std::process::Command;

use super::*;

/// Runs `body` on a new thread inside a fresh network namespace; its panic is the test's.
fn in_netns(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare takes flags only; it moves this thread alone to a new namespace.
        let r = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            r,
            0,
            "unshare(CLONE_NEWNET) needs root (CAP_SYS_ADMIN): {}",
            io::Error::last_os_error()
        );
        body();
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

/// `ip -j ARGS` in this thread's namespace, parsed.
fn ip_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip")
        .arg("-j")
        .args(args)
        .output()
        .expect("the `ip` command (iproute2) is needed by these tests");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .expect("the `ip` command (iproute2) is needed by these tests");
    assert!(status.success(), "ip {args:?} failed");
}

fn link_of(name: &str) -> Option<Link> {
    let mut socket = RtSocket::open().unwrap();
    links::list(&mut socket)
        .unwrap()
        .into_iter()
        .find(|l| l.name == name)
}

#[test]
fn ensure_bridge_makes_addresses_and_brings_up_idempotently() {
    in_netns(|| {
        let mut socket = RtSocket::open().unwrap();
        let address = Ipv4Addr::new(10, 88, 1, 1);
        links::ensure_bridge(&mut socket, "vmbr-t", address, 24, Some("vmctl network t")).unwrap();
        links::ensure_bridge(&mut socket, "vmbr-t", address, 24, Some("vmctl network t")).unwrap();
        let link = link_of("vmbr-t").expect("the bridge exists");
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert!(link.up);
        assert_eq!(link.addresses, vec!["10.88.1.1/24"]);
        assert_eq!(link.alias.as_deref(), Some("vmctl network t"));
        // The same seen by iproute2.
        let shown = ip_json(&["-d", "addr", "show", "dev", "vmbr-t"]);
        assert_eq!(shown[0]["linkinfo"]["info_kind"], "bridge");
        assert_eq!(shown[0]["ifalias"], "vmctl network t");
        let addrs: Vec<String> = shown[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["family"] == "inet")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        assert_eq!(addrs, vec!["10.88.1.1/24"]);
        // A new address replaces the old one.
        links::ensure_bridge(&mut socket, "vmbr-t", Ipv4Addr::new(10, 89, 0, 1), 16, None).unwrap();
        assert_eq!(link_of("vmbr-t").unwrap().addresses, vec!["10.89.0.1/16"]);
    });
}

#[test]
fn a_link_that_is_not_a_bridge_is_already_exists() {
    in_netns(|| {
        ip(&["link", "add", "veth0", "type", "veth", "peer", "name", "veth1"]);
        let mut socket = RtSocket::open().unwrap();
        let err =
            links::ensure_bridge(&mut socket, "veth0", Ipv4Addr::new(10, 1, 0, 1), 24, None).unwrap_err();
        assert_eq!(err.code(), NetCode::AlreadyExists, "{err}");
        assert!(
            err.to_string()
                .contains("veth0 exists and is not a bridge (kind veth)"),
            "{err}"
        );
    });
}

#[test]
fn create_tap_is_a_persistent_vnet_hdr_tap_on_its_bridge() {
    in_netns(|| {
        bridge(&BridgeRequest {
            name: "vmbr-t".into(),
            address: "10.88.1.1/24".into(),
            alias: None,
        })
        .unwrap();
        let request = || TapRequest {
            name: "vmtap-t".into(),
            bridge: Some("vmbr-t".into()),
            mtu: Some(1400),
            alias: Some("vmctl device".into()),
        };
        tap(&request()).unwrap();
        // Again: the same TAP is reused, not an error.
        tap(&request()).unwrap();
        let link = link_of("vmtap-t").expect("the TAP exists after its maker closed it");
        assert_eq!(link.kind.as_deref(), Some("tun"));
        assert_eq!(link.master.as_deref(), Some("vmbr-t"));
        assert!(link.up);
        assert_eq!(link.mtu, 1400);
        let shown = ip_json(&["-d", "link", "show", "dev", "vmtap-t"]);
        let data = &shown[0]["linkinfo"]["info_data"];
        assert_eq!(data["type"], "tap");
        assert_eq!(data["pi"], false);
        assert_eq!(data["vnet_hdr"], true);
        assert_eq!(shown[0]["master"], "vmbr-t");
        // Detached, then gone.
        links::set_link(
            &mut RtSocket::open().unwrap(),
            "vmtap-t",
            &LinkChange {
                master: Some(None),
                ..LinkChange::default()
            },
        )
        .unwrap();
        assert_eq!(link_of("vmtap-t").unwrap().master, None);
        let mut socket = RtSocket::open().unwrap();
        assert!(links::delete(&mut socket, "vmtap-t").unwrap());
        assert!(
            !links::delete(&mut socket, "vmtap-t").unwrap(),
            "absent is false, not an error"
        );
        assert!(link_of("vmtap-t").is_none());
    });
}

#[test]
fn a_tap_whose_bridge_is_missing_is_not_left_behind() {
    in_netns(|| {
        let err = tap(&TapRequest {
            name: "vmtap-t".into(),
            bridge: Some("vmbr-none".into()),
            mtu: None,
            alias: None,
        })
        .unwrap_err();
        assert_eq!(err.code(), NetCode::NotFound);
        assert!(err.to_string().contains("vmbr-none"), "{}", err.to_string());
        assert!(
            link_of("vmtap-t").is_none(),
            "the TAP made before the failure is deleted again"
        );
    });
}

#[test]
fn a_tap_over_another_kind_of_link_is_already_exists() {
    in_netns(|| {
        ip(&["link", "add", "vmtap-t", "type", "veth", "peer", "name", "veth1"]);
        let err = tap(&TapRequest {
            name: "vmtap-t".into(),
            bridge: None,
            mtu: None,
            alias: None,
        })
        .unwrap_err();
        assert_eq!(err.code(), NetCode::AlreadyExists, "{err}");
        assert_eq!(
            link_of("vmtap-t").unwrap().kind.as_deref(),
            Some("veth"),
            "the other link is untouched"
        );
    });
}

#[test]
fn bad_names_and_addresses_name_their_field() {
    let err = bridge(&BridgeRequest {
        name: "a-name-longer-than-15".into(),
        address: "10.0.0.1/24".into(),
        alias: None,
    })
    .unwrap_err();
    assert_eq!(err.code(), NetCode::InvalidArgument);
    assert!(err.to_string().starts_with("name: "), "{}", err.to_string());
    for address in [
        "10.0.0.1",
        "10.0.0.1/33",
        "10.0.0/24",
        "10.0.0.1/",
        "10.0.0.1/+1",
        " 10.0.0.1/24",
    ] {
        let err = bridge(&BridgeRequest {
            name: "vmbr-x".into(),
            address: address.into(),
            alias: None,
        })
        .unwrap_err();
        assert_eq!(err.code(), NetCode::InvalidArgument, "{address}");
        assert!(err.to_string().starts_with("address: "), "{}", err.to_string());
    }
    for name in ["", ".", "..", "a/b", "a:b", "a b"] {
        assert!(check_link_name("name", name).is_err(), "{name:?}");
    }
    let err = tap(&TapRequest {
        name: "vmtap-x".into(),
        bridge: None,
        mtu: Some(10),
        alias: None,
    })
    .unwrap_err();
    assert!(err.to_string().starts_with("mtu: "), "{}", err.to_string());
}

#[test]
fn routes_of_the_main_table_with_gateway_and_device() {
    in_netns(|| {
        let mut socket = RtSocket::open().unwrap();
        links::ensure_bridge(&mut socket, "vmbr-t", Ipv4Addr::new(10, 88, 1, 1), 24, None).unwrap();
        ip(&["route", "add", "default", "via", "10.88.1.254"]);
        ip(&["route", "add", "192.0.2.0/24", "via", "10.88.1.253"]);
        let routes = links::routes(&mut socket).unwrap();
        let find = |d: &str| routes.iter().find(|r| r.destination == d).cloned();
        assert_eq!(
            find("0.0.0.0/0"),
            Some(Route {
                destination: "0.0.0.0/0".into(),
                gateway: Some("10.88.1.254".into()),
                device: Some("vmbr-t".into()),
            })
        );
        assert_eq!(
            find("192.0.2.0/24").unwrap().gateway.as_deref(),
            Some("10.88.1.253")
        );
        assert_eq!(find("10.88.1.0/24").unwrap().device.as_deref(), Some("vmbr-t"));
        // Local-table routes (the bridge's own address, broadcast) are not the main table's.
        assert!(find("10.88.1.1/32").is_none(), "{routes:?}");
    });
}

#[test]
fn nft_runs_json_in_process_and_returns_json() {
    in_netns(|| {
        let add = r#"{"nftables":[{"add":{"table":{"family":"inet","name":"t"}}},
            {"add":{"chain":{"family":"inet","table":"t","name":"c"}}},
            {"add":{"rule":{"family":"inet","table":"t","chain":"c","expr":[{"accept":null}]}}}]}"#;
        assert_eq!(nft::run(add).unwrap(), "");
        let listed: serde_json::Value = serde_json::from_str(
            &nft::run(r#"{"nftables":[{"list":{"table":{"family":"inet","name":"t"}}}]}"#).unwrap(),
        )
        .unwrap();
        let items = listed["nftables"].as_array().unwrap();
        assert!(items.iter().any(|i| i["chain"]["name"] == "c"), "{listed}");
        assert!(items.iter().any(|i| i["rule"]["chain"] == "c"), "{listed}");
        // The same seen by the nft command (by its path: under npm, PATH starts with
        // node_modules/.bin, where an unrelated npm package installs an `nft`).
        let out = Command::new("/usr/sbin/nft")
            .args(["-j", "list", "ruleset"])
            .output()
            .expect("the `nft` command (nftables) is needed by these tests");
        assert!(String::from_utf8_lossy(&out.stdout).contains(r#""name": "c""#));

        let err =
            nft::run(r#"{"nftables":[{"delete":{"table":{"family":"inet","name":"absent"}}}]}"#).unwrap_err();
        assert_eq!(err.code(), NetCode::NotFound, "{err}");
        assert!(err.to_string().contains("No such file or directory"), "{err}");
        let err = nft::run("add table inet t2").unwrap_err();
        assert_eq!(err.code(), NetCode::InvalidArgument, "{err}");
        assert!(err.to_string().starts_with("commands: "), "{err}");
        let err = nft::run(r#"{"nftables":[{"add":{"chain":{"family":"inet","table":"t"}}}]}"#).unwrap_err();
        assert_eq!(
            err.code(),
            NetCode::InvalidArgument,
            "a malformed command is the caller's: {err}"
        );
        // A failed transaction changed nothing.
        let half = r#"{"nftables":[{"add":{"chain":{"family":"inet","table":"t","name":"d"}}},
            {"delete":{"chain":{"family":"inet","table":"t","name":"absent"}}}]}"#;
        assert!(nft::run(half).is_err());
        let listed = nft::run(r#"{"nftables":[{"list":{"table":{"family":"inet","name":"t"}}}]}"#).unwrap();
        assert!(
            !listed.contains(r#""name": "d""#) && !listed.contains(r#""name":"d""#),
            "{listed}"
        );
    });
}

#[test]
fn sysctls_are_the_namespace_s_own() {
    in_netns(|| {
        sysctl::write("ipv4/ip_forward", "1").unwrap();
        assert_eq!(sysctl::read("ipv4/ip_forward").unwrap(), "1");
        ip(&["link", "add", "br.x", "type", "bridge"]);
        sysctl::write("ipv4/conf/br.x/route_localnet", "1").unwrap();
        assert_eq!(sysctl::read("ipv4/conf/br.x/route_localnet").unwrap(), "1");
        let err = sysctl::write("ipv4/conf/absent/route_localnet", "1").unwrap_err();
        assert_eq!(err.code(), NetCode::NotFound, "{err}");
    });
    for key in ["", "../../etc/passwd", "ipv4//ip_forward", "ipv4/./x"] {
        let err = sysctl::write(key, "1").unwrap_err();
        assert_eq!(err.code(), NetCode::InvalidArgument, "{key:?}: {err}");
    }
    assert_eq!(
        sysctl::write("ipv4/ip_forward", "1\n0").unwrap_err().code(),
        NetCode::InvalidArgument
    );
}

#[test]
fn the_vmm_opens_the_persistent_tap_by_name_with_the_same_flags() {
    in_netns(|| {
        tap(&TapRequest {
            name: "vmtap-vmm".into(),
            bridge: None,
            mtu: None,
            alias: None,
        })
        .unwrap();
        // As the VMM does (crates/devices virtio/net/tap.rs): the same name and flags.
        // SAFETY: opens a constant path; the result is checked.
        let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        assert!(fd >= 0, "{}", io::Error::last_os_error());
        // SAFETY: ifreq is plain data; TUNSETIFF reads and writes one through the pointer.
        let r = unsafe {
            let mut request: libc::ifreq = std::mem::zeroed();
            for (slot, byte) in request.ifr_name.iter_mut().zip(b"vmtap-vmm") {
                *slot = *byte as libc::c_char;
            }
            request.ifr_ifru.ifru_flags =
                (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as libc::c_short;
            libc::ioctl(fd, libc::TUNSETIFF, &mut request)
        };
        assert_eq!(
            r,
            0,
            "TUNSETIFF on the persistent TAP: {}",
            io::Error::last_os_error()
        );
        // Held open, it has a carrier; the device outlives the descriptor (persistent).
        let shown = ip_json(&["link", "show", "dev", "vmtap-vmm"]);
        assert!(
            shown[0]["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "LOWER_UP"),
            "{shown}"
        );
        // SAFETY: closes the descriptor opened above.
        unsafe { libc::close(fd) };
        assert!(link_of("vmtap-vmm").is_some());
    });
}
