// The guest side of EC2, which moto does not have: moto stores user data but runs
// nothing, and flips an instance to "stopped" or "terminated" at once. This simulator
// plays what a real instance would do, so the plugin is tested unchanged (it has no
// test-only branch; it only gets the simulator's endpoint):
//
// - It polls moto (DescribeInstances, state pending/running) and "boots" each new
//   instance: fetches its user data (DescribeInstanceAttribute userData) and runs it
//   with `sh` on the host, in a temp dir, as the leader of its own process group, with
//   `poweroff`/`shutdown` on PATH that ask for an instance-initiated shutdown.
// - An instance-initiated shutdown (the guest ran `poweroff`): the OS shutdown below,
//   then StopInstances or TerminateInstances as the instance's
//   InstanceInitiatedShutdownBehavior says.
// - An instance stopped or terminated by someone else: the OS shutdown — SIGTERM to the
//   process group, SIGKILL after `graceMs` — or SIGKILL at once for StopInstances Force.
// - It fronts moto with a small HTTP proxy (its `endpoint`, which the plugin is given):
//   every request is forwarded untouched, except that DescribeInstances shows an
//   instance whose guest processes still live as "stopping"/"shutting-down" rather than
//   moto's immediate "stopped"/"terminated" — as EC2 does while the guest shuts down.
//   Without that, the plugin would see "stopped" while the guest still uploads.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  EC2Client,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { MOTO_CREDENTIALS, MOTO_REGION } from "./moto.js";

export interface SimulatorOptions {
  readonly motoEndpoint: string;
  /** Where guests get their temp dirs. */
  readonly dir: string;
  /** How often moto is polled for new and stopped instances (default 50 ms). */
  readonly pollMs?: number;
  /** SIGTERM → SIGKILL delay of an OS shutdown (default 1000 ms). */
  readonly graceMs?: number;
}

interface Guest {
  readonly id: string;
  readonly dir: string;
  readonly child: ChildProcess;
  readonly behavior: string;
  /** Guest processes may still run (the process group has a live member). */
  alive: boolean;
  forced: boolean;
  shutdown?: Promise<void>;
  /** The guest's own Stop/Terminate call while in flight: API halts wait for it (see the proxy). */
  initiating?: Promise<void>;
}

const LIVE_STATES = new Set(["pending", "running"]);

export class InstanceSimulator {
  /** The endpoint to give the plugin (a proxy in front of moto). */
  readonly endpoint: string;
  readonly #o: Required<SimulatorOptions>;
  readonly #ec2: EC2Client;
  readonly #server: Server;
  readonly #guests = new Map<string, Guest>();
  readonly #seen = new Set<string>();
  /** Instances stopped or terminated through the proxy: never booted if not booted yet. */
  readonly #halted = new Set<string>();
  /** Instances terminated through the proxy: moto would let a later stop revive them. */
  readonly #terminated = new Set<string>();
  #closed = false;
  #loop: Promise<void> | undefined;
  /** Failures of the simulator itself (not of guests), for tests to assert none. */
  readonly errors: string[] = [];

  private constructor(o: Required<SimulatorOptions>, server: Server, endpoint: string) {
    this.#o = o;
    this.#server = server;
    this.endpoint = endpoint;
    this.#ec2 = new EC2Client({ endpoint: o.motoEndpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS });
  }

