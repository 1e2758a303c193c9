//! The command line. In a VM the kernel hands init the words of its command line it does
//! not know (no `=` or `.`), in order: `--root-base /dev/vda --root-scratch /dev/vdb
//! --hostname web-1 --listen vsock:1024` (see plugins/microvm/src/vm-config.ts).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::DEFAULT_VSOCK_PORT;
use crate::init::{InitOptions, RootDisks};

pub const USAGE: &str = "\
usage: vmctl-agent [--listen vsock:PORT|unix:PATH]... [--init|--no-init]
                   [--root-base DEV --root-scratch DEV] [--hostname NAME]

  --listen ADDR      where to serve the agent API (repeatable; default vsock:1024)
  --init             do init's work (mounts, root, power off) even when not PID 1
  --no-init          do none of it even as PID 1
  --root-base DEV    the image's disk (ext4, mounted read-only, overlay lower layer)
  --root-scratch DEV the VM's writable disk (ext4: overlay upper and work)
  --hostname NAME    the guest's hostname
  --version          print the version";

/// Where the API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// vsock, any CID, this port.
    Vsock(u32),
    Unix(PathBuf),
}

/// What the agent was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Vec<Listen>,
    /// None: decide by the pid (init when PID 1).
    pub init: Option<bool>,
    pub init_options: InitOptions,
}

/// What the command line asks for instead of running.
#[derive(Debug, PartialEq, Eq)]
pub enum ConfigError {
    Help,
    Version,
    Invalid(String),
}

impl Config {
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, ConfigError> {
        let mut args = args.into_iter().skip(1).map(|a| a.to_string_lossy().into_owned());
        let mut listen = Vec::new();
        let mut init = None;
        let (mut base, mut scratch, mut hostname) = (None, None, None);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ConfigError::Invalid(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--listen" => listen.push(parse_listen(&value()?)?),
                "--init" => init = Some(true),
                "--no-init" => init = Some(false),
                "--root-base" => base = Some(PathBuf::from(value()?)),
                "--root-scratch" => scratch = Some(PathBuf::from(value()?)),
                "--hostname" => hostname = Some(value()?),
                "--help" | "-h" => return Err(ConfigError::Help),
                "--version" | "-V" => return Err(ConfigError::Version),
                other => return Err(ConfigError::Invalid(format!("unknown argument {other:?}"))),
            }
        }
        let root = match (base, scratch) {
            (Some(base), Some(scratch)) => Some(RootDisks { base, scratch }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "--root-base and --root-scratch go together".to_owned(),
                ));
            }
        };
        if listen.is_empty() {
            listen.push(Listen::Vsock(DEFAULT_VSOCK_PORT));
        }
        Ok(Self {
            listen,
            init,
            init_options: InitOptions { root, hostname },
        })
    }
}

fn parse_listen(text: &str) -> Result<Listen, ConfigError> {
    if let Some(port) = text.strip_prefix("vsock:") {
        return port
            .parse()
            .map(Listen::Vsock)
            .map_err(|_| ConfigError::Invalid(format!("--listen {text}: the port is not a number")));
    }
    if let Some(path) = text.strip_prefix("unix:")
        && !path.is_empty()
    {
        return Ok(Listen::Unix(PathBuf::from(path)));
    }
    Err(ConfigError::Invalid(format!(
        "--listen {text}: expected vsock:PORT or unix:PATH"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        Config::parse(
            std::iter::once("vmctl-agent")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn defaults_and_flags() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.listen, vec![Listen::Vsock(1024)]);
        assert_eq!(config.init, None);
        let config = parse(&[
            "--listen=unix:/tmp/a.sock",
            "--listen",
            "vsock:5000",
            "--no-init",
            "--root-base",
            "/dev/vda",
            "--root-scratch=/dev/vdb",
        ])
        .unwrap();
        assert_eq!(
            config.listen,
            vec![Listen::Unix("/tmp/a.sock".into()), Listen::Vsock(5000)]
        );
        assert_eq!(config.init, Some(false));
        assert_eq!(
            config.init_options.root.unwrap().scratch,
            PathBuf::from("/dev/vdb")
        );
        assert!(matches!(
            parse(&["--root-base", "/dev/vda"]),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            parse(&["--listen", "tcp:1"]),
            Err(ConfigError::Invalid(_))
        ));
        assert_eq!(parse(&["--version"]), Err(ConfigError::Version));
    }
}
