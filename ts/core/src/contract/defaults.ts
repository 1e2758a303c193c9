// Where a vmctld lives unless told otherwise: one definition for the daemon, the CLI and
// the client.

/** The daemon's state directory (`--state-dir`, `$VMCTL_STATE_DIR`). */
export const DEFAULT_STATE_DIR = "/var/lib/vmctl";

/** The daemon's API socket (`--socket`, `$VMCTL_SOCKET`). */
export const DEFAULT_SOCKET = "/run/vmctl/vmctld.sock";

/** `<state-dir>/vmctld.pid`: names a daemon from the moment it begins to start. */
export const PID_FILE = "vmctld.pid";
