// agent.v1 messages ↔ the plain types of ./types.ts, each mapping once.
import { VmctlError } from "@vmctl/core/contract";
import { agent } from "@vmctl/proto";
import type { AgentInfo, ExecExit, ExecStart, ShutdownAction } from "./types.js";

/** Bytes protobufjs decoded, as a Buffer over the same memory (no copy). */
export function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function agentInfoFromProto(info: agent.v1.IAgentInfo): AgentInfo {
  return {
    version: info.version ?? "",
    agentStartBoottimeNs: Number(info.agentStartBoottimeNs ?? 0),
    workloadExecBoottimeNs: Number(info.workloadExecBoottimeNs ?? 0),
    hostname: info.hostname ?? "",
    init: info.init ?? false,
    pid: info.pid ?? 0,
  };
}

export function execStartToProto(start: ExecStart): agent.v1.IExecStart {
  return {
    args: [...start.args],
    imageEnv: [...(start.imageEnv ?? [])],
    env: [...(start.env ?? [])],
    cwd: start.cwd ?? "",
    user: start.user ?? "",
    tty: start.tty ?? false,
    window: start.window ? { rows: start.window.rows, cols: start.window.cols } : null,
    stdin: start.stdin ?? false,
    workload: start.workload ?? false,
    keepRunning: start.keepRunning ?? false,
    attach: start.attach ?? false,
  };
}

export function execExitFromProto(exited: agent.v1.IExited): ExecExit {
  const facts = { coreDumped: exited.coreDumped ?? false, oom: exited.oom ?? false, message: exited.message ?? "" };
  if (typeof exited.signal === "string" && exited.signal !== "") return { signal: exited.signal, ...facts };
  if (typeof exited.code === "number") return { code: exited.code, ...facts };
  throw new VmctlError("INTERNAL", "the agent reported an exit with neither a code nor a signal");
}

export function shutdownActionToProto(action: ShutdownAction): agent.v1.ShutdownRequest.Action {
  return action === "reboot" ? agent.v1.ShutdownRequest.Action.REBOOT : agent.v1.ShutdownRequest.Action.POWER_OFF;
}
