// Programmatic entry to the vmctl CLI (used by tests and embedders).
export { main, buildProgram } from "./program.js";
export { CliError } from "./errors.js";
export { hostReport } from "./doctor/host-report.js";
export type { HostReport } from "./doctor/host-report.js";
export type { DependencyStatus } from "./doctor/dependencies.js";
