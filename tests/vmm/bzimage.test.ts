// The test guest booted from its bzImage (tests/guests/bzimage, boot protocol 2.12):
// the VMM parses the setup header, loads the protected-mode code at code32_start, enters
// it at +0x200 in 64-bit mode and passes the image's header on in the zero page. Broken
// bzImages are refused naming kernel_image_path and the VMM stays ready.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { requireVmmBinary, VmmProcess, type VmmClient } from "@vmctl/vmm-client";
import { bootGuest, GUEST_BZIMAGE, requireGuestBzImage } from "../guests/harness.js";

const hex = (n: number): string => `0x${n.toString(16)}`;

function header(): { bytes: Buffer; setupBytes: number } {
  const bytes = readFileSync(requireGuestBzImage());
  return { bytes, setupBytes: ((bytes[0x1f1] ?? 0) + 1) * 512 };
}

async function withVmm(run: (client: VmmClient, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-bzimage-"));
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    await vmm.client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
    await run(vmm.client, dir);
  } finally {
    await vmm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function refusedNamingKernel(t: ExecutionContext, err: VmctlError | undefined, why: RegExp): void {
  t.is(err?.code, "INVALID_ARGUMENT");
  t.regex(err?.message ?? "", /^boot_source\.kernel_image_path/);
  t.regex(err?.message ?? "", why);
}

/** Still ready after a refusal: the real bzImage is accepted and boots hello to exit 0. */
async function stillBoots(t: ExecutionContext, client: VmmClient): Promise<void> {
  t.is((await client.getState()).phase, "configuring");
  await client.putBootSource({ kernelImagePath: GUEST_BZIMAGE, bootArgs: "console=ttyS0 vmctl.test=hello" });
  const exited = client.waitExit();
  await client.start();
  const final = await exited;
  t.is(final.exit?.reason, "guest-exit");
  t.is(final.exit?.code, 0);
}

test("bzImage: hello boots through the 64-bit entry at +0x200", async (t) => {
  const { state, console } = await bootGuest({ test: "hello", kernel: requireGuestBzImage() });
  t.is(state.exit?.reason, "guest-exit", JSON.stringify(state));
  t.is(state.exit?.code, 0, console);
  t.regex(console, /vmctl-guest: hello start\n/);
  t.regex(console, /hello from the vmctl test guest\n/);
  t.regex(console, /vmctl-guest: hello PASS\n/);
});

test("bzImage: the zero page carries the image's setup header and the command line", async (t) => {
  const { bytes } = header();
  const { state, facts, console } = await bootGuest({
    test: "boot_params",
    kernel: requireGuestBzImage(),
    memMib: 64,
    args: ["extra.word=1"],
  });
  t.is(state.exit?.code, 0, console);
  t.is(facts.get("entry"), "0x100200", "entered at code32_start + 0x200");
  t.is(facts.get("boot_params"), "0x7000");
  t.is(facts.get("hdr_header"), "HdrS");
  t.is(facts.get("hdr_version"), hex(bytes.readUInt16LE(0x206)));
  t.is(facts.get("hdr_xloadflags"), "0x1");
  t.is(facts.get("hdr_code32_start"), "0x100000");
  t.is(facts.get("hdr_init_size"), hex(bytes.readUInt32LE(0x260)));
  t.is(facts.get("hdr_loadflags"), "0x81", "LOADED_HIGH from the image, CAN_USE_HEAP from the VMM");
  t.is(facts.get("hdr_type_of_loader"), "0xff");
  t.is(facts.get("cmd_line_ptr"), "0x20000");
  t.is(facts.get("cmdline"), "console=ttyS0 vmctl.test=boot_params extra.word=1");
  t.is(facts.get("e820_ram_top"), "0x4000000");
});

test("bzImage: a truncated image is refused naming kernel_image_path; the VMM stays ready", async (t) => {
  const { bytes, setupBytes } = header();
  await withVmm(async (client, dir) => {
    for (const [name, length] of [
      ["half", Math.floor(bytes.length / 2)],
      ["setup-only", setupBytes + 0x100],
    ] as const) {
      const path = join(dir, `${name}.bzImage`);
      writeFileSync(path, bytes.subarray(0, length));
      // Refused at PutBootSource or, at the latest, at Start; either way nothing runs.
      const err = await t.throwsAsync(
        (async () => {
          await client.putBootSource({ kernelImagePath: path, bootArgs: "vmctl.test=hello" });
          await client.start();
        })(),
        { instanceOf: VmctlError },
      );
      refusedNamingKernel(t, err, /truncated/);
    }
    await stillBoots(t, client);
  });
});

test("bzImage: an image without XLF_KERNEL_64 is refused naming kernel_image_path; the VMM stays ready", async (t) => {
  const { bytes } = header();
  await withVmm(async (client, dir) => {
    const noEntry = Buffer.from(bytes);
    noEntry.writeUInt16LE(noEntry.readUInt16LE(0x236) & ~1, 0x236);
    const path = join(dir, "no-xlf.bzImage");
    writeFileSync(path, noEntry);
    const err = await t.throwsAsync(
      (async () => {
        await client.putBootSource({ kernelImagePath: path, bootArgs: "vmctl.test=hello" });
        await client.start();
      })(),
      { instanceOf: VmctlError },
    );
    refusedNamingKernel(t, err, /XLF_KERNEL_64/);
    await stillBoots(t, client);
  });
});
