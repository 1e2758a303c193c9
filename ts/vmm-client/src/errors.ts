import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";

/** gRPC status names, as the VMM uses them (see proto/vmm/v1/vmm.proto). */
export type VmmErrorCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

/** Every failure of the VMM client: a gRPC status from the VMM, or a local failure. */
export class VmmError extends Error {
  override readonly name = "VmmError";
  constructor(
    readonly code: VmmErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Wraps anything thrown by grpc-js or Node into a VmmError, keeping the cause. */
  static from(err: unknown): VmmError {
    if (err instanceof VmmError) return err;
    if (isServiceError(err)) {
      const code = (GrpcStatus[err.code] as VmmErrorCode | undefined) ?? "UNKNOWN";
      return new VmmError(code, err.details || err.message, { cause: err });
    }
    const errno = (err as NodeJS.ErrnoException | undefined)?.code;
    if (errno === "ENOENT" || errno === "ECONNREFUSED") {
      return new VmmError("UNAVAILABLE", err instanceof Error ? err.message : String(err), { cause: err });
    }
    return new VmmError("UNKNOWN", err instanceof Error ? err.message : String(err), { cause: err });
  }
}
