//! Who a command runs as: "uid[:gid]" or "name[:group]", read from the root's
//! /etc/passwd and /etc/group (the image's, in a VM), as an OCI runtime does.

use std::path::Path;

/// Why a user could not be resolved: the caller's mistake (INVALID_ARGUMENT).
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user: no user {0:?} in /etc/passwd")]
    UnknownUser(String),
    #[error("user: no group {0:?} in /etc/group")]
    UnknownGroup(String),
}

/// The identity a command gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary one included).
    pub groups: Vec<u32>,
    /// From /etc/passwd; `HOME` and the default working directory.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `spec` against `<root>/etc/passwd` and `<root>/etc/group`. Missing files are
/// empty: numeric ids still work.
pub fn resolve(spec: &str, root: &Path) -> Result<Identity, UserError> {
    let passwd = read_passwd(&root.join("etc/passwd"));
    let group = read_group(&root.join("etc/group"));
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| UserError::UnknownUser(user_part.to_owned()))?,
        ),
    };
    let uid = entry.map_or_else(|| user_part.parse().unwrap_or(0), |e| e.uid);
    let home = entry.map_or_else(|| "/".to_owned(), |e| e.home.clone());

    let gid = match group_part {
        Some(g) if !g.is_empty() => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                group
                    .iter()
                    .find(|e| e.name == g)
                    .ok_or_else(|| UserError::UnknownGroup(g.to_owned()))?
                    .gid
            }
        },
        _ => entry.map_or(0, |e| e.gid),
    };

    let mut groups = vec![gid];
    // Supplementary groups only when the group was not chosen explicitly (as Docker does).
    if let (Some(entry), None) = (entry, group_part) {
        for g in &group {
            if g.members.contains(&entry.name) && !groups.contains(&g.gid) {
                groups.push(g.gid);
            }
        }
    }
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}

fn read_passwd(path: &Path) -> Vec<PasswdEntry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 6 || line.starts_with('#') {
                return None;
            }
            Some(PasswdEntry {
                name: fields[0].to_owned(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
                home: fields[5].to_owned(),
            })
        })
        .collect()
}

fn read_group(path: &Path) -> Vec<GroupEntry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 3 || line.starts_with('#') {
                return None;
            }
            Some(GroupEntry {
                name: fields[0].to_owned(),
                gid: fields[2].parse().ok()?,
                members: fields
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nalice:x:1000:\nwheel:x:10:alice,bob\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_ids_and_groups() {
        let root = root();
        let alice = resolve("alice", root.path()).unwrap();
        assert_eq!(
            (alice.uid, alice.gid, alice.groups.clone()),
            (1000, 1000, vec![1000, 10])
        );
        assert_eq!(alice.home, "/home/alice");
        assert_eq!(resolve("", root.path()).unwrap().home, "/root");
        let nobody = resolve("65534", root.path()).unwrap();
        assert_eq!((nobody.uid, nobody.gid, nobody.home.as_str()), (65534, 0, "/"));
        assert_eq!(resolve("1000:wheel", root.path()).unwrap().groups, vec![10]);
        assert_eq!(resolve("5:6", root.path()).unwrap().gid, 6);
        assert!(matches!(
            resolve("bob", root.path()),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve("alice:nope", root.path()),
            Err(UserError::UnknownGroup(_))
        ));
    }
}
