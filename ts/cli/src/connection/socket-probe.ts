// What a failed connection to vmctld's socket means, told apart by the kernel's answer
// to a plain connect(): nothing there (start a daemon), nobody listening (a stale file:
// start one), or the socket is there and refuses us — then starting another daemon would
// only fail further on (EACCES on its log or state), so the CLI says so and starts nothing.
import { connect } from "node:net";

export type SocketProbe = "answers" | "missing" | "stale" | "denied";

/** Connects once to the unix socket at `path` and reports what happened (no gRPC spoken). */
export function probeSocket(path: string, timeoutMs = 2000): Promise<SocketProbe> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (result: SocketProbe): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done("answers"), timeoutMs);
    socket.once("connect", () => done("answers"));
    socket.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EACCES" || err.code === "EPERM") done("denied");
      else if (err.code === "ECONNREFUSED") done("stale");
      else done("missing");
    });
  });
}

/** The one line for a socket that refuses us. */
export function permissionDenied(path: string): string {
  return `permission denied on ${path}: run as root (or as the user vmctld runs as), or point --socket at a daemon of your own`;
}
