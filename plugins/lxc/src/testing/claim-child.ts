// Child process for the address-pool concurrency test: claims one address per id from a
// pool directory shared with other such processes, and prints { id: address } as JSON.
// argv: poolDir subnet id...
import { AddressPool, parseNetworkOptions } from "../network.js";

const [dir, subnet, ...ids] = process.argv.slice(2) as [string, string, ...string[]];
const pool = new AddressPool(dir, parseNetworkOptions({ subnet }));
const out: Record<string, string> = {};
for (const id of ids) out[id] = pool.claim(id);
process.stdout.write(`${JSON.stringify(out)}\n`);
