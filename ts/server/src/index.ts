// @vmctl/server: vmctld, the gRPC front-end of the orchestrator engine.
export { ConfigError, parseConfig, readConfig, type DaemonConfig } from "./config.js";
export { BUILTIN_PLUGINS, DEFAULT_SOCKET, defaultNodeModules, pluginList, startVmctld, Vmctld } from "./vmctld.js";
export type { VmctldOptions } from "./vmctld.js";
export { DAEMON_USAGE, DaemonUsageError, daemonMain, parseDaemonArgs, runDaemon } from "./daemon.js";
export { orchestratorHandlers, CallTracker } from "./orchestrator-service.js";
export type { ImageRecordView, ImageStoreApi, ItemProgressEvent, ItemProgressSink, ServedEngine } from "./image-store-api.js";
export { checkImageReference, MAX_IMAGE_REFERENCE_BYTES } from "./image-requests.js";
export { pageOf, type Page, type PageRequest } from "./list-pages.js";
export { boundedText, DETAIL_METADATA_KEYS, ERROR_DOMAIN, MAX_DETAIL_CHARS, MAX_MESSAGE_CHARS, plainStatus, toServiceError } from "./grpc-status.js";
export type { StatusObject } from "./grpc-status.js";
export { bindUnixSocket, prepareSocketPath, socketAnswers } from "./unix-socket.js";
