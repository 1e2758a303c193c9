import type { Command } from "commander";
import type { VmctlClient } from "@vmctl/client";
import { cliError } from "../errors.js";
import { globalsOf } from "./globals.js";

/** Runs `fn` with a client for the daemon (started if needed); failures become one CLI line. */
export async function withClient<T>(command: Command, fn: (client: VmctlClient) => Promise<T>): Promise<T> {
  // Loaded here, not at the top: the gRPC client is most of the bundle, and --help,
  // --version and usage errors never need it (see README.md, "Start-up time").
  const { connectOrStart } = await import("./daemon-launcher.js");
  const client = await connectOrStart(globalsOf(command)).catch((err: unknown) => {
    throw cliError(err);
  });
  try {
    return await fn(client);
  } catch (err) {
    throw cliError(err);
  } finally {
    client.close();
  }
}

/** Applies `fn` to each ref in turn; reports each failure as a line, and fails at the end if any did. */
export async function eachRef(refs: readonly string[], fn: (ref: string) => Promise<void>): Promise<void> {
  let failed: unknown;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (err) {
      if (failed !== undefined) process.stderr.write(`vmctl: ${cliError(failed).message}\n`);
      failed = err;
    }
  }
  if (failed !== undefined) throw cliError(failed);
}
