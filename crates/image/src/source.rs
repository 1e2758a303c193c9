//! Where an image comes from, as a user writes it: a registry reference
//! (`node:20`, `docker://host:5000/app@sha256:…`), `docker-archive:PATH[:NAME]` or
//! `oci:PATH[:TAG]` (skopeo's transport names, so the same strings work in both), or
//! `builtin:default` (see `builtin`).

use std::path::PathBuf;

use oci_client::Reference;

use crate::error::{ImageError, Result};

#[derive(Debug, Clone)]
pub enum Source {
    Registry(Reference),
    DockerArchive {
        path: PathBuf,
        name: Option<String>,
    },
    OciLayout {
        path: PathBuf,
        tag: Option<String>,
    },
    /// `builtin:default`: the image built here from Debian's static busybox.
    BuiltinDefault,
}

const MAX_SOURCE_LEN: usize = 4096;

impl Source {
    pub fn parse(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(ImageError::invalid("empty reference"));
        }
        if text.len() > MAX_SOURCE_LEN {
            return Err(ImageError::invalid(format!(
                "reference longer than {MAX_SOURCE_LEN} bytes"
            )));
        }
        if text.chars().any(char::is_control) {
            return Err(ImageError::invalid("reference contains control characters"));
        }
        if let Some(name) = text.strip_prefix("builtin:") {
            return match name {
                "default" => Ok(Source::BuiltinDefault),
                other => Err(ImageError::not_found(format!(
                    "no built-in image {other:?} (there is builtin:default)"
                ))),
            };
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (path, name) = split_path(rest);
            return Ok(Source::DockerArchive { path, name });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, tag) = split_path(rest);
            return Ok(Source::OciLayout { path, tag });
        }
        let reference = text.strip_prefix("docker://").unwrap_or(text);
        let parsed: Reference = reference.parse().map_err(|e| {
            ImageError::invalid(format!("{reference:?} is not a valid image reference ({e})"))
        })?;
        // The distribution spec's repository grammar: lowercase, as docker insists too.
        if !parsed
            .repository()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
        {
            return Err(ImageError::invalid(format!(
                "{reference:?}: repository names are lowercase letters, digits and . _ - /"
            )));
        }
        Ok(Source::Registry(parsed))
    }
}

/// `PATH[:SUFFIX]`, split at the first colon as skopeo does.
fn split_path(rest: &str) -> (PathBuf, Option<String>) {
    match rest.split_once(':') {
        Some((path, suffix)) if !suffix.is_empty() => (PathBuf::from(path), Some(suffix.to_owned())),
        Some((path, _)) => (PathBuf::from(path), None),
        None => (PathBuf::from(rest), None),
    }
}

/// The normalised name of a reference as the store records it:
/// `docker.io/library/node:20`, `127.0.0.1:5000/app@sha256:…`.
pub fn normalized_name(reference: &Reference) -> String {
    reference.whole()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references_are_normalised() {
        let Source::Registry(r) = Source::parse("node:20").unwrap() else {
            panic!()
        };
        assert_eq!(normalized_name(&r), "docker.io/library/node:20");
        let Source::Registry(r) = Source::parse("docker://127.0.0.1:5000/app/x:1").unwrap() else {
            panic!()
        };
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "app/x");
    }

    #[test]
    fn transports_split_at_the_first_colon() {
        let Source::DockerArchive { path, name } = Source::parse("docker-archive:/tmp/a.tar:app:1").unwrap()
        else {
            panic!()
        };
        assert_eq!(path, PathBuf::from("/tmp/a.tar"));
        assert_eq!(name.as_deref(), Some("app:1"));
        let Source::OciLayout { path, tag } = Source::parse("oci:/tmp/layout").unwrap() else {
            panic!()
        };
        assert_eq!(path, PathBuf::from("/tmp/layout"));
        assert_eq!(tag, None);
    }

    #[test]
    fn bad_references_are_invalid_argument() {
        for bad in [
            "",
            "UPPER/case",
            "a b",
            "x\u{0}y",
            "é:1",
            "a\nb",
            &"a".repeat(5000),
        ] {
            let err = Source::parse(bad).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidArgument, "{bad:?}");
        }
    }
}
