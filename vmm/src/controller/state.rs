//! The VM lifecycle: CONFIGURING --Start--> RUNNING <--Pause/Resume--> PAUSED; any
//! --> EXITED. Which action is allowed in which phase is decided here, and only here.

use std::time::SystemTime;

use crate::vstate::exit::VmExit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Configuring,
    Running,
    Paused,
    Exited,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Configuring => "CONFIGURING",
            Phase::Running => "RUNNING",
            Phase::Paused => "PAUSED",
            Phase::Exited => "EXITED",
        }
    }
}

/// The closed set of API actions that depend on the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Any Put* call.
    Configure,
    Start,
    Pause,
    Resume,
    SendCtrlAltDel,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Configure => "configuration",
            Action::Start => "Start",
            Action::Pause => "Pause",
            Action::Resume => "Resume",
            Action::SendCtrlAltDel => "SendCtrlAltDel",
        }
    }

    /// The phases this action is allowed in.
    pub fn allowed_in(self) -> &'static [Phase] {
        match self {
            Action::Configure | Action::Start => &[Phase::Configuring],
            Action::Pause | Action::SendCtrlAltDel => &[Phase::Running],
            Action::Resume => &[Phase::Paused],
        }
    }
}

/// An action asked for in a phase that does not allow it.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{} is not allowed while the VM is {} (allowed when {})", action.name(), phase.name(), allowed(*action))]
pub struct StateError {
    pub action: Action,
    pub phase: Phase,
}

fn allowed(action: Action) -> String {
    action
        .allowed_in()
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Checks `action` against `phase`.
pub fn check(action: Action, phase: Phase) -> Result<(), StateError> {
    if action.allowed_in().contains(&phase) {
        Ok(())
    } else {
        Err(StateError { action, phase })
    }
}

/// The VM's state as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmState {
    pub phase: Phase,
    /// Set once the phase is EXITED.
    pub exit: Option<VmExit>,
    pub since: SystemTime,
}

impl VmState {
    pub fn new(phase: Phase) -> Self {
        Self {
            phase,
            exit: None,
            since: SystemTime::now(),
        }
    }

    pub fn exited(exit: VmExit) -> Self {
        Self {
            phase: Phase::Exited,
            exit: Some(exit),
            since: SystemTime::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_and_start_only_before_boot() {
        assert!(check(Action::Configure, Phase::Configuring).is_ok());
        assert!(check(Action::Start, Phase::Configuring).is_ok());
        for p in [Phase::Running, Phase::Paused, Phase::Exited] {
            assert!(check(Action::Configure, p).is_err());
            assert!(check(Action::Start, p).is_err());
        }
    }

    #[test]
    fn pause_resume_alternate() {
        assert!(check(Action::Pause, Phase::Running).is_ok());
        assert!(check(Action::Pause, Phase::Paused).is_err());
        assert!(check(Action::Resume, Phase::Paused).is_ok());
        assert!(check(Action::Resume, Phase::Running).is_err());
        assert!(check(Action::Pause, Phase::Exited).is_err());
        assert!(check(Action::SendCtrlAltDel, Phase::Configuring).is_err());
    }

    #[test]
    fn the_error_names_action_phase_and_what_is_allowed() {
        let e = check(Action::Configure, Phase::Running).unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration is not allowed while the VM is RUNNING (allowed when CONFIGURING)"
        );
    }
}
