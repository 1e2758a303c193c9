//! `vmctl-agent`: see the crate's README. The order matters: the clock is read first
//! (boot time as the guest saw it), signals are blocked before any thread exists, init's
//! mounts are made before anything is served, and as init the process never returns (the
//! kernel panics when PID 1 exits): it powers off.

use std::process::ExitCode;
use std::sync::Arc;

use vmctl_guest_agent::agent::{Agent, Ending};
use vmctl_guest_agent::config::{Config, ConfigError, USAGE};
use vmctl_guest_agent::sigfd::{self, AgentSignal, Signals};
use vmctl_guest_agent::{VERSION, clock, init, server};

fn main() -> ExitCode {
    let start_boottime_ns = clock::boottime_ns();
    let config = match Config::parse(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Version) => {
            println!("vmctl-agent {VERSION}");
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Invalid(message)) => {
            eprintln!("vmctl-agent: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // SAFETY: getpid has no preconditions.
    let pid1 = unsafe { libc::getpid() } == 1;
    let init = config.init.unwrap_or(pid1);
    if let Err(e) = sigfd::block() {
        eprintln!("vmctl-agent: cannot block signals: {e}");
        return finish(init, Ending::PowerOff, 1);
    }
    let listeners = match server::Listeners::bind(&config.listen) {
        Ok(listeners) => listeners,
        Err(e) => {
            eprintln!("vmctl-agent: {e}");
            return finish(init, Ending::PowerOff, 1);
        }
    };
    if init {
        if let Err(e) = init::setup(&config.init_options) {
            eprintln!("vmctl-agent: init: {e}");
            return finish(init, Ending::PowerOff, 1);
        }
    } else {
        // Orphans of what we start are re-parented to us, so we reap them as init would.
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an int flag.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    }

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vmctl-agent: cannot start the event loop: {e}");
            return finish(init, Ending::PowerOff, 1);
        }
    };
    let (ending, code) = runtime.block_on(run(listeners, init, start_boottime_ns));
    // Blocking tasks (a tar being packed) must not hold up the power-off.
    runtime.shutdown_background();
    finish(init, ending, code)
}

/// Serves until the agent ends; returns how and the exit code for a non-init agent.
async fn run(listeners: server::Listeners, init: bool, start_boottime_ns: u64) -> (Ending, u8) {
    let (agent, mut endings) = Agent::new(init, start_boottime_ns);
    let agent = Arc::new(agent);
    let signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("vmctl-agent: signalfd: {e}");
            return (Ending::PowerOff, 1);
        }
    };
    // Children that ended before the signalfd existed.
    agent.reaper.reap();
    let serving = server::serve(agent.clone(), listeners);
    tokio::pin!(serving);
    loop {
        tokio::select! {
            result = &mut serving => {
                if let Err(e) = result {
                    eprintln!("vmctl-agent: {e}");
                }
                return (Ending::PowerOff, 1);
            }
            signal = signals.recv() => match signal {
                Ok(AgentSignal::Child) => {
                    agent.reaper.reap();
                }
                Ok(AgentSignal::Stop) => agent.stop_requested(),
                Err(e) => {
                    eprintln!("vmctl-agent: signalfd: {e}");
                    return (Ending::PowerOff, 1);
                }
            },
            Some(ending) = endings.recv() => return (ending, 0),
        }
    }
}

/// As init: sync and power off (or reboot); this does not return in a VM. Otherwise exit.
fn finish(init: bool, ending: Ending, code: u8) -> ExitCode {
    if init {
        init::power_off(ending == Ending::Reboot);
    }
    ExitCode::from(code)
}
