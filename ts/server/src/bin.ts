#!/usr/bin/env node
import { daemonMain } from "./daemon.js";

// Exit explicitly: after a graceful shutdown, target watchers of services that keep
// running (they are adopted at the next start) must not hold the process open.
process.exit(await daemonMain(process.argv.slice(2)));
