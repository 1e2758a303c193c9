// Images for the microvm image tests: small OCI layouts built by the image tests'
// fixtures (one gzip'd GNU tar layer), an engine with the real image engine behind its
// store, and test-guest specs that boot from an image.
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import * as native from "@vmctl/native";
import { Orchestrator, silentLogger } from "@vmctl/core";
import { buildImage, type BuiltImage } from "../../../../tests/images/fixtures/image.js";
import registration from "../index.js";
import type { Scratch } from "./context.js";

export interface ImageFixtures {
  image(content?: string, layoutDir?: string): Promise<BuiltImage & { ref: string }>;
  open(t: ExecutionContext, stateDir?: string): Promise<Orchestrator>;
  imageSpec(ref: string, test: string, extra?: Record<string, unknown>, ...words: string[]): Record<string, unknown>;
}

/** Fixtures whose layouts and engines live under the scratch dir `s`. */
export function imageFixtures(s: Scratch): ImageFixtures {
  let seq = 0;
  /** A small image (one gzip'd layer) as an OCI layout under the scratch dir. */
  async function image(content = "v1", layoutDir = join(s.dir, `layout-${++seq}`)): Promise<BuiltImage & { ref: string }> {
    const built = await buildImage(
      {
        layers: [
          {
            entries: [
              { path: "etc", type: "dir" },
              { path: "etc/os-release", type: "file", content: `ID=vmctl-test\nVERSION=${content}\n` },
              { path: "bin", type: "dir" },
              { path: "bin/app", type: "file", content: "#!/bin/sh\necho hi\n", mode: 0o755 },
            ],
          },
        ],
        config: { cmd: ["/bin/app"], env: ["PATH=/bin"] },
      },
      { tag: "t", layoutDir },
    );
    return Object.assign(built, { ref: `oci:${built.layoutDir}:t` });
  }

  async function open(t: ExecutionContext, stateDir = join(s.dir, `engine-${++seq}`)): Promise<Orchestrator> {
    const engine = await Orchestrator.open({ stateDir, plugins: [registration], log: silentLogger, images: { native } });
    t.teardown(() => engine.close());
    return engine;
  }

  /** The test guest running `test`, from the image. */
  function imageSpec(ref: string, test: string, extra: Record<string, unknown> = {}, ...words: string[]): Record<string, unknown> {
    return { kernel: s.guest, image: ref, bootArgs: ["console=ttyS0", `vmctl.test=${test}`, ...words].join(" "), memoryMib: 16, ...extra };
  }

  return { image, open, imageSpec };
}
