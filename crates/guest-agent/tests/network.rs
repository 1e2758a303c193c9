//! The network as init sets it up: in a network namespace the test makes, with one end of
//! a veth pair standing for the VM's NIC (an Ethernet link, as virtio-net's eth0 is) and
//! the other end, the "host", in a second namespace. The test uses `ip` to make the
//! namespaces and to check the result; the agent uses netlink.

mod common;

use std::process::Command;

use common::Agent;
use vmctl_guest_agent::pb;

/// A network namespace, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("vmctl-agent-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
        ip(&["netns", "add", &name]);
        Self(name)
    }

    /// `ip -n <it> ARGS`, its stdout.
    fn ip(&self, args: &[&str]) -> String {
        ip(&[&["-n", &self.0], args].concat())
    }

    fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ip(&[&["-j"], args].concat())).expect("ip -j prints JSON")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).output();
    }
}

fn ip(args: &[&str]) -> String {
    common::host_tool("ip", "iproute2", args)
}

#[tokio::test]
async fn init_configures_the_first_ethernet_interface() {
    let (netns, host) = (Netns::new("net"), Netns::new("host"));
    // Made before the agent starts, as a VM's NIC is; a second one must be left alone.
    for (nic, peer) in [("eth0", "peer0"), ("eth1", "peer1")] {
        netns.ip(&[
            "link", "add", nic, "type", "veth", "peer", "name", peer, "netns", &host.0,
        ]);
    }
    host.ip(&["addr", "add", "10.77.0.1/24", "dev", "peer0"]);
    host.ip(&["link", "set", "peer0", "up"]);
    let console = tempfile::NamedTempFile::new().unwrap();
    let mut agent = Agent::start_in(
        Some(&netns.0),
        &["--net", "10.77.0.5/24,10.77.0.1,1400", "--dns", "10.77.0.1"],
        Some(console.reopen().unwrap()),
    )
    .await;

    let links = netns.json(&["addr", "show"]);
    let link = |name: &str| {
        links
            .iter()
            .find(|l| l["ifname"] == name)
            .unwrap_or_else(|| panic!("{name} in {links:?}"))
            .clone()
    };
    let (lo, eth0, eth1) = (link("lo"), link("eth0"), link("eth1"));
    let up = |l: &serde_json::Value| l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
    assert!(up(&lo), "lo is up: {lo}");
    assert!(up(&eth0), "eth0 is up: {eth0}");
    assert_eq!(eth0["mtu"], 1400);
    let inet: Vec<_> = eth0["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| {
            (
                a["local"].as_str().unwrap().to_owned(),
                a["prefixlen"].as_u64().unwrap(),
                a["broadcast"].clone(),
            )
        })
        .collect();
    assert_eq!(inet, [("10.77.0.5".to_owned(), 24, "10.77.0.255".into())]);
    assert!(!up(&eth1), "only the first interface is configured: {eth1}");
    assert!(eth1["addr_info"].as_array().unwrap().is_empty(), "{eth1}");

    let routes = netns.json(&["route", "show", "default"]);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert_eq!(routes[0]["gateway"], "10.77.0.1");
    assert_eq!(routes[0]["dev"], "eth0");
    // The gateway answers from inside: the link really works.
    let ping = agent
        .run(common::command(&[
            "/bin/busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            "10.77.0.1",
        ]))
        .await;
    assert_eq!(
        ping.status(),
        pb::exited::Status::Code(0),
        "{}{}",
        ping.stdout(),
        ping.stderr()
    );
    common::shut_down(&mut agent).await;

    // One line on the console says what was done (no root here: resolv.conf untouched).
    let console = std::fs::read_to_string(console.path()).unwrap();
    assert!(
        console.contains(
            "vmctl-agent: network: eth0 10.77.0.5/24 via 10.77.0.1 mtu 1400; \
             no root assembled: /etc/resolv.conf left alone\n"
        ),
        "{console}"
    );
}

#[tokio::test]
async fn settings_come_from_the_kernel_command_line_too() {
    let parsed = vmctl_guest_agent::net::from_cmdline(
        "console=ttyS0 vmctl.net=10.77.1.5/16,10.77.0.1 vmctl.dns=10.77.0.1,1.1.1.1 rdinit=/init",
    )
    .unwrap();
    // The same NetConfig --net gives: what init applies either way.
    let config = vmctl_guest_agent::config::Config::parse(
        [
            "vmctl-agent",
            "--net",
            "10.77.1.5/16,10.77.0.1",
            "--dns",
            "10.77.0.1,1.1.1.1",
        ]
        .map(Into::into),
    )
    .unwrap();
    assert_eq!(parsed.0, config.init_options.network);
    assert_eq!(parsed.1, config.init_options.dns);
}

#[tokio::test]
async fn a_failure_is_on_the_console_and_the_agent_still_serves() {
    // No Ethernet interface at all: only lo (and whatever tunnels the host's modules add).
    let netns = Netns::new("nonic");
    let console = tempfile::NamedTempFile::new().unwrap();
    let mut agent = Agent::start_in(
        Some(&netns.0),
        &["--net", "10.77.0.5/24,10.77.0.1"],
        Some(console.reopen().unwrap()),
    )
    .await;
    // It serves: exec works, to look into what went wrong.
    let out = agent.run(common::command(&["true"])).await;
    assert_eq!(out.status(), pb::exited::Status::Code(0));
    let lo = netns.json(&["link", "show", "lo"]);
    assert!(
        lo[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "lo is up anyway: {lo:?}"
    );
    common::shut_down(&mut agent).await;
    let console = std::fs::read_to_string(console.path()).unwrap();
    assert!(
        console.contains(
            "vmctl-agent: network: find the network interface: no Ethernet interface; \
             the workload runs without a network\n"
        ),
        "{console}"
    );
}
