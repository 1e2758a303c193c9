//! The command lines the native front serves itself, read exactly; anything else — another
//! verb, a flag it does not know, a value it would have to judge — is `None`, and the Node
//! CLI (the one full implementation) gets the command line untouched. So the front never
//! has an opinion of its own on what a command line means: it either reads it as the Node
//! CLI would, or does not read it.

use std::collections::BTreeMap;
use std::ffi::OsString;

pub const DEFAULT_SOCKET: &str = "/run/vmctl/vmctld.sock";

/// Where vmctld listens (`--socket`, `$VMCTL_SOCKET`), and the global options as given,
/// to hand over to the Node CLI unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    pub socket: String,
    pub raw: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    /// `vmctl ps [-a]`.
    Ps { all: bool },
    /// `vmctl run [--rm] [--target T] [--name N] [-e K=V]... [--label K=V]... [IMAGE] [-- CMD...]`.
    Run(RunArgs),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    pub rm: bool,
    pub target: String,
    pub name: Option<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub image: Option<String>,
    pub command: Vec<String>,
}

/// The command line (without argv\[0\]) as a verb served natively, or `None` for the Node CLI.
/// `env` reads an environment variable.
pub fn parse(args: &[OsString], env: impl Fn(&str) -> Option<String>) -> Option<(Globals, Verb)> {
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    // As the Node CLI: everything after the first "--" is the workload's command.
    let (options, command) = match args.iter().position(|a| *a == "--") {
        Some(i) => (&args[..i], Some(&args[i + 1..])),
        None => (&args[..], None),
    };
    let mut socket = match env("VMCTL_SOCKET") {
        // Set but empty: the Node CLI says what is wrong with it.
        Some(s) if s.is_empty() => return None,
        Some(s) => s,
        None => DEFAULT_SOCKET.to_string(),
    };
    let mut rest = options.iter().copied();
    let mut raw = Vec::new();
    let verb = loop {
        let arg = rest.next()?;
        if let Some(value) = option_value(arg, "--socket", &mut rest)? {
            socket = value;
        } else if option_value(arg, "--state-dir", &mut rest)?.is_some()
            || option_value(arg, "--config", &mut rest)?.is_some()
        {
            // Used only by a daemon this command would start, which the Node CLI does.
        } else {
            break arg;
        }
    };
    let rest: Vec<&str> = rest.collect();
    let given = options.len() - rest.len() - 1;
    raw.extend(options[..given].iter().map(|a| a.to_string()));
    let verb = match verb {
        "ps" if command.is_none() => Verb::Ps { all: ps_all(&rest)? },
        "run" => Verb::Run(run_args(&rest, command.unwrap_or_default())?),
        _ => return None,
    };
    Some((Globals { socket, raw }, verb))
}

/// `Some(Some(value))` when `arg` is `name VALUE` or (a long option) `name=VALUE`; `Some(None)` when it is
/// another argument; `None` (not served) for a value that is missing, empty or looks like
/// an option.
fn option_value<'a>(
    arg: &str,
    name: &str,
    rest: &mut impl Iterator<Item = &'a str>,
) -> Option<Option<String>> {
    let value = if arg == name {
        rest.next()?
    } else if let Some(v) = arg
        .strip_prefix(name)
        .and_then(|v| v.strip_prefix('='))
        .filter(|_| name.starts_with("--"))
    {
        v
    } else {
        return Some(None);
    };
    (!value.is_empty() && !value.starts_with('-')).then(|| Some(value.to_string()))
}

fn ps_all(rest: &[&str]) -> Option<bool> {
    let mut all = false;
    for arg in rest {
        match *arg {
            "-a" | "--all" => all = true,
            _ => return None,
        }
    }
    Some(all)
}

