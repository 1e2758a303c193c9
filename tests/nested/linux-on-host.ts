// The entry of `npm run test:linux` (scripts/test-linux, which sets
// VMCTL_LINUX_RUNNER=host): the Linux tests of vmctl's own kernel with their scripts run
// straight on a host with hardware KVM, no nesting. Not named *.test.ts, so plain
// `npx ava` (npm test) does not pick it up; npm test runs the same suite nested, through
// nested.test.ts.
import "./built-kernel.suite.js";
