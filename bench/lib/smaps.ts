import { readFileSync } from "node:fs";

/**
 * RSS of a process in MiB, excluding the guest-memory mapping (an anonymous mapping
 * exactly `guestBytes` long): what the VMM itself costs beyond the guest pages touched.
 * `privateMib` counts only anonymous memory outside guest memory: file pages (the
 * binary's text, libc) are shared by every VMM process on the host, so this is the
 * cost of one more VM.
 */
export function rssExcludingGuestMib(
  pid: number,
  guestBytes: number,
): { totalMib: number; guestMib: number; privateMib: number } {
  const smaps = readFileSync(`/proc/${pid}/smaps`, "utf8");
  let totalKb = 0;
  let guestKb = 0;
  let anonymousKb = 0;
  let currentIsGuest = false;
  for (const line of smaps.split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range) {
      const size = Number.parseInt(range[2] as string, 16) - Number.parseInt(range[1] as string, 16);
      const fields = line.trim().split(/\s+/);
      // Anonymous (no path) and guestBytes long, or a little longer: the kernel merges an
      // adjacent anonymous mapping with the same protection (e.g. a malloc arena's
      // 132 KiB heap next to vmctl-vmm's guest memory) into one.
      currentIsGuest = size >= guestBytes && size - guestBytes <= 4 * 1024 * 1024 && fields.length === 5;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB$/.exec(line);
    if (rss) {
      totalKb += Number(rss[1]);
      if (currentIsGuest) guestKb += Number(rss[1]);
    }
    const anonymous = /^Anonymous:\s+(\d+) kB$/.exec(line);
    if (anonymous && !currentIsGuest) anonymousKb += Number(anonymous[1]);
  }
  return { totalMib: totalKb / 1024, guestMib: guestKb / 1024, privateMib: anonymousKb / 1024 };
}
