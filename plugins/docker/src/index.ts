// vmctl-plugin-docker: registers the "docker" target. Thin: reads the options, makes the factory.
import type { PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { DockerFactory } from "./factory.js";
import { parseDockerOptions } from "./options.js";

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

const registration: PluginRegistration = {
  name: "vmctl-plugin-docker",
  targets: [{ target: "docker", init: (env) => initDocker(env) }],
};

export default registration;
