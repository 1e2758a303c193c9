// The Docker Engine API over its unix socket, through dockerode — the only module that
// touches dockerode. It returns plain types and throws VmctlErrors, so no SDK type leaks
// into the rest of the plugin, and socket errors are translated here, at the edge.
import { Agent } from "node:http";
import { Readable, type Duplex } from "node:stream";
import type Docker from "dockerode";
import { VmctlError, type ErrorCode, type ErrorDetails } from "@vmctl/core/contract";
import { demuxed } from "./logs.js";
import type { LogChunk, TerminalSize } from "@vmctl/core/contract";

/** How long create()/adopt() wait for the daemon to answer a ping. */
const PING_TIMEOUT_MS = 5_000;

export type ContainerStatus = "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead";

/** What the plugin needs of `GET /containers/{id}/json`. */
export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly status: ContainerStatus;
  readonly pid: number;
  readonly exitCode: number;
  /** Docker's error for a start that failed ("exec: ...: not found"); "" when none. */
  readonly error: string;
  readonly oomKilled: boolean;
  readonly created: Date;
  /** Undefined until the container has been started. */
  readonly startedAt: Date | undefined;
  readonly finishedAt: Date | undefined;
  /** IPv4/IPv6 addresses on its networks (empty with network "none"). */
  readonly addresses: readonly string[];
}

export interface ImageInfo {
  readonly id: string;
  readonly tags: readonly string[];
}

/** A container to create: the subset of Docker's create body the plugin uses. */
export interface ContainerConfig {
  readonly Image: string;
  readonly Cmd?: string[];
  readonly Env?: string[];
  readonly WorkingDir?: string;
  readonly Labels: Record<string, string>;
  readonly HostConfig: {
    readonly NetworkMode: string;
    readonly Mounts?: { Type: "bind"; Source: string; Target: string; ReadOnly: boolean }[];
    readonly NanoCpus?: number;
    readonly Memory?: number;
    readonly LogConfig: { Type: string; Config: Record<string, string> };
    readonly RestartPolicy: { Name: "no" };
  };
}

/** An exec to start: the command and how it is attached. */
export interface ExecOptions {
  readonly args: readonly string[];
  readonly tty: boolean;
  /** Keep its stdin open for writing (a TTY always has its stdin attached). */
  readonly stdin: boolean;
  /** The terminal's first size (with `tty`). */
  readonly size?: TerminalSize;
}

/** What the plugin needs of `GET /exec/{id}/json`. */
export interface ExecStatus {
  readonly running: boolean;
  /** The command's host pid; 0 until Docker has started it, and for one it could not start. */
  readonly pid: number;
  /** null until it has ended (or Docker failed to start it: then 126). */
  readonly exitCode: number | null;
  /** The container's full id. */
  readonly containerId: string;
}

/** A started exec: its hijacked connection, and calls about it. */
export interface ExecAttachment {
  /** Output comes in (framed as in stdcopy, raw with a TTY); stdin goes out. */
  readonly socket: Duplex;
  inspect(): Promise<ExecStatus>;
  resize(size: TerminalSize): Promise<void>;
}

/** Fields of a dockerode error (HTTP status, Docker's JSON body) or a socket error (errno). */
interface RawDockerError {
  readonly statusCode?: number;
  readonly json?: { message?: string } | string | null;
  readonly reason?: string;
  readonly code?: string;
  readonly message?: string;
}

const CONNECTION_ERRORS: Readonly<Record<string, ErrorCode>> = {
  ENOENT: "UNAVAILABLE",
  ECONNREFUSED: "UNAVAILABLE",
  ECONNRESET: "UNAVAILABLE",
  EPIPE: "UNAVAILABLE",
  ENOTSOCK: "UNAVAILABLE",
  ETIMEDOUT: "UNAVAILABLE",
  EACCES: "PERMISSION_DENIED",
  EPERM: "PERMISSION_DENIED",
};

const HTTP_ERRORS: Readonly<Record<number, ErrorCode>> = {
  400: "INVALID_ARGUMENT",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  409: "FAILED_PRECONDITION",
};