  static async start(options: SimulatorOptions): Promise<InstanceSimulator> {
    const o = { pollMs: 50, graceMs: 1000, ...options };
    mkdirSync(o.dir, { recursive: true });
    let sim: InstanceSimulator | undefined;
    const server = createServer((req, res) => {
      sim!.#proxy(req, res).catch((err: unknown) => {
        sim!.errors.push(`proxy: ${String(err)}`);
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    sim = new InstanceSimulator(o, server, `http://127.0.0.1:${port}`);
    sim.#loop = sim.#run();
    return sim;
  }

  /** Instances whose guest processes still run. */
  running(): string[] {
    return [...this.#guests.values()].filter((g) => g.alive).map((g) => g.id);
  }

  /** Resolves once no guest process runs (bounded). */
  async idle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.running().length > 0) {
      if (Date.now() > deadline) throw new Error(`guests still running: ${this.running().join(", ")}`);
      await sleep(20);
    }
  }

  /** The guest's console (the script's own stdout/stderr), for debugging a test. */
  console(instanceId: string): string {
    const g = this.#guests.get(instanceId);
    try {
      return g ? readFileSync(join(g.dir, "console.log"), "utf8") : "";
    } catch {
      return "";
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#loop;
    for (const g of this.#guests.values()) {
      killGroup(g, "SIGKILL");
      g.alive = false;
    }
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#ec2.destroy();
  }

  // ---- the hypervisor's side ----

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#tick();
      } catch (err) {
        if (!this.#closed) this.errors.push(`poll: ${String(err)}`);
      }
      await sleep(this.#o.pollMs);
    }
  }

  async #tick(): Promise<void> {
    const out = await this.#ec2.send(new DescribeInstancesCommand({}));
    for (const instance of out.Reservations?.flatMap((r) => r.Instances ?? []) ?? []) {
      const id = instance.InstanceId;
      const state = instance.State?.Name ?? "";
      if (!id) continue;
      const g = this.#guests.get(id);
      if (!g && !this.#seen.has(id)) {
        this.#seen.add(id);
        if (LIVE_STATES.has(state)) await this.#boot(id).catch((err: unknown) => this.errors.push(`boot ${id}: ${String(err)}`));
      } else if (g && g.alive && !g.shutdown && !LIVE_STATES.has(state)) {
        // Stopped or terminated through the API: the OS goes down under the guest.
        g.shutdown = this.#osShutdown(g);
      }
    }
    for (const g of this.#guests.values()) {
      // (The script may have ended already: poweroff is its last command.)
      if (!g.shutdown && existsSync(join(g.dir, "poweroff-requested"))) {
        g.shutdown = this.#osShutdown(g).then(() => this.#instanceInitiatedShutdown(g));
      }
    }
  }

  async #boot(id: string): Promise<void> {
    const userData = await this.#ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: "userData" }));
    const behavior = await this.#ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: "instanceInitiatedShutdownBehavior" }));
    const encoded = userData.UserData?.Value;
    // Stopped or terminated while this poll looked the other way: a real instance would
    // not run its user data any more. (Checked with no await before the spawn below.)
    if (!encoded || this.#halted.has(id)) return;
    const dir = mkdtempSync(join(this.#o.dir, `${id}-`));
    const bin = join(dir, "bin");
    mkdirSync(bin);
    const request = `#!/bin/sh\n: > '${dir}/poweroff-requested'\n`;
    for (const name of ["poweroff", "shutdown", "halt"]) {
      writeFileSync(join(bin, name), request);
      chmodSync(join(bin, name), 0o755);
    }
    const script = join(dir, "user-data");
    writeFileSync(script, Buffer.from(encoded, "base64"));
    const console = openSync(join(dir, "console.log"), "a");
    // cloud-init runs user data as root with a plain environment; here, as the test user.
    const child = spawn("sh", [script], {
      cwd: dir,
      detached: true,
      stdio: ["ignore", console, console],
      env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOME: dir, TMPDIR: dir, LANG: "C.UTF-8" },
    });
    closeSync(console);
    child.on("error", (err) => this.errors.push(`spawn ${id}: ${String(err)}`));
    const guest: Guest = { id, dir, child, behavior: behavior.InstanceInitiatedShutdownBehavior?.Value ?? "stop", alive: true, forced: false };
    // A script that ends without powering off leaves an idle (running) instance behind.
    child.on("exit", () => {
      if (!guest.shutdown && !groupAlive(guest)) guest.alive = false;
    });
    this.#guests.set(id, guest);
  }

  /** SIGTERM to every guest process, SIGKILL after the grace period (at once when forced). */
  async #osShutdown(g: Guest): Promise<void> {
    if (!g.forced) {
      killGroup(g, "SIGTERM");
      const deadline = Date.now() + this.#o.graceMs;
      while (groupAlive(g) && !g.forced && Date.now() < deadline) await sleep(10);
    }
    const deadline = Date.now() + 5000;
    while (groupAlive(g) && Date.now() < deadline) {
      killGroup(g, "SIGKILL");
      await sleep(10);
    }
    g.alive = false;
  }

