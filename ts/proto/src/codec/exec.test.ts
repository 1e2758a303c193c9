import test from "ava";
import { ValidationError } from "@vmctl/core/contract";
import { vmctl } from "../gen/protos.js";
import { execInputFromProto, execOutputFromProto, execOutputToProto, execStartToProto, type ExecOutputMessage } from "./exec.js";

const pb = vmctl.v1;

/** Through the wire and back, as the peer would see it. */
function wireInput(message: vmctl.v1.IExecInput): vmctl.v1.ExecInput {
  return pb.ExecInput.decode(pb.ExecInput.encode(message).finish());
}

test("a start the client sends decodes on the server as it was asked", (t) => {
  const request = { args: ["sh", "-c", "echo é\u0001"], tty: true, stdin: true, size: { rows: 40, cols: 120 } };
  t.deepEqual(execInputFromProto(wireInput(execStartToProto("web", request))), { kind: "start", ref: "web", request });
  const plain = { args: ["true"], tty: false, stdin: false };
  t.deepEqual(execInputFromProto(wireInput(execStartToProto("0123456789abcdef", plain))), { kind: "start", ref: "0123456789abcdef", request: plain });
});

test("stdin, its end, resizes and signals decode; a size out of bounds names the field", (t) => {
  t.deepEqual(execInputFromProto(wireInput({ stdin: Buffer.from("hi") })), { kind: "stdin", data: Buffer.from("hi") });
  t.deepEqual(execInputFromProto(wireInput({ closeStdin: {} })), { kind: "closeStdin" });
  t.deepEqual(execInputFromProto(wireInput({ resize: { rows: 1, cols: 65_535 } })), { kind: "resize", size: { rows: 1, cols: 65_535 } });
  t.deepEqual(execInputFromProto(wireInput({ signal: "INT" })), { kind: "signal", name: "INT" });
  t.throws(() => execInputFromProto(wireInput({ resize: { rows: 0, cols: 80 } })), { instanceOf: ValidationError, message: /resize\.rows/ });
  t.throws(() => execInputFromProto(wireInput({ resize: { rows: 24, cols: 70_000 } })), { instanceOf: ValidationError, message: /resize\.cols/ });
  t.throws(() => execInputFromProto(wireInput({ start: { id: "x", args: ["a"], size: { rows: 24 } } })), { instanceOf: ValidationError, message: /start\.size\.cols/ });
  t.throws(() => execInputFromProto(wireInput({})), { instanceOf: ValidationError, message: /input/ });
});

test("what the server sends reads back the same on the client", (t) => {
  const messages: ExecOutputMessage[] = [
    { kind: "started" },
    { kind: "output", output: { stream: "stdout", data: Buffer.from([0, 1, 255]) } },
    { kind: "output", output: { stream: "stderr", data: Buffer.from("err") } },
    { kind: "exited", exit: { code: 7 } },
    { kind: "exited", exit: { code: null, signal: "SIGKILL" } },
    { kind: "exited", exit: { code: 0 } },
  ];
  for (const message of messages) {
    const wire = pb.ExecOutput.decode(pb.ExecOutput.encode(execOutputToProto(message)).finish());
    t.deepEqual(execOutputFromProto(wire), message);
  }
  t.is(execOutputFromProto(pb.ExecOutput.decode(new Uint8Array())), undefined, "an unknown (newer) message is skipped, not misread");
});
