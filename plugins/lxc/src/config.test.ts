import test from "ava";
import { baseConfig, CONFIG_END_MARKER, rootfsConfig, serviceBlock, type ConfigOptions } from "./config.js";

const opts: ConfigOptions = {
  serviceId: "svc-1",
  hostname: "svc-1",
  commonConf: "/usr/share/lxc/config/common.conf",
  cgroup: "v1",
  initPidFile: "/srv/run dir/init.pid",
  labels: { "vmctl.io/owner": "me\nlxc.x = y" },
};

function keys(config: string): string[] {
  return config.split("\n").filter((l) => l.startsWith("lxc."));
}

test("a minimal rootfs config: common defaults, empty network, read-only rootfs with a tmpfs /tmp, the pid hook", (t) => {
  const config = rootfsConfig({ rootfs: "/srv/rootfs", args: ["true"] }, opts);
  t.deepEqual(keys(config), [
    "lxc.include = /usr/share/lxc/config/common.conf",
    "lxc.net.0.type = empty",
    "lxc.autodev = 1",
    "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
    "lxc.rootfs.path = dir:/srv/rootfs",
    "lxc.uts.name = svc-1",
    "lxc.rootfs.options = ro",
    "lxc.environment = PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "lxc.mount.entry = tmpfs tmp tmpfs rw,nosuid,nodev,mode=1777,create=dir 0 0",
    `lxc.hook.start-host = /bin/sh -c 'echo "$LXC_PID" > "$0.tmp" && mv -f "$0.tmp" "$0"' '/srv/run dir/init.pid'`,
  ]);
  t.true(config.trimEnd().endsWith(CONFIG_END_MARKER));
  // A label cannot add a config key: it is a comment on one line.
  t.true(config.includes("# label vmctl.io/owner=me lxc.x = y\n"));
});

test("env, workdir, mounts and v1 limits", (t) => {
  const block = serviceBlock(
    {
      rootfs: "/r",
      args: ["true"],
      env: { PATH: "/bin", A: "hello world" },
      workdir: "/srv",
      readonlyRootfs: false,
      mounts: [
        { source: "/host/data", destination: "/data", readOnly: true },
        { source: "/host/tmp", destination: "/tmp" },
      ],
      resources: { memoryMiB: 64, cpus: 1.5, pids: 40 },
    },
    { ...opts, commonConf: undefined },
  );
  t.deepEqual(keys(block).slice(0, -1), [
    "lxc.uts.name = svc-1",
    "lxc.init.cwd = /srv",
    "lxc.environment = PATH=/bin",
    "lxc.environment = A=hello world",
    "lxc.mount.entry = /host/data data none bind,ro,create=dir 0 0",
    "lxc.mount.entry = /host/tmp tmp none bind,create=dir 0 0",
    "lxc.cgroup.memory.limit_in_bytes = 67108864",
    "lxc.cgroup.cpu.cfs_period_us = 100000",
    "lxc.cgroup.cpu.cfs_quota_us = 150000",
    "lxc.cgroup.pids.max = 40",
  ]);
});

test("v2 limits go to lxc.cgroup2 keys", (t) => {
  const block = serviceBlock({ rootfs: "/r", args: ["true"], resources: { memoryMiB: 1, cpus: 0.25, pids: 5 } }, { ...opts, cgroup: "v2" });
  t.deepEqual(keys(block).filter((l) => l.startsWith("lxc.cgroup")), [
    "lxc.cgroup2.memory.max = 1048576",
    "lxc.cgroup2.cpu.max = 25000 100000",
    "lxc.cgroup2.pids.max = 5",
  ]);
});

test("a template's rootfs is writable by default and the base has no rootfs.path (the template sets it)", (t) => {
  t.false(baseConfig(opts).includes("lxc.rootfs.path"));
  const block = serviceBlock({ template: "busybox", args: ["true"] }, opts);
  t.false(block.includes("lxc.rootfs.options"));
  t.false(block.includes("tmpfs tmp"));
  t.true(serviceBlock({ template: "busybox", args: ["true"], readonlyRootfs: true }, opts).includes("lxc.rootfs.options = ro"));
});

test("on a network: one veth on its bridge under the engine's device name, the leased address with its broadcast, gateway, MAC, MTU; the resolv.conf mount", (t) => {
  const network = {
    network: "web",
    bridge: "vmbr-0123456789",
    address: "10.50.0.7",
    prefixLength: 24,
    gateway: "10.50.0.1",
    dns: ["9.9.9.9"],
    mac: "02:AB:00:00:00:07",
    hostDevice: "vmtap-0123abcde",
    mtu: 1400,
  };
  const config = rootfsConfig({ rootfs: "/srv/rootfs", args: ["true"] }, { ...opts, network, resolvConf: "/srv/run/resolv.conf" });
  t.deepEqual(keys(config).filter((l) => l.startsWith("lxc.net.")), [
    "lxc.net.0.type = veth",
    "lxc.net.0.link = vmbr-0123456789",
    "lxc.net.0.flags = up",
    "lxc.net.0.name = eth0",
    "lxc.net.0.veth.pair = vmtap-0123abcde",
    "lxc.net.0.hwaddr = 02:ab:00:00:00:07",
    "lxc.net.0.mtu = 1400",
    "lxc.net.0.ipv4.address = 10.50.0.7/24 10.50.0.255",
    "lxc.net.0.ipv4.gateway = 10.50.0.1",
  ]);
  t.false(config.includes("lxc.net.0.type = empty"));
  t.true(config.includes("lxc.mount.entry = /srv/run/resolv.conf etc/resolv.conf none bind,ro,create=file 0 0"));
  // The base carries it, so lxc-create sees it too (a template extends the base).
  t.true(baseConfig({ ...opts, network }).includes("lxc.net.0.type = veth"));
  t.true(rootfsConfig({ rootfs: "/srv/rootfs", args: ["true"] }, { ...opts, network: { ...network, address: "10.60.0.9", prefixLength: 20 } }).includes("ipv4.address = 10.60.0.9/20 10.60.15.255"));
  // Nothing from the attachment reaches a config line unchecked (a further key would get in).
  for (const [field, bad] of [
    ["bridge", "br0\nlxc.x = y"],
    ["hostDevice", "vmtap-toolongname0"],
    ["mac", "02:00:00:00:00"],
    ["address", "10.0.0.1 lxc"],
    ["gateway", "x"],
    ["prefixLength", 33],
    ["mtu", 10],
    ["dns", ["1.1.1.1", "one.one"]],
  ] as const) {
    const err = t.throws(() => baseConfig({ ...opts, network: { ...network, [field]: bad } }), undefined, field);
    t.is((err as { details?: { field?: string } }).details?.field, field === "dns" ? "network.dns[1]" : `network.${field}`);
  }
});
