// Every nested test in one ava file, so they run one after another: each boots an L1
// under QEMU (TCG, about one core), and two at once on a 2-core machine would slow
// each other past their timeouts. The suites register their tests on import.
import "./host.suite.js";
import "./linux-guest.suite.js";
import "./built-kernel.suite.js";