fn run_args(rest: &[&str], command: &[&str]) -> Option<RunArgs> {
    let mut run = RunArgs {
        rm: false,
        target: "oci".to_string(),
        name: None,
        env: BTreeMap::new(),
        labels: BTreeMap::new(),
        image: None,
        command: command.iter().map(|c| c.to_string()).collect(),
    };
    let mut args = rest.iter().copied();
    while let Some(arg) = args.next() {
        if arg == "--rm" {
            run.rm = true;
        } else if let Some(v) = option_value(arg, "--target", &mut args)? {
            run.target = v;
        } else if let Some(v) = option_value(arg, "--name", &mut args)? {
            run.name = Some(v);
        } else if let Some(v) = option_value(arg, "-e", &mut args)?.or(option_value(arg, "--env", &mut args)?)
        {
            let (k, v) = key_value(&v)?;
            run.env.insert(k, v);
        } else if let Some(v) = option_value(arg, "--label", &mut args)? {
            let (k, v) = key_value(&v)?;
            run.labels.insert(k, v);
        } else if arg.starts_with('-') || arg.is_empty() || run.image.is_some() {
            // Another flag, or a second positional (the command without "--"): the Node CLI's.
            return None;
        } else {
            run.image = Some(arg.to_string());
        }
    }
    Some(run)
}

/// "K=V" with a key; a bad one is the Node CLI's to report.
fn key_value(item: &str) -> Option<(String, String)> {
    let (k, v) = item.split_once('=')?;
    (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Option<(Globals, Verb)> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args, |_| None)
    }

    #[test]
    fn ps_and_its_flag() {
        assert_eq!(parse_str(&["ps"]).map(|p| p.1), Some(Verb::Ps { all: false }));
        assert_eq!(
            parse_str(&["--socket", "/s", "ps", "-a"]),
            Some((
                Globals {
                    socket: "/s".into(),
                    raw: vec!["--socket".into(), "/s".into()]
                },
                Verb::Ps { all: true }
            ))
        );
        assert_eq!(
            parse_str(&["--socket=/s", "ps", "--all"]).map(|p| p.0.socket),
            Some("/s".into())
        );
        for other in [
            &["ps", "--json"][..],
            &["ps", "-a", "--filter", "x"],
            &["ps", "--", "x"],
            &["ps", "-aq"],
            &["--help"],
            &["--version"],
            &[],
            &["logs", "x"],
        ] {
            assert_eq!(parse_str(other), None, "{other:?}");
        }
    }

    #[test]
    fn run_with_the_flags_served() {
        let (_, verb) = parse_str(&[
            "--state-dir",
            "/d",
            "run",
            "--rm",
            "--target=lxc",
            "-e",
            "A=1=2",
            "--env=B=",
            "--label",
            "k=v",
            "--name",
            "n",
            "/rootfs",
            "--",
            "sh",
            "-c",
            "exit 3",
            "--",
        ])
        .unwrap();
        let Verb::Run(run) = verb else { panic!("{verb:?}") };
        assert!(run.rm);
        assert_eq!(run.target, "lxc");
        assert_eq!(run.name.as_deref(), Some("n"));
        assert_eq!(
            run.env,
            BTreeMap::from([("A".into(), "1=2".into()), ("B".into(), String::new())])
        );
        assert_eq!(run.labels, BTreeMap::from([("k".into(), "v".into())]));
        assert_eq!(run.image.as_deref(), Some("/rootfs"));
        assert_eq!(run.command, ["sh", "-c", "exit 3", "--"]);
    }

    #[test]
    fn anything_else_is_the_node_clis() {
        for other in [
            &["run", "-d", "img"][..],
            &["run", "-v", ".:/src", "img"],
            &["run", "img", "echo", "hi"],
            &["run", "-e", "NOEQUALS", "img"],
            &["run", "-e", "=v", "img"],
            &["run", "--target"],
            &["run", "--target", "--rm"],
            &["run", "--name="],
            &["run", ""],
            &["run", "-erm"],
            &["run", "-e=A=1", "img"],
            &["--socket", "ps"],
            &["--bogus", "ps"],
            &["ps", "--socket", "/s"],
        ] {
            assert_eq!(parse_str(other), None, "{other:?}");
        }
        let bad = [
            OsString::from("run"),
            std::os::unix::ffi::OsStringExt::from_vec(vec![0xff]),
        ];
        assert_eq!(parse(&bad, |_| None), None);
        assert_eq!(parse(&[OsString::from("ps")], |_| Some(String::new())), None);
        assert_eq!(
            parse(&[OsString::from("ps")], |_| Some("/env".into())).map(|p| p.0.socket),
            Some("/env".into())
        );
    }
}
