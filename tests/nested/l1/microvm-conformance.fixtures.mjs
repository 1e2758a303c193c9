// The plugin conformance kit's fixtures for the microvm target with Linux guests: the
// default image (busybox) booted by vmctl's own kernel from the kernel cache, its workload
// run by the guest agent. Run inside L1 by built-kernel.suite.ts:
//
//   vmctl-conformance plugins/microvm --images --fixtures tests/nested/l1/microvm-conformance.fixtures.mjs
//
// A booting Linux under nesting takes seconds, and the concurrency check boots four at
// once on L1's two vCPUs: the budgets are wide.
const image = (script, more = {}) => ({ image: "default", args: ["sh", "-c", script], ...more });

export default {
  specs: {
    exitsWith: (code) => ({ spec: image(`echo conformance-exit=${code}; exit ${code}`), line: `conformance-exit=${code}` }),
    runsUntilStopped: () => ({ spec: image("while :; do echo tick; sleep 0.05; done"), line: "tick" }),
    // The agent passes SIGTERM on to the workload, which ignores it: stop must force.
    ignoresPoliteStop: () => ({ spec: image("trap '' TERM; echo trap-set; while :; do sleep 1; done"), line: "trap-set" }),
    invalid: [
      { spec: { image: 42 }, field: "image" },
      { spec: image("true", { memoryMib: -1 }), field: "memoryMib" },
      { spec: image("true", { args: "not a list" }), field: "args" },
      { spec: image("true", { env: { "": "x" } }), field: "env." },
      { spec: image("true", { cwd: "relative" }), field: "cwd" },
      { spec: image("true", { agent: false, args: ["x"] }), field: "args" },
      { spec: image("true", { bogus: 1 }), field: "bogus" },
    ],
    fromRun: () => ({ run: { image: "default", command: ["sh", "-c", "echo from-run $GREETING; exit 3"], env: { GREETING: "hello" } }, line: "from-run hello", code: 3 }),
  },
  exec: { args: ["sh", "-c", "echo exec-ok; uname -s"], stdout: "exec-ok" },
  // /tmp is the agent's tmpfs: the tree goes on the writable layer, which outlives the workload.
  copy: {
    dir: "/var/conformance",
    running: (path) => ({ spec: image("while :; do echo tick; sleep 0.05; done", { copyOut: [path] }), line: "tick" }),
  },
  timeouts: { stepMs: 180_000, checkMs: 900_000, stopMs: 5_000, forceMarginMs: 60_000 },
};
