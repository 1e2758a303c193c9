// Programmatic entry to the vmctl CLI (used by tests and embedders).
export { main, buildProgram } from "./program.js";
export { CliError, cliError, describeError } from "./errors.js";
export { hostReport } from "./doctor/host-report.js";
export type { HostReport, HostReportOptions, HostRequirementStatus } from "./doctor/host-report.js";
export type { TargetRequirements } from "./doctor/target-requirements.js";
export { connectOrStart, vmctldBin } from "./connection/daemon-launcher.js";
export { DEFAULT_SOCKET, DEFAULT_STATE_DIR } from "./connection/globals.js";
export type { Globals } from "./connection/globals.js";
export { exitCodeOf, parseSpec, RUN_FAILED } from "./commands/run.js";
export { parseFilters } from "./commands/ps.js";
export { age, exitSummary } from "./output/format.js";
