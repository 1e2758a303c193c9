// The daemon's unix socket: a private parent directory, no second daemon on one socket,
// stale socket files replaced, and mode 0600 from the moment the socket exists.
import { mkdirSync, statSync, unlinkSync, chmodSync } from "node:fs";
import { connect } from "node:net";
import { dirname } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { VmctlError } from "@vmctl/core";

/** Whether something accepts connections on `path`. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: boolean): void => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // accepted but slow: someone is there
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Makes the socket's directory (0700) and clears the way: refuses when a daemon answers
 * on `path`, removes a stale socket file nobody answers on.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return; // nothing there
  }
  if (!stat.isSocket()) {
    throw new VmctlError("FAILED_PRECONDITION", `${path} exists and is not a socket; refusing to replace it`);
  }
  if (await socketAnswers(path)) {
    throw new VmctlError("ALREADY_EXISTS", `another vmctld is already serving on ${path}`);
  }
  unlinkSync(path);
}

/**
 * Binds `server` to the unix socket. The umask is 0177 while the socket is created, so
 * it is born 0600 (no moment where others may connect); chmod makes sure afterwards.
 */
export async function bindUnixSocket(server: grpc.Server, path: string): Promise<void> {
  const previous = process.umask(0o177);
  try {
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  } catch (err) {
    const e = err as Error;
    if (/EADDRINUSE|address already in use/i.test(e.message)) {
      throw new VmctlError("ALREADY_EXISTS", `another vmctld is already serving on ${path}`, { cause: err });
    }
    throw VmctlError.from(err, `binding ${path}`);
  } finally {
    process.umask(previous);
  }
  chmodSync(path, 0o600);
}
