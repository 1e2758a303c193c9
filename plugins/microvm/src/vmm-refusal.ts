// A refusal of the VMM told in the spec's terms: the VMM names its own field
// (`drive.path_on_host` of drive "data"); the user wrote `spec.drives[0].path`.
import { VmctlError } from "@vmctl/core/contract";
import { specField, type VmConfig } from "./vm-config.js";

/**
 * `call`, its failure naming the spec's field in place of the VMM's (the VMM's words stay
 * in the message). `vm` is what the VMM was configured from; `driveId` the drive the call
 * was about. A VMM field no spec field stands for is left out of the details.
 */
export async function inSpecTerms<T>(call: Promise<T>, vm: VmConfig, driveId?: string): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (!(err instanceof VmctlError) || err.details.field === undefined) throw err;
    const { field: vmmField, ...rest } = err.details;
    const field = specField(vmmField, driveId === undefined ? undefined : { vm, driveId });
    throw new VmctlError(err.code, field === undefined ? err.message : `${field}: ${err.message}`, {
      cause: err,
      details: field === undefined ? rest : { ...rest, field },
    });
  }
}
