import { execFileSync } from "node:child_process";
import { closeSync, readlinkSync } from "node:fs";
import { isatty } from "node:tty";
import test from "ava";
import { dupFd, openPty, resizePty } from "@vmctl/native";

/** `stty` on the terminal `fd` is: its settings as stty prints them. */
function stty(fd: number, ...args: string[]): string {
  return execFileSync("stty", ["-F", readlinkSync(`/proc/self/fd/${fd}`), ...args], { encoding: "utf8" }).trim();
}

test("openPty gives a terminal of the asked size; resizePty changes it", (t) => {
  const { master, slave } = openPty(30, 100);
  try {
    t.true(isatty(master) && isatty(slave));
    t.regex(readlinkSync(`/proc/self/fd/${slave}`), /^\/dev\/pts\/\d+$/);
    t.is(stty(slave, "size"), "30 100");
    resizePty(master, 40, 120);
    t.is(stty(slave, "size"), "40 120");
    t.regex(stty(slave, "-a"), /(^| )icanon /, "cooked unless asked");
  } finally {
    closeSync(master);
    closeSync(slave);
  }
});

test("a raw terminal passes bytes through: no line editing, no echo, no CR/LF translation", (t) => {
  const { master, slave } = openPty(24, 80, true);
  try {
    const settings = stty(slave, "-a");
    for (const flag of ["-icanon", "-echo", "-opost", "-icrnl"]) t.regex(settings, new RegExp(`(^|\\s)${flag}(\\s|$)`));
  } finally {
    closeSync(master);
    closeSync(slave);
  }
});

test("dupFd gives a second descriptor of the same terminal", (t) => {
  const { master, slave } = openPty(24, 80);
  const copy = dupFd(master);
  try {
    t.not(copy, master);
    t.true(isatty(copy));
    resizePty(copy, 50, 60);
    t.is(stty(slave, "size"), "50 60");
  } finally {
    for (const fd of [copy, master, slave]) closeSync(fd);
  }
});

test("sizes outside 1..65535 are refused", (t) => {
  t.throws(() => openPty(0, 80), { message: /rows must be 1\.\.65535/ });
  t.throws(() => openPty(24, 70_000), { message: /cols must be 1\.\.65535/ });
});
