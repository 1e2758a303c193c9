// The kit against the repo's plain-JS "process" target: every check passes.
import test from "ava";
import { conformanceTests } from "./index.js";
import { PROCESS_PLUGIN_DIR, processFixtures } from "./testing/process-fixtures.js";

conformanceTests(test, { pluginPath: PROCESS_PLUGIN_DIR, fixtures: processFixtures }, { title: "process target: " });
