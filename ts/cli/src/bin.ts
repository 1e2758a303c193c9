#!/usr/bin/env node
import { main } from "./program.js";

// Exit explicitly: `vmctl daemon` leaves watchers of still-running services behind
// after its graceful shutdown (stdout and stderr are synchronous for files and pipes).
process.exit(await main(process.argv.slice(2)));
