// The kit's public data: what a plugin author supplies (fixtures, options) and what a
// run reports. Plain data and functions; nothing here touches the host.
import type { PluginEnvironment, PluginRegistration, ServiceFactory } from "@vmctl/core/contract";

/** A spec the kit runs, and a line the workload prints to its output (substring match). */
export interface FixtureSpec {
  readonly spec: unknown;
  readonly line: string;
}

/** Like FixtureSpec; `line`, when given, is awaited before the kit acts (e.g. "the trap is set"). */
export interface RunningFixtureSpec {
  readonly spec: unknown;
  readonly line?: string;
}

/** The `vmctl run` shorthand of a workload, for the run/spec-from-run check. */
export interface FromRunFixture {
  readonly run: { readonly image?: string; readonly command: readonly string[]; readonly env?: Readonly<Record<string, string>> };
  readonly line: string;
  readonly code?: number;
}

/** A spec validate() must refuse, and the field path its ValidationError must name. */
export interface InvalidFixture {
  readonly spec: unknown;
  readonly field: string;
}

/**
 * What only the plugin author knows: how to make a spec for their target that behaves
 * a given way. Every spec here is passed to `validate()` first, as the orchestrator does.
 */
export interface ConformanceFixtures {
  readonly specs: {
    /** Runs, prints `line` to its output, and exits with `code` on its own. */
    exitsWith(code: number): FixtureSpec;
    /** Keeps running and prints something at least every ~100 ms until stopped. */
    runsUntilStopped(): RunningFixtureSpec;
    /** Keeps running and ignores the polite stop (SIGTERM, Ctrl-Alt-Del...), so stop must force it. */
    ignoresPoliteStop(): RunningFixtureSpec;
    /** Bad specs: each must be refused with a ValidationError naming `field`. */
    readonly invalid: readonly InvalidFixture[];
    /**
     * Optional, for targets claiming `volumes`: a spec that mounts `hostDir` and prints the
     * contents of `hostDir/<file>` (the kit writes a token there), then exits 0.
     */
    readsVolume?(hostDir: string, file: string): RunningFixtureSpec;
    /**
     * Optional, for targets with `specFromRun`: the `vmctl run` shorthand (IMAGE, -e K=V,
     * -- COMMAND) of a workload that prints `line` and exits with `code` (default 0).
     */
    fromRun?(): FromRunFixture;
  };
  /**
   * For targets claiming `exec`: a command for exec() and text its stdout must contain;
   * `echoesStdin`, a command that copies its stdin to its stdout and exits 0 at its end
   * (default ["cat"]).
   */
  readonly exec?: {
    readonly args: readonly string[];
    readonly stdout: string;
    readonly echoesStdin?: readonly string[];
    /**
     * false when the target's exec has no terminal (a `tty` request is not honoured): the
     * check's terminal part (size, resize, one output stream, EOF typed) is then skipped
     * and noted. Default true. The terminal part runs `sh -c` with `stty size`.
     */
    readonly tty?: boolean;
  };
  /**
   * For targets claiming `copy` (the capabilities/copy check), optional when the target
   * also claims `exec` and keeps its files after the exit.
   */
  readonly copy?: CopyFixture;
  readonly timeouts?: Partial<ConformanceTimeouts>;
}

/**
 * How the capabilities/copy check gets a tree to copy. The kit picks `path` (under `dir`);
 * the tree is written there by a POSIX shell script of the kit's (mkdir, ln, printf): through
 * exec when the target claims it, else by the workload itself (`running`'s `script`).
 */
export interface CopyFixture {
  /**
   * An absolute directory in the service where the tree is written: writable by the
   * workload and exec'd commands, and whose files stay after the exit (not a tmpfs).
   * Default "/tmp". Made by the script when missing.
   */
  readonly dir?: string;
  /**
   * The service to copy from, default `specs.runsUntilStopped()`: it keeps running until
   * stopped. `path` is what the kit will copy out, while it runs and after its exit: a
   * target that keeps only paths declared up front (a VM that powers off keeps its
   * `RunInput.copyOut` paths) declares `path` in the spec. `script` is given only when
   * the target claims copy but not exec: the workload must run it with `sh -c` first (it
   * writes the tree and prints a line the kit waits for), then keep running.
   */
  running?(path: string, script?: string): RunningFixtureSpec;
}

export interface ConformanceTimeouts {
  /** Budget of one step (create, start, wait, destroy...), so a hung call fails instead of hanging. */
  readonly stepMs: number;
  /** Budget of one whole check, cleanup included. */
  readonly checkMs: number;
  /** `timeoutMs` given to stop() in the stop checks. */
  readonly stopMs: number;
  /** How long after `stopMs` a forced stop may take before the kit calls it hung. */
  readonly forceMarginMs: number;
  /** How long a paused service must stay silent. */
  readonly quietMs: number;
}

export const DEFAULT_TIMEOUTS: ConformanceTimeouts = {
  stepMs: 15_000,
  checkMs: 45_000,
  stopMs: 1_000,
  forceMarginMs: 5_000,
  quietMs: 500,
};

export interface ConformanceOptions {
  /** Exit codes the lifecycle check runs, one check each (default [0, 7]). */
  readonly exitCodes?: readonly number[];
  /** How many lifecycles the concurrency check runs at once (default 4). */
  readonly concurrency?: number;
  /** `PluginEnvironment.options` handed to the target's init (`targets.<name>` in the config). */
  readonly targetOptions?: Readonly<Record<string, unknown>>;
  /** Where the harness makes its temp state dir (default the system temp dir). */
  readonly tmpDir?: string;
  /** Run only the checks whose name matches. */
  readonly only?: RegExp;
  /**
   * Services get an image store, vmctld's own (the native engine from @vmctl/native, which
   * must then be installed): for targets that take OCI images. Default: none, and
   * `ctx.images` refuses as a vmctld without an image engine does.
   */
  readonly images?: boolean;
}

/** Makes a factory; the kit calls it again to simulate an orchestrator restart. */
export type FactoryInit = (env: PluginEnvironment) => ServiceFactory | undefined | Promise<ServiceFactory | undefined>;

/** The plugin under test: exactly one of `factory`, `registration`, `pluginPath`. */
export type PluginSource =
  | { readonly factory: FactoryInit; readonly registration?: undefined; readonly pluginPath?: undefined }
  | { readonly registration: PluginRegistration; readonly factory?: undefined; readonly pluginPath?: undefined }
  | { readonly pluginPath: string; readonly factory?: undefined; readonly registration?: undefined };

export type ConformanceConfig = PluginSource & {
  /** Which of the plugin's targets to check; needed when it registers more than one. */
  readonly target?: string;
  readonly fixtures: ConformanceFixtures;
  readonly options?: ConformanceOptions;
};

export type CheckStatus = "pass" | "fail" | "skip-not-claimed";

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  /** Why it failed; for a pass or skip, what was (not) verified when worth saying. */
  readonly reason?: string;
  readonly durationMs: number;
}

export interface ConformanceReport {
  readonly plugin: string;
  readonly target: string;
  readonly capabilities: Readonly<Record<string, boolean>>;
  readonly checks: readonly CheckResult[];
  /** True when no check failed. */
  readonly ok: boolean;
  readonly durationMs: number;
}