  async #instanceInitiatedShutdown(g: Guest): Promise<void> {
    // EC2 never stops a terminated instance; moto would (terminated -> stopped), so a
    // guest's poweroff that loses the race with vmctl's TerminateInstances must not.
    if (this.#terminated.has(g.id)) return;
    const command =
      g.behavior === "terminate" ? new TerminateInstancesCommand({ InstanceIds: [g.id] }) : new StopInstancesCommand({ InstanceIds: [g.id] });
    // Set with no await after the check above: a TerminateInstances arriving at the proxy
    // from now on waits for this call, so it lands last, as EC2's ordering would have it.
    g.initiating = (this.#ec2.send(command as StopInstancesCommand) as Promise<unknown>).then(
      () => undefined,
      (err: unknown) => void this.errors.push(`instance-initiated shutdown of ${g.id}: ${String(err)}`),
    );
    await g.initiating;
  }

  // ---- the proxy in front of moto ----

  async #proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const isQuery = req.method === "POST" && /x-www-form-urlencoded/.test(req.headers["content-type"] ?? "");
    const params = isQuery ? new URLSearchParams(body.toString()) : undefined;
    const action = params?.get("Action");
    if (params && (action === "StopInstances" || action === "TerminateInstances")) {
      for (const [key, id] of params) {
        if (!/^InstanceId\.\d+$/.test(key)) continue;
        this.#halted.add(id);
        if (action === "TerminateInstances") this.#terminated.add(id);
        // A forced stop is a hard power-off: no grace for the guest.
        const g = this.#guests.get(id);
        if (g && action === "StopInstances" && params.get("Force") === "true") g.forced = true;
      }
      // After the marks above (no await in between): a guest's own shutdown call already in
      // flight goes first; one not yet made sees the mark and is not made.
      const ids = [...params].filter(([key]) => /^InstanceId\.\d+$/.test(key)).map(([, id]) => id);
      await Promise.all(ids.map((id) => this.#guests.get(id)?.initiating));
    }
    const target = new URL(req.url ?? "/", this.#o.motoEndpoint);
    const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = request(target, { method: req.method, headers: req.headers }, resolve);
      r.on("error", reject);
      r.end(body);
    });
    if (action !== "DescribeInstances") {
      res.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(res);
      return;
    }
    const parts: Buffer[] = [];
    for await (const chunk of upstream) parts.push(chunk as Buffer);
    const xml = this.#rewriteStates(Buffer.concat(parts).toString("utf8"));
    const headers = { ...upstream.headers, "content-length": String(Buffer.byteLength(xml)) };
    delete headers["transfer-encoding"];
    res.writeHead(upstream.statusCode ?? 502, headers);
    res.end(xml);
  }

  #rewriteStates(xml: string): string {
    return xml.replace(
      /(<instanceId>(i-[0-9a-f]+)<\/instanceId>[\s\S]*?<instanceState>\s*<code>)(\d+)(<\/code>\s*<name>)([a-z-]+)(<\/name>)/g,
      (whole, head: string, id: string, _code: string, mid: string, name: string, tail: string) => {
        const g = this.#guests.get(id);
        if (!g?.alive) return whole;
        const shutdownName = g.behavior === "terminate" ? "shutting-down" : "stopping";
        const shown =
          name === "stopped" ? "stopping" : name === "terminated" ? "shutting-down" : name === "running" && g.shutdown ? shutdownName : name;
        if (shown === name) return whole;
        return `${head}${shown === "stopping" ? 64 : 32}${mid}${shown}${tail}`;
      },
    );
  }
}

/** Live (non-zombie) processes of the guest's process group, from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && fields[0] !== "X" && Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

function groupAlive(g: Guest): boolean {
  return g.child.pid !== undefined && groupMembers(g.child.pid).length > 0;
}

function killGroup(g: Guest, signal: NodeJS.Signals): void {
  if (g.child.pid === undefined) return;
  try {
    process.kill(-g.child.pid, signal);
  } catch {
    // the group is gone
  }
}
