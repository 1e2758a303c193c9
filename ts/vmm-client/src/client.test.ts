import test from "ava";
import { requireVmmBinary } from "./binary.js";
import { VmmProcess } from "./process.js";

test("a console session closed before anyone reads it does not crash the process", async (t) => {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const session = vmm.client.console({ replay: true });
    session.close();
    // Give grpc-js time to deliver the CANCELLED status to the stream.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const chunks: Buffer[] = [];
    for await (const chunk of session) chunks.push(chunk);
    t.deepEqual(chunks, []);
    t.is((await vmm.client.getState()).phase, "configuring");
  } finally {
    await vmm.close();
  }
});
