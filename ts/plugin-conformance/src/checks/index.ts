// Every check, in the order the kit runs them.
import { adoptExited, adoptInterruptedStart, adoptRunning } from "./adopt.js";
import { capabilityExec, capabilityLogsFollow, capabilityNetwork, capabilityPause, capabilityVolumes } from "./capabilities.js";
import type { Check } from "./check.js";
import { capabilityCopy } from "./copy.js";
import { concurrentLifecycles } from "./concurrency.js";
import { destroyCreated, destroyExited, destroyRunning } from "./destroy.js";
import { exitCodeCheck } from "./lifecycle.js";
import { requiresCheck } from "./requires.js";
import { specFromRunCheck } from "./spec-from-run.js";
import { stopForced, stopGraceful } from "./stop.js";
import { validateAcceptsValid, validateRejectsInvalid } from "./validate.js";

export type { Check } from "./check.js";
export type { CheckEnv, Service } from "./check-env.js";

export const DEFAULT_EXIT_CODES: readonly number[] = [0, 7];

export function allChecks(exitCodes: readonly number[] = DEFAULT_EXIT_CODES): Check[] {
  return [
    requiresCheck,
    validateRejectsInvalid,
    validateAcceptsValid,
    specFromRunCheck,
    ...exitCodes.map(exitCodeCheck),
    stopGraceful,
    stopForced,
    destroyRunning,
    destroyExited,
    destroyCreated,
    adoptRunning,
    adoptExited,
    adoptInterruptedStart,
    concurrentLifecycles,
    capabilityLogsFollow,
    capabilityPause,
    capabilityExec,
    capabilityCopy,
    capabilityNetwork,
    capabilityVolumes,
  ];
}
