// virtio-vsock through real KVM, driven from TypeScript: the `virtio-vsock` test guest
// connects out to a host listener at `<uds>_<port>` and echoes a host connection made with
// `CONNECT <port>\n` on `<uds>`; real unix sockets on the host side, the device's metrics
// checked, PutVsock's refusals, and the socket's life (made at Start, gone with the VMM).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { connectVsock, relayVsock, requireVmmBinary, VmmProcess, type VsockConnection } from "@vmctl/vmm-client";
import { bootGuest, requireGuestElf } from "../guests/harness.js";

const GUEST_CID = 42;
const HOST_PORT = 1234;
const GUEST_PORT = 5000;
/** What the guest sends on its connection (tests/guests/tests/virtio_vsock.c). */
const GUEST_LINE = "hello from the guest\n";
const HOST_REPLY = "hello from the host\n";
const PING = "ping from the host over vsock\n";

function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-vsock-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reads from `socket` until `done(received)` holds; fails on end of file first. */
function readUntil(socket: Socket, done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = "";
    const onData = (chunk: Buffer): void => {
      received += chunk.toString("utf8");
      if (done(received)) {
        cleanup();
        resolve(received);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection ended after ${JSON.stringify(received)}`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      // Paused again: what comes next waits for the next reader instead of being dropped.
      socket.pause();
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
    };
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.resume();
  });
}

/** The guest's peer: a listener at `<uds>_<port>` that reads a line and answers one. */
async function hostListener(path: string): Promise<{ server: Server; line: Promise<string> }> {
  let resolveLine: (line: string) => void = () => undefined;
  let rejectLine: (err: Error) => void = () => undefined;
  const line = new Promise<string>((resolve, reject) => {
    resolveLine = resolve;
    rejectLine = reject;
  });
  const server = createServer((socket) => {
    readUntil(socket, (r) => r.includes("\n"))
      .then((got) => {
        resolveLine(got);
        socket.end(HOST_REPLY);
      })
      .catch(rejectLine);
  });
  server.listen(path);
  await once(server, "listening");
  return { server, line };
}

/**
 * The host side of a host-initiated connection (@vmctl/vmm-client's connectVsock: CONNECT,
 * OK), then a line echoed back. A CONNECT the guest cannot take yet (its driver is not up,
 * or nothing listens on the port yet) is refused, so it is tried again, as any client of a
 * hybrid vsock must until the guest listens.
 */
async function connectAndEcho(uds: string): Promise<{ echo: string; attempts: number; hostPort: number }> {
  for (let attempts = 1; ; attempts++) {
    let connection: VsockConnection;
    try {
      connection = await connectVsock(uds, GUEST_PORT, { timeoutMs: 5000 });
    } catch (err) {
      if (!(err instanceof VmctlError) || err.code !== "UNAVAILABLE" || attempts >= 200) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    const { socket, hostPort } = connection;
    try {
      return { echo: await pingEcho(socket), attempts, hostPort };
    } finally {
      socket.end();
    }
  }
}

/** Writes PING on `socket` and reads as many bytes back: the guest's echo. */
function pingEcho(socket: Socket): Promise<string> {
  socket.on("error", () => undefined);
  socket.write(PING);
  return readUntil(socket, (r) => r.length >= PING.length);
}

/** The virtio-vsock test guest, a drive first (the vsock takes the slot after the drives). */
function vsockGuest(uds: string, disk: string, whileRunning: () => Promise<void>): Parameters<typeof bootGuest>[0] {
  return {
    test: "virtio-vsock",
    drives: [{ driveId: "d", pathOnHost: disk, isRootDevice: true }],
    vsock: { guestCid: GUEST_CID, udsPath: uds },
    args: [`vmctl.cid=${GUEST_CID}`, `vmctl.host_port=${HOST_PORT}`, `vmctl.guest_port=${GUEST_PORT}`],
    timeoutMs: 60_000,
    whileRunning,
  };
}

test("guest to host and host to guest over vsock: bytes both ways, counted in GetMetrics; the socket is gone after the VMM exits", async (t) => {
  const { dir, cleanup } = tempDir();
  const uds = join(dir, "v.sock");
  const disk = join(dir, "d.img");
  writeFileSync(disk, Buffer.alloc(64 * 512));
  const listener = await hostListener(`${uds}_${HOST_PORT}`);
  let hostSide: { echo: string; attempts: number; hostPort: number } | undefined;
  try {
    const result = await bootGuest(
      vsockGuest(uds, disk, async () => {
        hostSide = await connectAndEcho(uds);
      }),
    );
    t.is(result.state.exit?.reason, "guest-exit", JSON.stringify(result.state));
    t.is(result.state.exit?.code, 0, result.console);
    const f = result.facts;
    t.is(f.get("vsock_dev"), "1");
    t.is(f.get("vsock_addr"), "0xd0001000");
    t.is(f.get("vsock_irq"), "6");
    t.is(f.get("guest_cid"), String(GUEST_CID));
    // Guest → host: the listener at <uds>_<port> got the guest's line, the guest the reply.
    t.is(await listener.line, GUEST_LINE);
    t.is(f.get("host_reply"), HOST_REPLY.trimEnd());
    // Host → guest: CONNECT answered OK <host-side port>, the line echoed byte for byte.
    t.is(f.get("host_connect_port"), String(hostSide?.hostPort));
    t.is(hostSide?.echo, PING);
    t.is(f.get("echoed_bytes"), String(PING.length));

    const v = result.metrics.vsock;
    t.truthy(v, JSON.stringify(result.metrics));
    t.is(v?.hostConnectionsOpened, 1);
    t.is(v?.guestConnectionsOpened, 1);
    t.is(v?.bytesFromGuest, GUEST_LINE.length + PING.length);
    t.is(v?.bytesToGuest, HOST_REPLY.length + PING.length);
    t.is(v?.connectionsRefused, 0);
    t.is(v?.packetsDropped, 0);
    t.true((v?.rstsSent ?? 0) >= 1, "the guest's SHUTDOWN of both directions is answered RST");
    t.true((v?.txPackets ?? 0) >= 4 && (v?.rxPackets ?? 0) >= 4, JSON.stringify(v));
    t.false(v?.failed);
    t.false(existsSync(uds), "the VMM removed its vsock socket");
  } finally {
    listener.server.close();
    cleanup();
  }
});

/**
 * Through relayVsock: a plain unix-socket client (what grpc-js is) reaches the guest's port.
 * A connection made before the guest listens is closed by the relay; the client retries.
 */
async function relayAndEcho(relayPath: string): Promise<{ echo: string; attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const socket = connect(relayPath);
    try {
      return { echo: await pingEcho(socket), attempts };
    } catch (err) {
      if (attempts >= 200) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      socket.destroy();
    }
  }
}

test("relayVsock: a unix socket whose connections reach the guest's port (a stale file replaced); closing it removes the socket", async (t) => {
  const { dir, cleanup } = tempDir();
  const uds = join(dir, "v.sock");
  const relayPath = join(dir, "relay.sock");
  const disk = join(dir, "d.img");
  writeFileSync(disk, Buffer.alloc(64 * 512));
  writeFileSync(relayPath, "a stale file the relay replaces");
  const listener = await hostListener(`${uds}_${HOST_PORT}`);
  let relayed: { echo: string; attempts: number } | undefined;
  try {
    const result = await bootGuest(
      vsockGuest(uds, disk, async () => {
        const relay = await relayVsock(relayPath, uds, GUEST_PORT, { timeoutMs: 5000 });
        try {
          relayed = await relayAndEcho(relay.path);
        } finally {
          await relay.close();
        }
      }),
    );
    t.is(result.state.exit?.code, 0, result.console);
    t.is(relayed?.echo, PING, "the guest echoed what came through the relay");
    t.is(result.facts.get("echoed_bytes"), String(PING.length));
    t.false(existsSync(relayPath), "close() removed the relay's socket");
  } finally {
    listener.server.close();
    cleanup();
  }
});

test("PutVsock replaces before Start and is refused after it; the socket exists from Start until the VMM exits", async (t) => {
  const { dir, cleanup } = tempDir();
  const first = join(dir, "first.sock");
  const uds = join(dir, "v.sock");
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const { client } = vmm;
    t.is(await client.getVsock(), undefined);
    t.deepEqual(await client.putVsock({ guestCid: 3, udsPath: first }), { guestCid: 3, udsPath: first });
    t.deepEqual(await client.putVsock({ guestCid: 7, udsPath: uds }), { guestCid: 7, udsPath: uds });
    t.deepEqual(await client.getVsock(), { guestCid: 7, udsPath: uds });
    t.false(existsSync(first) || existsSync(uds), "nothing is created before Start");

    await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
    await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "console=ttyS0 vmctl.test=idle" });
    t.is((await client.start()).phase, "running");
    t.true(existsSync(uds), "the socket is made at Start");
    t.false(existsSync(first));

    const err = await t.throwsAsync(client.putVsock({ guestCid: 9, udsPath: join(dir, "late.sock") }), { instanceOf: VmctlError });
    t.is(err?.code, "FAILED_PRECONDITION");
    t.deepEqual(await client.getVsock(), { guestCid: 7, udsPath: uds });
    t.false(existsSync(join(dir, "late.sock")));
  } finally {
    await vmm.close();
  }
  try {
    t.false(existsSync(uds), "the socket is gone once the VMM exited (SIGTERM while running)");
  } finally {
    cleanup();
  }
});

test("a bad guest CID or a socket path too long for sun_path is INVALID_ARGUMENT naming the field; the limits publish both bounds", async (t) => {
  const { dir, cleanup } = tempDir();
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const { client } = vmm;
    const limits = (await client.getInfo()).limits;
    t.is(limits?.minGuestCid, 3);
    t.is(limits?.maxGuestCid, 2 ** 32 - 2);
    t.is(limits?.udsPathMaxLen, 107);
    t.is(limits?.maxDrives, 17, "one of the 18 virtio-mmio slots is the vsock's");

    for (const guestCid of [0, 2, 2 ** 32 - 1]) {
      const err = await t.throwsAsync(client.putVsock({ guestCid, udsPath: join(dir, "v.sock") }), { instanceOf: VmctlError });
      t.is(err?.code, "INVALID_ARGUMENT");
      t.is(err?.details.field, "vsock.guest_cid");
      t.regex(err?.message ?? "", /^vsock\.guest_cid: /);
    }
    const long = join(dir, "x".repeat(108 - dir.length - 1));
    t.is(Buffer.byteLength(long), 108);
    for (const udsPath of [long, "", join(dir, "missing", "v.sock"), dir]) {
      const err = await t.throwsAsync(client.putVsock({ guestCid: 3, udsPath }), { instanceOf: VmctlError });
      t.is(err?.code, "INVALID_ARGUMENT", udsPath);
      t.is(err?.details.field, "vsock.uds_path");
      t.regex(err?.message ?? "", /^vsock\.uds_path: /);
    }
    // Nothing was stored; a corrected request is accepted.
    t.is(await client.getVsock(), undefined);
    const ok = join(dir, "x".repeat(107 - dir.length - 1));
    t.deepEqual(await client.putVsock({ guestCid: 3, udsPath: ok }), { guestCid: 3, udsPath: ok });
  } finally {
    await vmm.close();
    cleanup();
  }
});
