// What the spec check cannot see, the VMM refuses at start: the refusal names the user's
// field (`spec.drives[1].path`), mapped from the VMM's (`drive.path_on_host` of that drive,
// in the status's details), never the VMM's own.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { scratch, testContext } from "./testing/context.js";
import { specField, type VmConfig } from "./vm-config.js";

const s = scratch("vmctl-mvm-refusal-");
test.after.always(() => s.cleanup());
const factory = s.factory();

async function startRefused(t: import("ava").ExecutionContext, id: string, spec: unknown): Promise<VmctlError | undefined> {
  const ctx = testContext(s.dir, id);
  const c = await factory.create(id, factory.validate(spec), ctx);
  t.teardown(() => c.destroy());
  return t.throwsAsync(c.start(), { instanceOf: VmctlError });
}

test("a drive the spec lets through but the VMM refuses is reported with the spec's field", async (t) => {
  // One writable file behind two drives: each drive is fine alone, the VMM refuses the pair.
  const disk = join(s.dir, "shared.img");
  writeFileSync(disk, Buffer.alloc(4096));
  const spec = { ...s.guestSpec("hello"), drives: [{ id: "first", path: disk }, { id: "second", path: disk }] };
  const err = await startRefused(t, "shared", spec);
  t.is(err?.code, "ALREADY_EXISTS");
  t.deepEqual(err?.details, { field: "spec.drives[1].path", serviceId: "shared", target: "microvm" });
  t.regex(err?.message ?? "", /^starting the VM of shared: spec\.drives\[1\]\.path: drive\.path_on_host: .*already used by drive "first"/);
});

test("a kernel the spec lets through but the VMM cannot load is reported as spec.kernel", async (t) => {
  const kernel = join(s.dir, "not-a-kernel");
  writeFileSync(kernel, "not an ELF or bzImage");
  const err = await startRefused(t, "kernel", { ...s.guestSpec("hello"), kernel });
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, "spec.kernel");
});

test("the VMM's fields map to the spec's: drives through the VM they were made from, image drives to spec.image", (t) => {
  const vm: VmConfig = {
    vmId: "v",
    kernel: "/k",
    bootArgs: "",
    vcpus: 1,
    memoryMib: 16,
    drives: [
      { id: "rootfs", path: "/base", readOnly: true, root: true },
      { id: "scratch", path: "/layer" },
      { id: "data", path: "/d" },
    ],
    image: { reference: "a", digest: "sha256:0", disk: "/base", diskBytes: 0 },
    scratch: { path: "/layer", sizeBytes: 0 },
  };
  t.is(specField("machine_config.mem_size_mib"), "spec.memoryMib");
  t.is(specField("boot_source.initrd_path"), "spec.initrd");
  t.is(specField("drive.drive_id", { vm, driveId: "data" }), "spec.drives[0].id");
  t.is(specField("drive.is_root_device", { vm, driveId: "data" }), "spec.drives[0].root");
  t.is(specField("drive", { vm, driveId: "data" }), "spec.drives[0]");
  t.is(specField("drive.path_on_host", { vm, driveId: "scratch" }), "spec.image");
  const { image: _image, scratch: _scratch, ...plain } = vm;
  t.is(specField("drive.path_on_host", { vm: { ...plain, drives: vm.drives.slice(2) }, driveId: "data" }), "spec.drives[0].path");
  // No spec field: a drive the VM does not have, a drive field without its drive, a field the spec has no word for.
  t.is(specField("drive.path_on_host", { vm, driveId: "other" }), undefined);
  t.is(specField("drive.path_on_host"), undefined);
  t.is(specField("console_input.data"), undefined);
});
