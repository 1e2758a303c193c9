// The requests the crash test's daemon sends: request i is the same every time it is
// made, so a client retrying after the crash can send exactly what was lost.
import type { CreateServiceInput } from "../orchestrator/api.js";

const KINDS = {
  sleeper: { spec: { args: ["sleep", "300"] }, start: true },
  exits: { spec: { args: ["sh", "-c", "exit 3"] }, start: true },
  idle: { spec: { args: ["true"] }, start: false },
} as const;
export type CrashKind = keyof typeof KINDS;
const kinds = Object.keys(KINDS) as CrashKind[];

export function kindOf(i: number): CrashKind {
  return kinds[i % kinds.length] as CrashKind;
}

/** Every third request is unnamed: only its request id makes a retry safe. */
export function crashRequest(i: number): CreateServiceInput {
  const kind = kindOf(i);
  const { spec, start } = KINDS[kind];
  return { ...(i % 3 === 2 ? {} : { name: `svc-${i}` }), target: "process", spec, start, labels: { kind }, requestId: `req-${i}` };
}
