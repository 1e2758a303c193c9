// @vmctl/core/target-kit: small host helpers every target that runs local processes
// needs (finding binaries, process identity from /proc, log files, atomic state files).
// Node built-ins only, like the contract entry, so a third-party plugin can use it freely.
export { defaultSearchDirs, findBinary } from "./binaries.js";
export { changeIn } from "./dir-change.js";
export { readFrom, writeAtomic } from "./files.js";
export { isAlive, startTimeOf, type ProcessRef } from "./process.js";
