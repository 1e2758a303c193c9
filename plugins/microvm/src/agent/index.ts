// The host side of the guest agent (`vmctl-agent`, proto/agent/v1/agent.proto): a typed
// client over a unix socket (in a VM, a relay to the guest's vsock port).
export { AgentConnection } from "./connection.js";
export { ExecSession } from "./exec-session.js";
export type { AgentCallOptions, AgentInfo, CopyInResult, ExecExit, ExecStart, OutputChunk, ShutdownAction, WindowSize } from "./types.js";
