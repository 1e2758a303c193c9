// Where a vmctld lives unless told otherwise, and the labels it marks what it owns with:
// one definition for the daemon, the CLI, the client and every target.

/** The daemon's state directory (`--state-dir`, `$VMCTL_STATE_DIR`). */
export const DEFAULT_STATE_DIR = "/var/lib/vmctl";

/** The daemon's API socket (`--socket`, `$VMCTL_SOCKET`). */
export const DEFAULT_SOCKET = "/run/vmctl/vmctld.sock";

/** `<state-dir>/vmctld.pid`: names a daemon from the moment it begins to start. */
export const PID_FILE = "vmctld.pid";

/** Label key: the orchestrator installation that owns a resource (TargetContext.ownerLabels). */
export const OWNER_LABEL = "vmctl.io/owner";

/** Label key: the service a resource belongs to. */
export const SERVICE_LABEL = "vmctl.io/service";

/**
 * Label key: the target that made a resource, where targets could share a medium (a
 * Docker daemon's containers carry it). Owner and service labels are what reaping goes by.
 */
export const TARGET_LABEL = "vmctl.io/target";
