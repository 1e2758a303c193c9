#!/usr/bin/env node
// vmctl-conformance PLUGIN_DIR [--target NAME] [--fixtures FILE] [--json] [--only REGEX] [--images]
// Loads the plugin as the orchestrator would, runs every check, prints one line per
// check (or the report as JSON) and exits 1 when any check failed, 2 on bad usage.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { findFixturesFile, loadFixtures } from "./fixtures-file.js";
import { formatReport } from "./format.js";
import { runConformance } from "./run-conformance.js";

const USAGE = `usage: vmctl-conformance PLUGIN_DIR [--target NAME] [--fixtures FILE.mjs|FILE.json] [--json] [--only REGEX] [--images]

Runs the vmctl plugin conformance checks against the plugin package in PLUGIN_DIR
(its package.json "vmctl" field names the entry). Fixtures default to
PLUGIN_DIR/vmctl-conformance.fixtures.{mjs,js,json}. --images gives services an
image store, vmctld's own (needs @vmctl/native), for targets that boot OCI images.
Exit status: 0 all checks passed, 1 a check failed, 2 bad usage.`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: "string" },
        fixtures: { type: "string" },
        json: { type: "boolean", default: false },
        only: { type: "string" },
        images: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const pluginDir = resolve(positionals[0]!);
  const scratch = mkdtempSync(join(tmpdir(), "vmctl-conformance-fixtures-"));
  try {
    let fixtures;
    try {
      fixtures = await loadFixtures(findFixturesFile(pluginDir, values.fixtures), { tmpDir: scratch });
    } catch (err) {
      process.stderr.write(`vmctl-conformance: ${(err as Error).message}\n`);
      return 2;
    }
    const report = await runConformance({
      pluginPath: pluginDir,
      fixtures,
      ...(values.target === undefined ? {} : { target: values.target }),
      options: { ...(values.only === undefined ? {} : { only: new RegExp(values.only) }), ...(values.images ? { images: true } : {}) },
    });
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`vmctl-conformance: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
