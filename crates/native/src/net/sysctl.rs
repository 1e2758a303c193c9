//! Network sysctls of the caller's network namespace, written under /proc/sys/net (no
//! child). Keys are paths below it ("ipv4/ip_forward", "ipv4/conf/vmbr-x/route_localnet"):
//! slashes, not dots, because an interface name may hold a dot.

use std::fs;

use super::NetError;

fn path_of(key: &str) -> Result<String, NetError> {
    let bad = key.is_empty()
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == ".." || part.contains('\0'));
    if bad {
        return Err(NetError::InvalidArgument {
            field: "key".into(),
            problem: format!("{key:?} is not a path below /proc/sys/net"),
        });
    }
    Ok(format!("/proc/sys/net/{key}"))
}

/// Writes `value` to the sysctl at `key`.
pub fn write(key: &str, value: &str) -> Result<(), NetError> {
    let path = path_of(key)?;
    if value.is_empty() || value.contains('\n') || value.contains('\0') {
        return Err(NetError::InvalidArgument {
            field: "value".into(),
            problem: format!("{value:?} must be one non-empty line"),
        });
    }
    fs::write(&path, value).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => NetError::NotFound(format!("sysctl {path} does not exist")),
        _ => NetError::Io {
            what: format!("write {path}"),
            source,
        },
    })
}

/// The sysctl at `key`, trimmed.
pub fn read(key: &str) -> Result<String, NetError> {
    let path = path_of(key)?;
    fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => NetError::NotFound(format!("sysctl {path} does not exist")),
            _ => NetError::Io {
                what: format!("read {path}"),
                source,
            },
        })
}
