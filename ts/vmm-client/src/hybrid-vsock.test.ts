// The hybrid vsock handshake against a stand-in VMM socket (a unix server answering as the
// VMM does): the guest's first bytes often arrive in the same read as the `OK` line, or
// right behind it, before the caller reads; none may be lost (an HTTP/2 server's SETTINGS
// lost that way is a "Protocol error" for grpc-js, seen through the nested host).
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { connectVsock } from "./hybrid-vsock.js";

/** A unix socket answering `CONNECT <port>` with `OK 1234`, then `first` in the same write and `second` a moment later. */
async function fakeVmm(path: string, first: string, second: string): Promise<Server> {
  const server = createServer((socket) => {
    socket.once("data", () => {
      socket.write(`OK 1234\n${first}`);
      setTimeout(() => socket.write(second), 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

test("bytes behind the OK line, and those arriving before the caller reads, all reach the caller", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-hybrid-vsock-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = await fakeVmm(join(dir, "v.sock"), "first;", "second;");
  t.teardown(() => server.close());
  const { socket, hostPort } = await connectVsock(join(dir, "v.sock"), 1024);
  t.is(hostPort, 1234);
  // The caller is slow to read: both writes have arrived by then.
  await sleep(200);
  let received = "";
  socket.setEncoding("utf8").on("data", (d: string) => (received += d));
  socket.resume();
  for (let i = 0; i < 50 && received !== "first;second;"; i++) await sleep(10);
  t.is(received, "first;second;");
  socket.destroy();
});
