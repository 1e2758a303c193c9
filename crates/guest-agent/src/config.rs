//! The command line. In a VM the kernel hands init the words of its command line it does
//! not know (no `=` or `.`), in order: `--root-base /dev/vda --root-scratch /dev/vdb
//! --hostname web-1 --listen vsock:1024` (see plugins/microvm/src/vm-config.ts). The network's
//! settings cannot come that way (an address has dots): in a VM they are `vmctl.net=` and
//! `vmctl.dns=` on the kernel command line, which init reads (net.rs); `--net`/`--dns` win.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::DEFAULT_VSOCK_PORT;
use crate::init::{InitOptions, RootDisks};
use crate::net;

pub const USAGE: &str = "\
usage: vmctl-agent [--listen vsock:PORT|unix:PATH]... [--init|--no-init]
                   [--root-base DEV --root-scratch DEV] [--hostname NAME]
                   [--net ADDR/PREFIX,GATEWAY[,MTU]] [--dns IP[,IP...]]...

  --listen ADDR      where to serve the agent API (repeatable; default vsock:1024)
  --init             do init's work (mounts, root, power off) even when not PID 1
  --no-init          do none of it even as PID 1
  --root-base DEV    the image's disk (ext4, mounted read-only, overlay lower layer)
  --root-scratch DEV the VM's writable disk (ext4: overlay upper and work)
  --hostname NAME    the guest's hostname
  --net ADDR/PREFIX,GATEWAY[,MTU]
                     as init: the first Ethernet interface's IPv4 address, default
                     route and MTU (default: vmctl.net= of the kernel command line)
  --dns IP[,IP...]   as init: the nameservers of the assembled root's /etc/resolv.conf
                     (repeatable; default: vmctl.dns= of the kernel command line)
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
        let (mut network, mut dns) = (None, Vec::new());
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
                "--net" => network = Some(net::parse_net("--net", &value()?).map_err(ConfigError::Invalid)?),
                "--dns" => net::parse_dns("--dns", &value()?, &mut dns).map_err(ConfigError::Invalid)?,
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
            init_options: InitOptions {
                root,
                hostname,
                network,
                dns,
            },
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

    #[test]
    fn network_options() {
        let config = parse(&[
            "--net",
            "10.0.0.2/24,10.0.0.1",
            "--dns=10.0.0.1",
            "--dns",
            "1.1.1.1,9.9.9.9",
        ])
        .unwrap();
        let options = config.init_options;
        assert_eq!(options.network.unwrap().to_string(), "10.0.0.2/24,10.0.0.1");
        assert_eq!(options.dns.len(), 3);
        assert!(parse(&[]).unwrap().init_options.network.is_none());
        let Err(ConfigError::Invalid(message)) = parse(&["--net", "10.0.0.2/24,10.1.0.1"]) else {
            panic!("a gateway outside the subnet is refused");
        };
        assert!(
            message.starts_with("--net 10.0.0.2/24,10.1.0.1: the gateway"),
            "{message}"
        );
        let Err(ConfigError::Invalid(message)) = parse(&["--dns", "ns1"]) else {
            panic!("a name is no nameserver address");
        };
        assert!(message.starts_with("--dns ns1:"), "{message}");
        assert!(matches!(parse(&["--net"]), Err(ConfigError::Invalid(m)) if m == "--net needs a value"));
    }
}
