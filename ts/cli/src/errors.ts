import { VmctlError } from "@vmctl/core/contract";

/** An error the CLI reports as one line on stderr, exiting with `exitCode`. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The one line a failed call to vmctld is reported as. */
export function describeError(err: VmctlError): string {
  if (err.code === "NOT_FOUND" && err.details.serviceId !== undefined && err.details.field === undefined) {
    return `no such service: ${err.details.serviceId}`;
  }
  return err.message;
}

/** Any failure as a CliError with the given exit code (a CliError keeps its own). */
export function cliError(err: unknown, exitCode = 1): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof VmctlError || (err as { name?: string } | null)?.name === "VmctlError") {
    return new CliError(describeError(err as VmctlError), exitCode, { cause: err });
  }
  return new CliError(err instanceof Error ? err.message : String(err), exitCode, { cause: err });
}
