// @vmctl/server: vmctld, the gRPC front-end of the orchestrator engine.
export { ConfigError, parseConfig, readConfig, type DaemonConfig } from "./config.js";
export { BUILTIN_PLUGINS, DEFAULT_SOCKET, defaultNodeModules, pluginList, startVmctld, Vmctld } from "./vmctld.js";
export type { VmctldOptions } from "./vmctld.js";
export { DAEMON_USAGE, DaemonUsageError, daemonMain, parseDaemonArgs, runDaemon } from "./daemon.js";
export { orchestratorHandlers, CallTracker } from "./orchestrator-service.js";
export { toServiceError, DETAIL_KEYS } from "./grpc-status.js";
export { bindUnixSocket, prepareSocketPath, socketAnswers } from "./unix-socket.js";
