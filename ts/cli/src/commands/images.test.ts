import test from "ava";
import type { Image } from "@vmctl/client";
import { main } from "../program.js";
import { splitReference, timeAgo } from "../output/format.js";
import { imageJson, imagesTable, pullHeader } from "./images.js";

/** Runs the CLI in-process; what it wrote to stdout and stderr, and its exit code. */
async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: "", stderr: "" };
  const write = (key: "stdout" | "stderr") => (chunk: string | Uint8Array) => ((out[key] += String(chunk)), true);
  const original = { stdout: process.stdout.write, stderr: process.stderr.write };
  process.stdout.write = write("stdout") as typeof process.stdout.write;
  process.stderr.write = write("stderr") as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, ...out };
  } finally {
    process.stdout.write = original.stdout;
    process.stderr.write = original.stderr;
  }
}

// Serial: they replace process.stdout/stderr.write for the time of a run.
test.serial("image verbs without their image are a usage error: exit 2, one readable line, before any daemon is asked", async (t) => {
  for (const argv of [["rmi"], ["pull"], ["image", "rm"], ["image", "inspect"], ["image", "pull"]]) {
    const result = await run("--socket", "/nonexistent/vmctld.sock", ...argv);
    t.is(result.code, 2, argv.join(" "));
    t.is(result.stdout, "");
    t.regex(result.stderr, /^vmctl: missing required argument 'image' \(see 'vmctl --help'\)\n$/, argv.join(" "));
  }
  const unknown = await run("images", "--bogus");
  t.is(unknown.code, 2);
  t.is(unknown.stderr, "vmctl: unknown option '--bogus' (see 'vmctl --help')\n");
});

const image = (over: Partial<Image>): Image => ({
  digest: `sha256:3f4a9c1b2d7e${"0".repeat(52)}`,
  references: [],
  configDigest: "sha256:c",
  config: { entrypoint: [], cmd: ["sh"], env: ["PATH=/bin"], workingDir: "/", user: "", labels: {} },
  layers: [{ digest: "sha256:1", size: 10, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }],
  diskBytes: 187_654_321,
  pulledAt: new Date(0),
  usedBy: [],
  ...over,
});

test("vmctl images: a row per reference, Docker Hub's prefixes dropped, dangling as <none>, newest first", (t) => {
  const now = Date.parse("2025-01-31T12:00:00Z");
  const table = imagesTable(
    [
      image({ references: ["docker.io/library/node:20", "docker.io/library/node:lts"], created: new Date(now - 15 * 86400_000) }),
      image({ digest: `sha256:9b1c2d3e4f5a${"1".repeat(52)}`, references: ["127.0.0.1:5000/team/app@sha256:9b1c"], created: new Date(now - 3600_000), diskBytes: 1234 }),
      image({ digest: `sha256:c0ffee000001${"2".repeat(52)}`, references: [], diskBytes: 0 }),
    ],
    now,
  );
  t.is(
    table,
    [
      "REPOSITORY               TAG     DIGEST        CREATED            SIZE",
      "127.0.0.1:5000/team/app  <none>  9b1c2d3e4f5a  About an hour ago  1.234kB",
      "node                     20      3f4a9c1b2d7e  2 weeks ago        187.7MB",
      "node                     lts     3f4a9c1b2d7e  2 weeks ago        187.7MB",
      "<none>                   <none>  c0ffee000001  N/A                0B",
    ].join("\n"),
  );
  t.deepEqual(splitReference("localhost:5000/app"), { repository: "localhost:5000/app", tag: "<none>" });
  t.deepEqual(splitReference("docker.io/bitnami/redis:7.2"), { repository: "bitnami/redis", tag: "7.2" });
  t.is(pullHeader("node:20"), "20: Pulling from library/node");
  t.is(pullHeader("ghcr.io/o/app@sha256:ab"), "sha256:ab: Pulling from o/app");
  t.is(timeAgo(new Date(now - 3 * 365 * 86400_000), now), "3 years ago");
  t.is(timeAgo(new Date(now - 30_000), now), "30 seconds ago");
});

test("image inspect shows the run config, digest and layers as JSON", (t) => {
  const created = new Date("2024-05-01T10:00:00Z");
  t.deepEqual(imageJson(image({ references: ["node:20"], created })), {
    digest: `sha256:3f4a9c1b2d7e${"0".repeat(52)}`,
    references: ["node:20"],
    configDigest: "sha256:c",
    config: { entrypoint: [], cmd: ["sh"], env: ["PATH=/bin"], workingDir: "/", user: "", labels: {} },
    layers: [{ digest: "sha256:1", size: 10, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }],
    diskBytes: 187_654_321,
    created: "2024-05-01T10:00:00.000Z",
    pulledAt: "1970-01-01T00:00:00.000Z",
    usedBy: [],
  });
});
