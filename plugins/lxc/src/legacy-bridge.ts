// What a service made before lxc networking moved onto the orchestrator's networks may
// have left: `spec.network: "bridge"` put it on a bridge of the plugin's own, with its
// address a file `<stateDir>/addresses/<bridge>/<address>` holding the service id and a
// host-side veth `vlxc<digest of the id>`. Such a service must still be destroyable (and
// reapable) after an upgrade, so destroy and removeOwned give both back. Nothing new is
// ever made this way.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";

/** The old host-side veth name of a service: "vlxc" + 11 hex digits of a digest of its id. */
export function legacyVethFor(serviceId: string): string {
  return `vlxc${createHash("sha256").update(serviceId).digest("hex").slice(0, 11)}`;
}

/** The old address pool's claims of a service: [file, address], over every bridge's pool under `dir`. */
function claimsOf(dir: string, serviceId: string): [string, string][] {
  const out: [string, string][] = [];
  let bridges: string[];
  try {
    bridges = readdirSync(dir);
  } catch {
    return out;
  }
  for (const bridge of bridges) {
    let names: string[] = [];
    try {
      names = readdirSync(join(dir, bridge));
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith(".")) continue;
      try {
        if (readFileSync(join(dir, bridge, name), "utf8") === serviceId) out.push([join(dir, bridge, name), name]);
      } catch {
        // released meanwhile
      }
    }
  }
  return out;
}

/** The address an old bridged service holds, for state() of one adopted after the upgrade. */
export function legacyAddress(dir: string, serviceId: string): string | undefined {
  return claimsOf(dir, serviceId)[0]?.[1];
}

/**
 * Gives back what an old bridged service held: its pool files (an emptied pool dir goes
 * too) and its host-side veth, if a crash left it (it goes with the container's network
 * namespace otherwise). The veth is deleted through netlink (@vmctl/native), in the
 * caller's network namespace; none there is fine. The old bridge itself stays, as it always did.
 */
export async function releaseLegacy(dir: string, serviceId: string): Promise<void> {
  for (const [file] of claimsOf(dir, serviceId)) {
    try {
      unlinkSync(file);
    } catch {
      // released meanwhile
    }
  }
  for (const bridge of existsSync(dir) ? readdirSync(dir) : []) {
    try {
      rmdirSync(join(dir, bridge));
    } catch {
      // not empty: other services still hold addresses
    }
  }
  try {
    rmdirSync(dir);
  } catch {
    // not empty, or never there
  }
  const native = await import("@vmctl/native");
  native.deleteLink(legacyVethFor(serviceId));
}
