import test from "ava";
import { lxcMessage } from "./tools.js";

test("lxcMessage takes the first error, without LXC's source-location prefix", (t) => {
  const log = [
    'lxc-execute c2 20261122210247.374 ERROR    utils - ../src/lxc/utils.c:mkdir_p:236 - Read-only file system - Failed to create directory "/x"',
    "lxc-execute c2 20261122210247.377 ERROR    start - ../src/lxc/start.c:__lxc_start:2107 - Failed to spawn container \"c2\"",
  ].join("\n");
  t.is(lxcMessage(log), 'Read-only file system - Failed to create directory "/x"');
  t.is(lxcMessage("lxc-stop: c1: ../src/lxc/tools/lxc_stop.c: main: 168 c1 is not running\n"), "c1 is not running");
  t.is(lxcMessage("plain words\n"), "plain words");
  t.is(lxcMessage(""), "");
});
