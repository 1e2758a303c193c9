//! Handing a command line to the Node CLI, the one full implementation of `vmctl`: every
//! verb, help, usage errors, starting a daemon that is not running.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the Node CLI's entry sits below a checkout (or an install laid out like one).
const ENTRY: &str = "ts/cli/dist/bin.cjs";

/// `$VMCTL_NODE_CLI`, else `ts/cli/dist/bin.cjs` in the nearest directory above this
/// program that has one (this program is built into the checkout's `target/`).
pub fn locate() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("VMCTL_NODE_CLI") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::fs::canonicalize("/proc/self/exe")
        .map_err(|e| format!("cannot find this program's path: {e}"))?;
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(ENTRY))
        .find(|entry| entry.is_file())
        .ok_or_else(|| {
            format!(
                "no {ENTRY} above {} (set VMCTL_NODE_CLI to the Node CLI's bin.cjs)",
                exe.display()
            )
        })
}

/// Replaces this process with the Node CLI running `args`; returns only on failure.
pub fn exec(args: &[OsString]) -> String {
    match locate() {
        Ok(entry) => exec_entry(&entry, args),
        Err(why) => why,
    }
}

fn exec_entry(entry: &Path, args: &[OsString]) -> String {
    // The entry starts with `#!/usr/bin/env node`: node from the PATH, as npm's link would run it.
    let err = Command::new(entry).arg0("vmctl").args(args).exec();
    format!("cannot run the Node CLI {}: {err}", entry.display())
}
