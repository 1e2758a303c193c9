// Registration and options: plain data, the socket from options, DOCKER_HOST or the default.
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import registration, { DEFAULT_SOCKET, initDocker, parseDockerOptions } from "./index.js";
import { MemoryLogger } from "./testing/context.js";

test("registration is plain data naming the docker target", (t) => {
  t.is(registration.name, "vmctl-plugin-docker");
  t.deepEqual(registration.targets.map((r) => r.target), ["docker"]);
});

test("the socket: options.socket, else DOCKER_HOST=unix://, else the default", (t) => {
  t.is(parseDockerOptions({ socket: "/run/x.sock" }, { DOCKER_HOST: "unix:///other.sock" }).socket, "/run/x.sock");
  t.is(parseDockerOptions({}, { DOCKER_HOST: "unix:///run/user/1000/docker.sock" }).socket, "/run/user/1000/docker.sock");
  t.is(parseDockerOptions({}, {}).socket, DEFAULT_SOCKET);
  t.is(DEFAULT_SOCKET, "/var/run/docker.sock");
});

test("bad options are refused at init, naming the option", (t) => {
  const e1 = t.throws(() => parseDockerOptions({ sockett: "/x" }, {}), { instanceOf: VmctlError });
  t.is(e1?.details.field, "targets.docker.sockett");
  const e2 = t.throws(() => parseDockerOptions({ socket: "relative.sock" }, {}), { instanceOf: VmctlError });
  t.is(e2?.details.field, "targets.docker.socket");
  const e3 = t.throws(() => parseDockerOptions({}, { DOCKER_HOST: "tcp://10.0.0.1:2375" }), { instanceOf: VmctlError });
  t.regex(e3?.message ?? "", /not a unix:\/\/ socket/);
});

test("init does not contact the daemon: a factory is made even when the socket is absent", (t) => {
  const factory = initDocker({ stateDir: "/nonexistent", options: { socket: "/nonexistent/docker.sock" }, log: new MemoryLogger() });
  t.is(factory.target, "docker");
  t.is(factory.engine.socket, "/nonexistent/docker.sock");
  t.true(factory.capabilities.exec && factory.capabilities.pause && factory.capabilities.volumes && factory.capabilities.logsFollow && factory.capabilities.network);
});
