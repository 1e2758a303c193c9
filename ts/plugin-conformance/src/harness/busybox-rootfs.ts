// The rootfs every container target's tests run: busybox-static and its applet links.
// One fixture for the oci, lxc and docker tests (and the end-to-end tests that use them).
import { copyFileSync, chmodSync, existsSync, mkdirSync, symlinkSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

/** The applets every target's tests call; a test may ask for more. */
export const BUSYBOX_APPLETS = ["sh", "echo", "sleep", "cat", "ls", "id", "pwd", "env", "true", "false", "touch", "kill", "wc"] as const;

/**
 * `<dir>/rootfs`: /bin/busybox (static) and links for `applets`, with the usual mount
 * points. Throws (never skips) when busybox-static is missing: the tests need a real rootfs.
 */
export function busyboxRootfs(dir: string, applets: readonly string[] = BUSYBOX_APPLETS): string {
  const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p));
  if (!busybox) throw new Error("busybox not found: install busybox-static (npm run setup)");
  const ldd = spawnSync("ldd", [busybox], { encoding: "utf8" });
  const linked = `${ldd.stdout ?? ""}${ldd.stderr ?? ""}`;
  if (!/not a dynamic executable|statically linked/.test(linked)) {
    throw new Error(`${busybox} is not static (${linked.trim()}): install busybox-static`);
  }
  const rootfs = join(dir, "rootfs");
  for (const d of ["bin", "proc", "dev", "sys", "tmp", "etc", "mnt"]) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(busybox, join(rootfs, "bin", "busybox"));
  chmodSync(join(rootfs, "bin", "busybox"), 0o755);
  for (const applet of new Set(applets)) symlinkSync("busybox", join(rootfs, "bin", applet));
  return rootfs;
}
