// The host side of the VMM's hybrid vsock (Firecracker's scheme): the VM's vsock device
// listens on a unix socket; a host process connects, writes `CONNECT <port>\n`, and the
// VMM answers `OK <host-port>\n` once the guest accepted, after which the socket is a
// byte stream to the guest's port. (A guest connecting to host port N reaches whoever
// listens on `<uds>_N` instead.)
import { rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { VmctlError } from "@vmctl/core/contract";

/** The longest answer line the VMM sends ("OK 4294967295\n" and a little room). */
const MAX_ANSWER_BYTES = 64;

/** A stream to a guest port, and the host-side port the VMM gave it (its `OK <port>`). */
export interface VsockConnection {
  readonly socket: Socket;
  readonly hostPort: number;
}

export interface VsockConnectOptions {
  /** Give up when the guest has not accepted within this long (default 5 s: the VMM's own wait). */
  readonly timeoutMs?: number;
}

/**
 * A stream to `port` in the guest behind the VMM's vsock socket `udsPath`, paused (pipe
 * it, or resume it once reading: nothing the guest sends is lost meanwhile). Rejects with
 * UNAVAILABLE when nothing listens there or the guest refuses (nobody listening on the
 * port, or the VMM reset the connection), DEADLINE_EXCEEDED after `timeoutMs`.
 */
export function connectVsock(udsPath: string, port: number, options: VsockConnectOptions = {}): Promise<VsockConnection> {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff_ffff) {
    return Promise.reject(new VmctlError("INVALID_ARGUMENT", `port: ${port} is not a vsock port (0 to 4294967295)`, { details: { field: "port" } }));
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = connect(udsPath);
    let answer = Buffer.alloc(0);
    const fail = (err: VmctlError): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new VmctlError("DEADLINE_EXCEEDED", `vsock ${udsPath}: the guest did not accept port ${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once("connect", () => socket.write(`CONNECT ${port}\n`));
    socket.on("error", (err) => fail(new VmctlError("UNAVAILABLE", `vsock ${udsPath}: ${err.message}`, { cause: err })));
    socket.on("close", () => fail(new VmctlError("UNAVAILABLE", `vsock ${udsPath}: port ${port} refused (nothing listens on it in the guest)`)));
    const onData = (chunk: Buffer): void => {
      answer = Buffer.concat([answer, chunk]);
      const end = answer.indexOf(0x0a);
      if (end < 0) {
        if (answer.length > MAX_ANSWER_BYTES) fail(new VmctlError("UNAVAILABLE", `vsock ${udsPath}: not a vsock answer: ${JSON.stringify(answer.toString("latin1"))}`));
        return;
      }
      const line = answer.subarray(0, end).toString("latin1");
      const ok = /^OK (\d+)$/.exec(line);
      if (!ok) return fail(new VmctlError("UNAVAILABLE", `vsock ${udsPath}: port ${port} refused: ${JSON.stringify(line)}`));
      clearTimeout(timer);
      // Paused before the listener goes: a flowing socket with no 'data' listener drops
      // what arrives (the guest's first bytes, e.g. an HTTP/2 server's SETTINGS, often come
      // right behind the answer) until the caller reads or pipes it.
      socket.pause();
      socket.off("data", onData);
      socket.removeAllListeners("error");
      socket.removeAllListeners("close");
      // Bytes the guest sent right behind the answer belong to the stream.
      const rest = answer.subarray(end + 1);
      if (rest.length > 0) socket.unshift(rest);
      // The caller handles the stream's errors from here on.
      resolve({ socket, hostPort: Number(ok[1]) });
    };
    socket.on("data", onData);
  });
}

/**
 * A unix socket at `listenPath` whose every connection is relayed to `port` in the guest
 * behind the VMM's vsock socket `udsPath` (through {@link connectVsock}): how a client that
 * only dials unix sockets (grpc-js) reaches a guest service. A connection the guest
 * refuses (or that times out) is closed at once; either side closing closes the other.
 * A stale file at `listenPath` is replaced. Close the returned server to stop relaying
 * (connections in flight are destroyed too) and remove the socket file.
 */
export async function relayVsock(listenPath: string, udsPath: string, port: number, options: VsockConnectOptions = {}): Promise<VsockRelay> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.pause();
    client.on("error", () => undefined);
    client.on("close", () => open.delete(client));
    connectVsock(udsPath, port, options).then(
      ({ socket: guest }) => {
        if (client.destroyed) {
          guest.destroy();
          return;
        }
        open.add(guest);
        const end = (): void => {
          client.destroy();
          guest.destroy();
          open.delete(guest);
        };
        client.on("error", end).on("close", end);
        guest.on("error", end).on("close", end);
        client.pipe(guest);
        guest.pipe(client);
        client.resume();
      },
      () => client.destroy(),
    );
  });
  rmSync(listenPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    path: listenPath,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        open.clear();
        server.close(() => {
          rmSync(listenPath, { force: true });
          resolve();
        });
      }),
  };
}

/** A running relay (see {@link relayVsock}). */
export interface VsockRelay {
  /** The unix socket clients dial. */
  readonly path: string;
  /** Stops accepting, destroys the connections in flight, removes the socket file. */
  close(): Promise<void>;
}
