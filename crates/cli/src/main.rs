//! `vmctl`: the command's native front. The verbs scripts and CI call in loops — `ps`, and
//! `run` when no one watches stderr on a terminal — go straight to vmctld over gRPC from
//! here, without Node's start-up (about 50 ms here, most of the Node CLI's own cost).
//! Everything else, and anything these verbs are given that the front does not read
//! exactly as the Node CLI would, is handed to the Node CLI unchanged (README.md,
//! "Start-up time").

mod args;
mod connection;
mod format;
mod node_cli;
mod progress;
mod ps;
mod run;

mod api {
    #![allow(clippy::all)]
    tonic::include_proto!("vmctl.v1");
}

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use args::{Globals, Verb};
use run::RunEnd;
use tonic::Code;

/// What the front ends with: an exit code, or the Node CLI with these arguments.
enum End {
    Exit(i32),
    Node(Vec<OsString>),
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    // A value that is not UTF-8 reads as empty, which the front never serves.
    let env = |name: &str| std::env::var_os(name).map(|v| v.into_string().unwrap_or_default());
    let end = match args::parse(&argv, env) {
        // Progress and the spinner on a terminal are the Node CLI's.
        Some((_, Verb::Run(_))) if std::io::stderr().is_terminal() => End::Node(argv),
        Some((globals, verb)) => serve(&globals, verb, &argv),
        None => End::Node(argv),
    };
    match end {
        End::Exit(code) => {
            let _ = std::io::stdout().flush();
            std::process::exit(code);
        }
        End::Node(args) => {
            eprintln!("vmctl: {}", node_cli::exec(&args));
            std::process::exit(70);
        }
    }
}

fn serve(globals: &Globals, verb: Verb, argv: &[OsString]) -> End {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(_) => return End::Node(argv.to_vec()),
    };
    runtime.block_on(async {
        // Not running, not ours to reach: the Node CLI starts it, or says why it cannot.
        let Ok(mut client) = connection::connect(&globals.socket).await else {
            return End::Node(argv.to_vec());
        };
        match verb {
            Verb::Ps { all } => match ps::list(&mut client, all).await {
                Ok(services) => {
                    println!("{}", ps::render(&services));
                    End::Exit(0)
                }
                // Nothing printed yet: the Node CLI asks again of a daemon it starts if need be.
                Err(status) if status.code() == Code::Unavailable => End::Node(argv.to_vec()),
                Err(status) => {
                    eprintln!("vmctl: {}", status.message());
                    End::Exit(1)
                }
            },
            Verb::Run(run) => match run::run(&mut client, &run).await {
                RunEnd::Exit(code) => End::Exit(code),
                RunEnd::AwaitInNode { service } => {
                    let mut args: Vec<OsString> = globals.raw.iter().map(OsString::from).collect();
                    args.extend(["run", "--await", &service].map(OsString::from));
                    if run.rm {
                        args.push("--rm".into());
                    }
                    End::Node(args)
                }
            },
        }
    })
}
