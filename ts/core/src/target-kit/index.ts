// @vmctl/core/target-kit: small host helpers every target that runs local processes
// needs (finding binaries, process identity from /proc, log files, atomic state files,
// exit statuses, spec field checks, the image reference rule), and the one supervision
// mechanism (supervision/: the shim, stop records, terminate with escalation, waiting). Node built-ins only, like
// the contract entry, so a third-party plugin can use it freely.
export { defaultSearchDirs, findBinary } from "./binaries.js";
export { changeIn } from "./dir-change.js";
// copyOut() for a container over a rootfs directory; node-tar (an optional peer) is loaded on first use.
export { MAX_SYMLINK_HOPS, packContainerPath, type ContainerPath } from "./copy-out.js";
export { unavailableImages } from "./images.js";
// The one rule for an image reference (the image store and the image RPCs apply it too).
export { checkReference, MAX_REFERENCE_BYTES } from "../images/reference.js";
export {
  evaluateRequirement,
  evaluateRequirements,
  parseRequirements,
  requirementFix,
  requirementName,
  type RequirementContext,
} from "./requirements.js";
export { isDirectory, mtimeOf, readFrom, readIntFile, readJsonFile, writeAtomic } from "./files.js";
export { followFiles, type FollowOptions, type LogFile } from "./logs.js";
export { hostnameFor, instanceNameFor } from "./naming.js";
export {
  argvOf,
  childrenOf,
  isAlive,
  parentOf,
  processesWhere,
  pidAlive,
  pidRunning,
  pidFileOwner,
  processGroupGone,
  processGroupMembers,
  startedAtMs,
  startTimeOf,
  type GroupWaitOptions,
  type ProcessRef,
} from "./process.js";
export { canonicalSignal, execStartCode, signalName, signalOfStatus } from "./signals.js";
export {
  bool,
  commandArgs,
  containerPath,
  envVars,
  hostDir,
  hostFile,
  hostPath,
  intIn,
  mounts,
  mountsFromRun,
  numberIn,
  positiveInt,
  positiveNumber,
  record,
  refuseUnknown,
  str,
  strings,
  type BindMount,
  type EnvOptions,
  type StringCheck,
} from "./spec-fields.js";
export {
  KILL_WAIT_MS,
  processGoneWithin,
  signalProcess,
  terminate,
  terminateChild,
  terminateProcess,
  type Escalation,
} from "./supervision/escalation.js";
export { spawnDetached, type DetachedOptions, type DetachedProcess } from "./supervision/spawn-detached.js";
export { shimExit, type RuntimeWording, type ShimExitEvidence } from "./supervision/shim-exit.js";
export { isShim, spawnShim, type ShimCommandOptions, type ShimFiles, type ShimIdentity } from "./supervision/shim.js";
export {
  ShimSupervisor,
  type ShimEnd,
  type ShimServiceFiles,
  type ShimSupervisorOptions,
  type ShimView,
  type ShimWorkload,
} from "./supervision/shim-supervisor.js";
export { readStopRecord, recordSignal, recordStopBeforeStart, type StopRecord } from "./supervision/stop-record.js";
export { waitFor, type WaitOptions } from "./supervision/wait.js";
export { EXEC_TO_END_MAX_BYTES, execToEnd, type ExecToEndOptions } from "./exec/collect.js";
export { EXEC_STDERR_TAIL_BYTES, spawnExec, type SpawnExecOptions } from "./exec/spawn-exec.js";
export { DEFAULT_TERMINAL_SIZE, loadPtyAddon, type PtyAddon } from "./exec/spawn-exec-terminal.js";
