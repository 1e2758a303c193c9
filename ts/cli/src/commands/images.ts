// Image verbs, docker's way: vmctl pull, images (image ls), rmi (image rm), image inspect,
// image prune. Progress goes to stderr; stdout holds only what a script reads.
import { createInterface } from "node:readline";
import type { Command } from "commander";
import type { Image, ProgressEvent } from "@vmctl/client";
import { eachRef, withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";
import { humanSize, shortDigest, splitReference, timeAgo } from "../output/format.js";
import { stderrProgress } from "../output/progress-bars.js";
import { formatTable } from "../output/table.js";

/** Docker's first line of a pull ("20: Pulling from library/node"); an import says what it reads. */
export function pullHeader(reference: string): string {
  if (/^(oci|docker-archive|builtin):/.test(reference)) return `Importing ${reference}`;
  if (reference === "default" || reference === "default:latest") return "default: Building from Debian's busybox-static";
  const { repository, tag } = splitReference(reference);
  // Docker names the repository without its registry: "v1: Pulling from team/app".
  const first = repository.split("/")[0] ?? "";
  const registry = repository.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  const path = registry ? repository.slice(first.length + 1) : repository;
  const qualified = path.includes("/") ? path : `library/${path}`;
  const at = reference.indexOf("@");
  return `${tag === "<none>" && at >= 0 ? reference.slice(at + 1) : tag}: Pulling from ${qualified}`;
}

/** `vmctl images` as a table: a row per reference (dangling images as <none>), newest first. */
export function imagesTable(images: readonly Image[], now = Date.now()): string {
  const when = (i: Image): number => (i.created ?? i.pulledAt).getTime();
  const rows = [...images]
    .sort((a, b) => when(b) - when(a))
    .flatMap((image) => {
      const refs = image.references.length > 0 ? image.references.map(splitReference) : [{ repository: "<none>", tag: "<none>" }];
      const created = image.created === undefined ? "N/A" : timeAgo(image.created, now);
      return refs.map(({ repository, tag }) => [repository, tag, shortDigest(image.digest), created, humanSize(image.diskBytes)]);
    });
  return formatTable(["REPOSITORY", "TAG", "DIGEST", "CREATED", "SIZE"], rows);
}

/** What `image inspect` prints of an image: its run config, then its identity and layers. */
export function imageJson(image: Image): unknown {
  return JSON.parse(
    JSON.stringify({
      digest: image.digest,
      references: image.references,
      configDigest: image.configDigest,
      config: image.config,
      layers: image.layers,
      diskBytes: image.diskBytes,
      created: image.created,
      pulledAt: image.pulledAt,
      usedBy: image.usedBy,
    }),
  );
}

async function pull(reference: string, options: { quiet?: boolean }, command: Command): Promise<void> {
  const progress = options.quiet ? undefined : stderrProgress();
  // The header once vmctld has accepted the reference (its first progress event): a
  // refused one gets its one error line and nothing before it.
  let started = false;
  const onProgress = (event: ProgressEvent): void => {
    if (!started) progress?.header(pullHeader(reference));
    started = true;
    progress?.update(event);
  };
  try {
    const image = await withClient(command, (client) => client.pullImage(reference, progress === undefined ? {} : { onProgress }));
    if (!started) progress?.header(pullHeader(reference));
    progress?.finish({ digest: image.digest, reference });
    // As docker: the image's name on stdout, for scripts.
    process.stdout.write(`${image.references[0] ?? image.digest}\n`);
  } finally {
    progress?.end();
  }
}

async function list(options: { json?: boolean; quiet?: boolean }, command: Command): Promise<void> {
  const images = await withClient(command, (client) => client.listImages());
  if (options.json) process.stdout.write(`${JSON.stringify(images.map(imageJson), null, 2)}\n`);
  else if (options.quiet) process.stdout.write([...new Set(images.map((i) => `${i.digest}\n`))].join(""));
  else process.stdout.write(`${imagesTable(images)}\n`);
}

async function remove(refs: string[], options: { force?: boolean }, command: Command): Promise<void> {
  await withClient(command, (client) =>
    eachRef(refs, async (ref) => {
      const removed = await client.removeImage(ref, { force: options.force === true });
      process.stdout.write([...removed.untagged.map((r) => `Untagged: ${r}\n`), ...removed.deleted.map((d) => `Deleted: ${d}\n`)].join(""));
    }),
  );
}

async function inspect(refs: string[], _options: unknown, command: Command): Promise<void> {
  const found: Image[] = [];
  try {
    await withClient(command, (client) => eachRef(refs, async (ref) => void found.push(await client.inspectImage(ref))));
  } finally {
    process.stdout.write(`${JSON.stringify(found.map(imageJson), null, 2)}\n`);
  }
}

/** Asks on stderr, reads one line of stdin (a terminal or not, as docker): yes only for y/yes. */
async function confirm(question: string): Promise<boolean> {
  process.stderr.write(question);
  const lines = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of lines) return /^(y|yes)$/i.test(line.trim());
    return false;
  } finally {
    lines.close();
  }
}

async function prune(options: { all?: boolean; force?: boolean }, command: Command): Promise<void> {
  const warning = options.all ? "all images no service uses" : "all dangling images";
  if (!options.force && !(await confirm(`WARNING! This will remove ${warning}.\nAre you sure you want to continue? [y/N] `))) {
    throw new CliError("image prune: not confirmed (use -f to skip the question)", 1);
  }
  const pruned = await withClient(command, (client) => client.pruneImages({ all: options.all === true }));
  const deleted = pruned.removed.length > 0 ? `Deleted Images:\n${pruned.removed.map((d) => `deleted: ${d}\n`).join("")}\n` : "";
  process.stdout.write(`${deleted}Total reclaimed space: ${humanSize(pruned.reclaimedBytes)}\n`);
}

const pullCommand = (name: string) =>
  (program: Command) =>
    program
      .command(name)
      .description("pull an image into vmctld's image store")
      .argument("<image>", "an image reference (node:20, registry:5000/app@sha256:…), docker-archive:PATH or oci:PATH")
      .option("-q, --quiet", "no progress; only the image's name")
      .action(pull);

const listCommand = (name: string) =>
  (program: Command) =>
    program
      .command(name)
      .description("list images")
      .option("--json", "print the images as JSON")
      .option("-q, --quiet", "only digests")
      .action(list);

const removeCommand = (name: string) =>
  (program: Command) =>
    program
      .command(name)
      .description("remove images (untag; an image goes with its last reference)")
      .argument("<image...>", "image references or digests")
      .option("-f, --force", "even when services use them")
      .action(remove);

export function registerImages(program: Command): void {
  pullCommand("pull")(program);
  listCommand("images")(program);
  removeCommand("rmi")(program);
  const image = program.command("image").description("manage images (pull, ls, rm, inspect, prune)");
  pullCommand("pull")(image);
  listCommand("ls")(image);
  removeCommand("rm")(image);
  image.command("inspect").description("print images (run config, digest, layers) as a JSON array").argument("<image...>", "image references or digests").action(inspect);
  image
    .command("prune")
    .description("remove dangling images (with -a: every image no service uses)")
    .option("-a, --all", "every image no service uses, not only dangling ones")
    .option("-f, --force", "do not ask for confirmation")
    .action(prune);
}