/** The HTTP status of a Docker API error, if it is one. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = (err as RawDockerError | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** Docker's own message of an API error ("No such container: x"), else the error's message. */
export function dockerMessage(err: unknown): string {
  const raw = err as RawDockerError | null;
  const json = raw?.json;
  const fromBody = typeof json === "object" && json !== null ? json.message : typeof json === "string" ? json.trim() : undefined;
  return fromBody || raw?.reason || raw?.message || String(err);
}

export class DockerEngine {
  readonly socket: string;
  #client: Promise<Docker> | undefined;
  /** Our own agent: close() can drop its idle keep-alive sockets. */
  readonly #agent = new Agent({ keepAlive: true });

  constructor(socket: string) {
    this.socket = socket;
  }

  /**
   * dockerode, loaded on first use: it and its dependencies cost vmctld ~25 MiB, which a
   * host that never runs a docker service should not pay.
   */
  #api(): Promise<Docker> {
    this.#client ??= import("dockerode").then(({ default: DockerApi }) => {
      // docker-modem takes an http agent; @types/dockerode does not list it.
      const options: Docker.DockerOptions & { agent: Agent } = { socketPath: this.socket, agent: this.#agent };
      return new DockerApi(options);
    });
    return this.#client;
  }

  /**
   * Any failure of a call as a VmctlError: a socket that does not answer is UNAVAILABLE
   * naming the socket; HTTP statuses map to their kind; `what` says which call.
   */
  error(err: unknown, what: string, details: ErrorDetails = {}): VmctlError {
    if (err instanceof VmctlError) return err;
    const raw = err as RawDockerError | null;
    const errno = raw?.code;
    if (errno && CONNECTION_ERRORS[errno]) {
      return new VmctlError(CONNECTION_ERRORS[errno], `${what}: cannot reach the Docker daemon at ${this.socket} (${errno}${errno === "ENOENT" ? ": no such socket" : ""})`, {
        cause: err,
        details: { target: "docker", ...details },
      });
    }
    const status = httpStatusOf(err);
    const code = status === undefined ? "INTERNAL" : (HTTP_ERRORS[status] ?? "INTERNAL");
    return new VmctlError(code, `${what}: ${dockerMessage(err)}`, { cause: err, details: { target: "docker", ...details } });
  }

  /** Resolves when the daemon answers `/_ping`; else an UNAVAILABLE error naming the socket. */
  async ping(details: ErrorDetails = {}): Promise<void> {
    const docker = await this.#api();
    const ping = docker.ping as unknown as (opts: { abortSignal: AbortSignal }) => Promise<unknown>;
    // Our own timer, not AbortSignal.timeout(): that one is unref'd, so a silent daemon
    // could leave the caller awaiting with nothing keeping the process alive.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), PING_TIMEOUT_MS);
    try {
      await ping.call(docker, { abortSignal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) {
        throw new VmctlError("UNAVAILABLE", `the Docker daemon at ${this.socket} did not answer a ping within ${PING_TIMEOUT_MS} ms`, {
          cause: err,
          details: { target: "docker", ...details },
        });
      }
      throw this.error(err, "docker ping", details);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- images ----

  /** A local image by reference or id; undefined when the daemon has none. */
  async image(reference: string): Promise<ImageInfo | undefined> {
    try {
      const info = await (await this.#api()).getImage(reference).inspect();
      return { id: info.Id, tags: info.RepoTags ?? [] };
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw this.error(err, `inspect image ${reference}`);
    }
  }

  /**
   * `docker load` of an archive stream. Returns what the daemon reports it loaded: tags
   * ("Loaded image: a:b") and ids ("Loaded image ID: sha256:..." for untagged archives).
   * Docker reports a bad archive in the response stream, so errors there reject too.
   */
  async load(archive: Readable): Promise<{ tags: string[]; ids: string[] }> {
    const docker = await this.#api();
    const response = await docker.loadImage(archive, { quiet: true });
    const events = await new Promise<unknown[]>((resolve, reject) => {
      docker.modem.followProgress(response, (err, out) => (err ? reject(err) : resolve(out)));
    });
    const tags: string[] = [];
    const ids: string[] = [];
    for (const event of events) {
      const line = String((event as { stream?: unknown }).stream ?? "").trim();
      const id = /^Loaded image ID: (\S+)$/.exec(line);
      const tag = /^Loaded image: (\S+)$/.exec(line);
      if (id?.[1]) ids.push(id[1]);
      else if (tag?.[1]) tags.push(tag[1]);
    }
    return { tags, ids };
  }

  async networkExists(name: string): Promise<boolean> {
    try {
      await (await this.#api()).getNetwork(name).inspect();
      return true;
    } catch (err) {
      if (httpStatusOf(err) === 404) return false;
      throw this.error(err, `inspect network ${name}`);
    }
  }

  // ---- containers ----

  /** Creates a container; returns its id. Errors are left raw so callers can tell a 409. */
  async create(name: string, config: ContainerConfig): Promise<string> {
    const container = await (await this.#api()).createContainer({ name, ...config });
    return container.id;
  }

  /** The container by id or name; undefined when it does not exist. */
  async inspect(idOrName: string): Promise<ContainerInfo | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await (await this.#api()).getContainer(idOrName).inspect();
    } catch (err) {
      if (httpStatusOf(err) === 404) return undefined;
      throw this.error(err, `inspect container ${idOrName}`);
    }
    const networks = Object.values(info.NetworkSettings?.Networks ?? {});
    const addresses = networks.flatMap((n) => [n.IPAddress, n.GlobalIPv6Address]).filter((a): a is string => typeof a === "string" && a !== "");
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ""),
      labels: info.Config?.Labels ?? {},
      status: info.State.Status as ContainerStatus,
      pid: info.State.Pid,
      exitCode: info.State.ExitCode,
      error: info.State.Error ?? "",
      oomKilled: info.State.OOMKilled,
      created: new Date(info.Created),
      startedAt: dockerTime(info.State.StartedAt),
      finishedAt: dockerTime(info.State.FinishedAt),
      addresses,
    };
  }

  /** Ids of containers carrying every label given (`key=value`), stopped ones included. */
  async containersLabelled(labels: readonly string[]): Promise<string[]> {
    try {
      const list = await (await this.#api()).listContainers({ all: true, filters: { label: [...labels] } });
      return list.map((c) => c.Id);
    } catch (err) {
      throw this.error(err, "list containers");
    }
  }

  /** Starts a created container. A container that already runs (HTTP 304) is not an error. */
  async start(id: string): Promise<void> {
    try {
      await (await this.#api()).getContainer(id).start();
    } catch (err) {
      if (httpStatusOf(err) === 304) return;
      throw err;
    }
  }

  /** Sends a signal; a container that is not running (HTTP 409) is not an error. */
  async kill(id: string, signal: string): Promise<void> {
    try {
      await (await this.#api()).getContainer(id).kill({ signal });
    } catch (err) {
      const status = httpStatusOf(err);
      if (status === 409 || status === 404) return;
      throw this.error(err, `kill ${signal} container ${id}`);
    }
  }

  async pause(id: string): Promise<void> {
    try {
      await (await this.#api()).getContainer(id).pause();
    } catch (err) {
      throw this.error(err, `pause container ${id}`);
    }
  }

  async unpause(id: string): Promise<void> {
    try {
      await (await this.#api()).getContainer(id).unpause();
    } catch (err) {
      throw this.error(err, `unpause container ${id}`);
    }
  }

  /**
   * Resolves when the container is not running (exited, never started, or gone). With
   * `signal`, rejects with an AbortError when it fires first.
   */
  async waitNotRunning(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await (await this.#api()).getContainer(id).wait({ condition: "not-running", ...(signal ? { abortSignal: signal } : {}) });
    } catch (err) {
      if (httpStatusOf(err) === 404) return;
      if (signal?.aborted) throw signal.reason;
      throw this.error(err, `wait for container ${id}`);
    }
  }

  /** Force-removes the container and its anonymous volumes; one already gone is fine. */
  async remove(id: string): Promise<void> {
    try {
      await (await this.#api()).getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      if (httpStatusOf(err) === 404) return;
      throw this.error(err, `remove container ${id}`);
    }
  }

  /**
   * The container's output since it started as LogChunks, demultiplexed by stream; with
   * `follow`, then live until it stops. Nothing at all once the container is gone.
   */
  async *logs(id: string, follow: boolean): AsyncGenerator<LogChunk> {
    const docker = await this.#api();
    const container = docker.getContainer(id);
    let stream: NodeJS.ReadableStream;
    try {
      // timestamps: each frame carries the time Docker received it, for LogChunk.time.
      stream = follow
        ? await container.logs({ follow: true, stdout: true, stderr: true, timestamps: true })
        : Readable.from([await container.logs({ follow: false, stdout: true, stderr: true, timestamps: true })]);
    } catch (err) {
      if (httpStatusOf(err) === 404) return;
      throw this.error(err, `logs of container ${id}`);
    }
    yield* demuxed(stream, (s, out, errs) => docker.modem.demuxStream(s, out, errs), { timestamps: true });
  }

  /**
   * A tar of `path` in the container, held under its own name (`GET /containers/{id}/archive`,
   * what `docker cp` reads). The response is pulled only as the caller reads, never in
   * flowing mode: a reader that stalls leaves the socket full and Docker waits, so nothing
   * here grows with the archive. undefined on a 404: no such container or no such path
   * (Docker says which only in its message; the caller inspects to tell). `signal` ends the
   * copy, at any point, with its reason.
   */
  async archive(id: string, path: string, options: { details?: ErrorDetails; signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array> | undefined> {
    const { details = {}, signal } = options;
    const what = `copy ${path} out of container ${id}`;
    let response: NodeJS.ReadableStream;
    try {
      response = await (await this.#api()).getContainer(id).getArchive({ path, ...(signal ? { abortSignal: signal } : {}) });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (httpStatusOf(err) === 404) return undefined;
      throw this.error(err, what, details);
    }
    return this.#pulled(response, signal, `${what}: the archive broke off`, details);
  }

  /** The chunks of a response as Uint8Arrays, read on demand; a reader that stops early closes it. */
  async *#pulled(response: NodeJS.ReadableStream, signal: AbortSignal | undefined, what: string, details: ErrorDetails): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of response) yield typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw this.error(err, what, details);
    }
  }

  /**
   * Starts `options.args` in the running container (its env and workdir) and hands over
   * the hijacked connection: what the command prints comes in on it, its stdin goes out.
   */
  async startExec(containerId: string, options: ExecOptions, details: ErrorDetails = {}): Promise<ExecAttachment> {
    const what = `exec in container ${containerId}`;
    const { tty } = options;
    // API 1.42+ starts the terminal at this size; older daemons ignore it (the session resizes).
    const consoleSize: { ConsoleSize?: [number, number] } = tty && options.size ? { ConsoleSize: [options.size.rows, options.size.cols] } : {};
    try {
      const docker = await this.#api();
      const exec = await docker.getContainer(containerId).exec({
        Cmd: [...options.args],
        // A terminal's stdin must be attached for the command's stdin to be the terminal (stty, isatty).
        AttachStdin: options.stdin || tty,
        AttachStdout: true,
        AttachStderr: true,
        Tty: tty,
        ...consoleSize,
      });
      // hijack: after the HTTP upgrade the socket is ours. stdin: false only tells docker-modem
      // to end the request body; stdin is written on the socket. Tty must be repeated here:
      // it is what makes Docker send the output raw rather than framed.
      const start: Docker.ExecStartOptions & { ConsoleSize?: [number, number] } = { hijack: true, stdin: false, Detach: false, Tty: tty, ...consoleSize };
      const socket = await exec.start(start);
      return {
        socket,
        inspect: async () => {
          try {
            const info = await exec.inspect();
            return { running: info.Running, pid: info.Pid, exitCode: info.ExitCode ?? null, containerId: info.ContainerID };
          } catch (err) {
            throw this.error(err, `inspect ${what}`, details);
          }
        },
        resize: async (size) => {
          try {
            await exec.resize({ h: size.rows, w: size.cols });
          } catch (err) {
            throw this.error(err, `resize the terminal of ${what}`, details);
          }
        },
      };
    } catch (err) {
      throw this.error(err, what, details);
    }
  }

  /** Drops idle connections (the factory is closing). Calls made later still work. */
  close(): void {
    this.#agent.destroy();
  }
}

/** Docker's timestamps; its zero time ("0001-01-01T00:00:00Z") means "never". */
function dockerTime(text: string | undefined): Date | undefined {
  if (!text || text.startsWith("0001-")) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
