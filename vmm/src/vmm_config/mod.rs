//! API input types, one file per resource. Each validates strictly and says which
//! field is wrong; runtime objects are built from them by the builder.

pub mod boot_source;
pub mod drive;
pub mod machine_config;
pub mod net;
pub mod vsock;

/// A field of a resource failed validation. Displays as `resource.field: reason`.
pub trait FieldError: std::error::Error {
    /// The field path, e.g. `machine_config.vcpu_count`.
    fn field(&self) -> &'static str;
}

use vmctl_vmm_api::v1 as pb;

use crate::resources::MAX_DRIVES;

/// The bounds the configuration is checked against, from the constants the checks use:
/// GetInfo's `limits`, and what `vmctl-vmm --limits` prints ([`limits_json`]).
pub fn limits() -> pb::Limits {
    pb::Limits {
        max_drives: MAX_DRIVES as u32,
        drive_id_pattern: drive::drive_id_pattern(),
        drive_id_max_len: drive::MAX_DRIVE_ID_LEN as u32,
        max_vcpus: machine_config::MAX_VCPUS,
        min_mem_mib: machine_config::MIN_MEM_MIB,
        max_mem_mib: machine_config::MAX_MEM_MIB,
        min_guest_cid: vsock::MIN_GUEST_CID as u32,
        max_guest_cid: vsock::MAX_GUEST_CID as u32,
        uds_path_max_len: vsock::UDS_PATH_MAX as u32,
        host_dev_name_max_len: net::IFNAME_MAX as u32,
    }
}

/// `limits` as the message's proto3 JSON mapping (lowerCamelCase names), one line: what
/// a client decodes as it decodes GetInfo's `limits`.
pub fn limits_json(limits: &pb::Limits) -> String {
    let pb::Limits {
        max_drives,
        drive_id_pattern,
        drive_id_max_len,
        max_vcpus,
        min_mem_mib,
        max_mem_mib,
        min_guest_cid,
        max_guest_cid,
        uds_path_max_len,
        host_dev_name_max_len,
    } = limits;
    format!(
        "{{\"maxDrives\":{max_drives},\"driveIdPattern\":{},\"driveIdMaxLen\":{drive_id_max_len},\"maxVcpus\":{max_vcpus},\"minMemMib\":{min_mem_mib},\"maxMemMib\":{max_mem_mib},\"minGuestCid\":{min_guest_cid},\"maxGuestCid\":{max_guest_cid},\"udsPathMaxLen\":{uds_path_max_len},\"hostDevNameMaxLen\":{host_dev_name_max_len}}}",
        json_string(drive_id_pattern)
    )
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_are_the_checks_constants_and_print_as_json() {
        let l = limits();
        // 18 virtio-mmio slots, one kept for the vsock device.
        assert_eq!((l.max_drives, l.drive_id_max_len, l.max_vcpus), (17, 20, 32));
        assert_eq!(
            (l.min_guest_cid, l.max_guest_cid, l.uds_path_max_len),
            (3, u32::MAX - 1, 107)
        );
        assert_eq!(
            limits_json(&l),
            r#"{"maxDrives":17,"driveIdPattern":"^[A-Za-z0-9_-]{1,20}$","driveIdMaxLen":20,"maxVcpus":32,"minMemMib":1,"maxMemMib":262144,"minGuestCid":3,"maxGuestCid":4294967294,"udsPathMaxLen":107,"hostDevNameMaxLen":15}"#
        );
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }
}
