// @vmctl/plugin-conformance: the conformance kit every vmctl target plugin runs.
export { runConformance, ConformanceRun, checksFor } from "./run-conformance.js";
export { conformanceTests } from "./test-adapter.js";
export { builtPluginPath, type BuiltPluginOptions } from "./built-plugin.js";
export type { AvaExecutionLike, AvaLike, ConformanceTestsOptions, NodeTestContextLike, NodeTestLike } from "./test-adapter.js";
export { formatReport } from "./format.js";
export { DEFAULT_FIXTURE_FILES, findFixturesFile, loadFixtures } from "./fixtures-file.js";
export type { FixturesJson } from "./fixtures-file.js";
export { DEFAULT_EXIT_CODES } from "./checks/index.js";
export type { Check, CheckEnv, Service } from "./checks/index.js";
export { CheckFailure, NotClaimed } from "./checks/budget.js";
export { DEFAULT_TIMEOUTS } from "./types.js";
export type {
  CheckResult,
  CheckStatus,
  ConformanceConfig,
  ConformanceFixtures,
  ConformanceOptions,
  ConformanceReport,
  ConformanceTimeouts,
  FactoryInit,
  FixtureSpec,
  CopyFixture,
  FromRunFixture,
  InvalidFixture,
  PluginSource,
  RunningFixtureSpec,
} from "./types.js";
// The harness, for plugin authors' own tests.
export { ConformanceHarness, OWNER_LABEL, SERVICE_LABEL } from "./harness/conformance-harness.js";
export type { HarnessContext, HarnessOptions } from "./harness/conformance-harness.js";
export { testOwnerLabels, testServiceDir, testTargetContext } from "./harness/test-target-context.js";
export { BUSYBOX_APPLETS, busyboxRootfs } from "./harness/busybox-rootfs.js";
export type { TestTargetContext, TestTargetContextOptions } from "./harness/test-target-context.js";
export { MemoryLedger } from "./harness/memory-ledger.js";
export { MemoryLogger } from "./harness/memory-logger.js";
export type { LogLine } from "./harness/memory-logger.js";
export { holdersOf, isAlive, processesMentioning, recordedProcesses } from "./harness/host-processes.js";
export { collectLogs, logChunks, streamsOf, untilStdout } from "./harness/service-output.js";
export type { RecordedProcess } from "./harness/host-processes.js";
// Helpers for plugin authors' exec and copy tests.
export { ExecReader, utf8, type ExecStream } from "./testing/exec-reader.js";
export {
  archiveEntries,
  failureOf,
  makeWorkspace,
  MIB,
  parseTreeDigest,
  sha256sums,
  shellQuote,
  treeDigest,
  treeDigestScript,
  unpack,
  unpackToTemp,
  type ArchivedEntry,
} from "./testing/archive.js";
export { COPY_UNICODE_NAME, copyTreeScript } from "./checks/copy.js";
