// Fixtures for `vmctl-conformance .`: how to make "process" specs that behave as the kit
// needs. Only the plugin author knows how to write a spec for their target.
/** @type {import("@vmctl/plugin-conformance").ConformanceFixtures} */
export default {
  specs: {
    exitsWith: (code) => ({ spec: { args: ["sh", "-c", `echo "template exit ${code}"; exit ${code}`] }, line: `template exit ${code}` }),
    runsUntilStopped: () => ({ spec: { args: ["sh", "-c", "while :; do echo tick; sleep 0.05; done"] }, line: "tick" }),
    // The trap is set before the line is printed: once the kit sees it, SIGTERM is ignored.
    ignoresPoliteStop: () => ({ spec: { args: ["sh", "-c", "trap '' TERM INT; echo ignoring; while :; do sleep 0.05; done"] }, line: "ignoring" }),
    // The `vmctl run` shorthand (specFromRun): `vmctl run --target process -e WHO=kit -- sh -c '...'`.
    fromRun: () => ({ run: { command: ["sh", "-c", 'echo "from run: $WHO"'], env: { WHO: "kit" } }, line: "from run: kit" }),
    invalid: [
      { spec: {}, field: "args" },
      { spec: { args: ["sh", 1] }, field: "args[1]" },
      { spec: { args: ["true"], env: { "1BAD": "x" } }, field: "env.1BAD" },
      { spec: { args: ["true"], cwd: "relative" }, field: "cwd" },
      { spec: { args: ["true"], bogus: true }, field: "bogus" },
    ],
  },
};
