// The native image engine (@vmctl/native, Rust) as the orchestrator's NativeImageApi.
// The addon loads on the first image call, so a vmctld that never pulls never pays
// for it at start-up.
import type { NativeImageApi } from "./types.js";

type NativeModule = typeof import("@vmctl/native");

export function nativeImageEngine(): NativeImageApi {
  let loaded: Promise<NativeModule> | undefined;
  const native = (): Promise<NativeModule> => (loaded ??= import("@vmctl/native"));
  return {
    async prepareImage(request, onProgress) {
      const { prepareImage } = await native();
      return prepareImage(
        {
          storeDir: request.storeDir,
          source: request.source,
          ...(request.insecureRegistries === undefined ? {} : { insecureRegistries: [...request.insecureRegistries] }),
          ...(request.dockerConfig === undefined ? {} : { dockerConfig: request.dockerConfig }),
          ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }),
        },
        onProgress,
      );
    },
    async createWritableLayer(request) {
      const { createWritableLayer } = await native();
      return createWritableLayer({ storeDir: request.storeDir, path: request.path, sizeBytes: request.sizeBytes });
    },
  };
}
