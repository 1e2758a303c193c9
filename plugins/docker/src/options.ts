// The docker target's options (`targets.docker` in the orchestrator config), checked at
// init so a typo is reported once, at start-up, rather than as an unreachable daemon.
import { isAbsolute } from "node:path";
import { VmctlError } from "@vmctl/core/contract";

export const DEFAULT_SOCKET = "/var/run/docker.sock";

export interface DockerOptions {
  /** Path of the Docker Engine API's unix socket. */
  readonly socket: string;
}

const KNOWN = ["socket"];

function invalid(field: string, problem: string): VmctlError {
  return new VmctlError("INVALID_ARGUMENT", `targets.docker.${field}: ${problem}`, { details: { field: `targets.docker.${field}`, target: "docker" } });
}

/**
 * The socket: `options.socket`, else `DOCKER_HOST` when it is `unix://PATH`, else
 * /var/run/docker.sock. A DOCKER_HOST of another scheme (tcp://, ssh://) is refused:
 * this target speaks to a local daemon over its unix socket only.
 */
export function parseDockerOptions(options: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): DockerOptions {
  for (const key of Object.keys(options)) if (!KNOWN.includes(key)) throw invalid(key, "unknown option");
  if (options.socket !== undefined) {
    if (typeof options.socket !== "string" || !isAbsolute(options.socket)) throw invalid("socket", "must be an absolute path of a unix socket");
    return { socket: options.socket };
  }
  const host = env.DOCKER_HOST;
  if (host !== undefined && host !== "") {
    if (!host.startsWith("unix://") || !isAbsolute(host.slice("unix://".length))) {
      throw new VmctlError("INVALID_ARGUMENT", `DOCKER_HOST=${host} is not a unix:// socket; set targets.docker.socket to the daemon's socket path`, {
        details: { target: "docker" },
      });
    }
    return { socket: host.slice("unix://".length) };
  }
  return { socket: DEFAULT_SOCKET };
}
