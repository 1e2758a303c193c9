import type { CheckEnv } from "./check-env.js";

/**
 * One conformance check. `run` throws CheckFailure (or anything) to fail, NotClaimed to
 * report "skip-not-claimed", and returns to pass. Services it makes through `env` are
 * torn down by the runner.
 */
export interface Check {
  readonly name: string;
  run(env: CheckEnv): Promise<void>;
}
