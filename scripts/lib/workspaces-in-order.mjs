// Prints the npm workspace folders so that every package comes after the workspace
// packages it depends on. A dependency cycle is an error.
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

const listed = JSON.parse(execFileSync("npm", ["query", ".workspace", "--json"], { encoding: "utf8" }));
const byName = new Map(listed.map((w) => [w.name, w.location]));
const deps = (location) => {
  const pkg = JSON.parse(readFileSync(`${location}/package.json`, "utf8"));
  const all = { ...pkg.dependencies, ...pkg.devDependencies, ...pkg.peerDependencies };
  return Object.keys(all).filter((name) => byName.has(name));
};

const order = [];
const state = new Map(); // name -> "visiting" | "done"
function visit(name, path) {
  if (state.get(name) === "done") return;
  if (state.get(name) === "visiting") throw new Error(`workspace dependency cycle: ${[...path, name].join(" -> ")}`);
  state.set(name, "visiting");
  for (const dep of deps(byName.get(name))) visit(dep, [...path, name]);
  state.set(name, "done");
  order.push(byName.get(name));
}
for (const name of [...byName.keys()].sort()) visit(name, []);
console.log(order.join("\n"));
