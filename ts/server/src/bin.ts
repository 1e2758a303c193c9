#!/usr/bin/env node
// vmctld. The pid file comes first, before the daemon's modules load (a few hundred ms):
// a CLI that finds no socket yet sees a daemon starting and waits for it.
import { removePidFile, stateDirOf, writePidFile } from "./pid-file.js";

const argv = process.argv.slice(2);
const pidFile = writePidFile(stateDirOf(argv, process.env));
const { daemonMain } = await import("./daemon.js");
const code = await daemonMain(argv);
removePidFile(pidFile);
// Exit explicitly: after a graceful shutdown, target watchers of services that keep
// running (they are adopted at the next start) must not hold the process open.
process.exit(code);
