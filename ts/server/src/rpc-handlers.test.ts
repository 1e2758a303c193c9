import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { silentLogger, VmctlError } from "@vmctl/core";
import { MalformedMessage, STATUS_DETAILS_KEY } from "@vmctl/proto";
import { CallTracker, RpcHandlers } from "./rpc-handlers.js";
import type { StatusObject } from "./grpc-status.js";

type Answer = { err: StatusObject | null; value?: unknown };

/** Runs a unary handler on a fake call; resolves with every callback invocation (the real one allows one). */
async function runUnary<Req>(
  handler: grpc.handleUnaryCall<Req | MalformedMessage, unknown>,
  request: Req | MalformedMessage,
  options: { throwOnFirstAnswer?: boolean } = {},
): Promise<Answer[]> {
  const answers: Answer[] = [];
  const call = Object.assign(new EventEmitter(), { request }) as unknown as grpc.ServerUnaryCall<Req | MalformedMessage, unknown>;
  await new Promise<void>((resolve) => {
    const callback = ((err: StatusObject | null, value?: unknown) => {
      answers.push({ err, value });
      if (options.throwOnFirstAnswer && answers.length === 1) throw new Error("grpc-js refused to send this");
      resolve();
    }) as grpc.sendUnaryData<unknown>;
    handler(call, callback);
  });
  await new Promise((r) => setImmediate(r));
  return answers;
}

const rpc = new RpcHandlers(silentLogger, new CallTracker());

test("a request that did not decode is INVALID_ARGUMENT naming its field and type; the engine is not called", async (t) => {
  let called = false;
  const handler = rpc.unary<{ id: string }, string>("GetService", () => {
    called = true;
    return "x";
  });
  const [answer] = await runUnary(handler, new MalformedMessage("vmctl.v1.ServiceRef", "id", "is not valid UTF-8"));
  t.false(called);
  t.is(answer?.err?.code, grpc.status.INVALID_ARGUMENT);
  t.is(answer?.err?.details, "id: is not valid UTF-8 (malformed vmctl.v1.ServiceRef)");
  t.truthy(answer?.err?.metadata?.get(STATUS_DETAILS_KEY)[0]);
});

test("when sending the answer throws, a plain status follows instead of an unhandled rejection", async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on("unhandledRejection", onRejection);
  try {
    const failing = rpc.unary<{ id: string }, string>("GetService", () => {
      throw new VmctlError("NOT_FOUND", 'no service "é"', { details: { serviceId: "é" } });
    });
    const answers = await runUnary(failing, { id: "é" }, { throwOnFirstAnswer: true });
    t.is(answers.length, 2);
    t.is(answers[1]?.err?.code, grpc.status.NOT_FOUND);
    t.is(answers[1]?.err?.details, 'no service "\\u00e9"');
    t.is(answers[1]?.err?.metadata, undefined);

    const ok = rpc.unary<{ id: string }, string>("GetService", () => "fine");
    const okAnswers = await runUnary(ok, { id: "a" }, { throwOnFirstAnswer: true });
    t.is(okAnswers[1]?.err?.code, grpc.status.INTERNAL);
    t.deepEqual(rejections, []);
  } finally {
    process.off("unhandledRejection", onRejection);
  }
});

test("an error that cannot even be described (its message getter throws) is a plain INTERNAL", async (t) => {
  const evil = Object.create(Error.prototype, {
    message: {
      get() {
        throw new Error("no message for you");
      },
    },
  }) as Error;
  const handler = rpc.unary<{ id: string }, string>("GetService", () => {
    throw evil;
  });
  const [answer] = await runUnary(handler, { id: "a" });
  t.is(answer?.err?.code, grpc.status.INTERNAL);
  t.is(answer?.err?.details, "GetService failed");
});
