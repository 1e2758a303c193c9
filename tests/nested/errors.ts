// Errors of the nested test host. Missing prerequisites are errors, never skips: a test
// that cannot run must fail loudly with what to do.

/** Something the nested host needs (QEMU, the L1 kernel, busybox, cpio) is missing. */
export class NestedHostMissingError extends Error {
  override readonly name = "NestedHostMissingError";
}

/** What L1 had printed and the command had written when a run went wrong. */
export interface L1Diagnostics {
  /** The last lines of L1's serial console. */
  readonly consoleTail: string;
  readonly stdout: string;
  readonly stderr: string;
}

/** L1 did not finish in time; its QEMU was killed. */
export class L1TimeoutError extends Error {
  override readonly name = "L1TimeoutError";
  constructor(
    message: string,
    readonly diagnostics: L1Diagnostics,
  ) {
    super(message);
  }
}

/** L1 ended without reporting the command's exit status (init failed, panic, QEMU error). */
export class L1BootError extends Error {
  override readonly name = "L1BootError";
  constructor(
    message: string,
    readonly diagnostics: L1Diagnostics,
  ) {
    super(message);
  }
}
