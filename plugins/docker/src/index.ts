// vmctl-plugin-docker: registers the "docker" target. Thin: reads the options, makes the factory.
import type { HostRequirement, PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { DockerFactory } from "./factory.js";
import { DEFAULT_SOCKET, parseDockerOptions } from "./options.js";

export { DOCKER_CAPABILITIES, DockerFactory } from "./factory.js";
export { DockerController } from "./controller.js";
export type { DockerRecord } from "./controller.js";
export { DEFAULT_SOCKET, parseDockerOptions } from "./options.js";
export type { DockerOptions } from "./options.js";
export { parseDockerSpec } from "./spec.js";
export type { DockerMount, DockerResources, DockerSpec } from "./spec.js";
export { containerNameFor, OWNER_LABEL, SERVICE_LABEL, TARGET_LABEL } from "./naming.js";

/**
 * Makes the docker factory. Options (`targets.docker`): `socket`, the Docker Engine API
 * socket (default: DOCKER_HOST when unix://, else /var/run/docker.sock). The daemon is
 * not contacted here: it may come up later, and each create() checks that it answers.
 */
export function initDocker(env: PluginEnvironment): DockerFactory {
  const options = parseDockerOptions(env.options);
  env.log.debug("docker target ready", { socket: options.socket });
  return new DockerFactory(options.socket, env.log);
}

/**
 * What `vmctl doctor` checks for this target (data): a Docker Engine answering on its
 * socket (`targets.docker.socket` when set; a DOCKER_HOST the daemon would use is not
 * looked at here).
 */
export const DOCKER_REQUIREMENTS: readonly HostRequirement[] = [
  {
    kind: "socket",
    path: DEFAULT_SOCKET,
    option: "socket",
    package: "docker.io",
    fix: "start the Docker Engine (systemctl start docker, or dockerd)",
    why: "the Docker Engine API the target drives",
  },
];

const registration: PluginRegistration = {
  name: "vmctl-plugin-docker",
  targets: [{ target: "docker", requires: DOCKER_REQUIREMENTS, init: (env) => initDocker(env) }],
};

export default registration;
