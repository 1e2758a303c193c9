//! Text as the Node CLI prints it (`ts/cli/src/output/format.ts` and `table.ts`): the
//! differential test (`tests/cli/native-front.test.ts`) holds the two to the same bytes.

use crate::api::{ExitInfo, Phase};

/// Columns left-aligned, two spaces apart, the last unpadded, trailing space trimmed.
/// Widths count UTF-16 units, as JavaScript's `length` and `padEnd` do.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.encode_utf16().count();
    let widths: Vec<usize> = (0..header.len())
        .map(|col| {
            rows.iter()
                .map(|r| r.get(col).map_or(0, |c| width(c)))
                .fold(width(header[col]), usize::max)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let mut out = String::new();
        for (col, cell) in cells.iter().enumerate() {
            if col > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if col + 1 < cells.len() {
                out.extend(std::iter::repeat_n(' ', widths[col].saturating_sub(width(cell))));
            }
        }
        out.trim_end().to_string()
    };
    let mut lines = vec![line(&mut header.iter().copied())];
    lines.extend(rows.iter().map(|r| line(&mut r.iter().map(String::as_str))));
    lines.join("\n")
}

/// "5s", "3m", "2h", "4d" since `since_ms`.
pub fn age(since_ms: u64, now_ms: u64) -> String {
    let s = now_ms.saturating_sub(since_ms) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// "0", "137", "SIGKILL", "lost", or "-" while it has not exited.
pub fn exit_summary(exit: Option<&ExitInfo>) -> String {
    match exit {
        None => "-".to_string(),
        Some(ExitInfo { code: Some(code), .. }) => code.to_string(),
        Some(e) if !e.signal.is_empty() => e.signal.clone(),
        Some(e) => e.reason.clone(),
    }
}

/// The phase's name as the API's clients spell it ("running"); none read as "created", as
/// the Node client decodes it.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Unspecified | Phase::Created => "created",
        Phase::Waiting => "waiting",
        Phase::Starting => "starting",
        Phase::Running => "running",
        Phase::Paused => "paused",
        Phase::Stopping => "stopping",
        Phase::Exited => "exited",
    }
}

/// 128 + the signal's number for a workload killed by a signal, as a shell and docker
/// report it (`os.constants.signals` in the Node CLI); `None` for a name Linux lacks.
pub fn signal_number(name: &str) -> Option<i32> {
    const SIGNALS: &[(&str, i32)] = &[
        ("SIGHUP", 1),
        ("SIGINT", 2),
        ("SIGQUIT", 3),
        ("SIGILL", 4),
        ("SIGTRAP", 5),
        ("SIGABRT", 6),
        ("SIGIOT", 6),
        ("SIGBUS", 7),
        ("SIGFPE", 8),
        ("SIGKILL", 9),
        ("SIGUSR1", 10),
        ("SIGSEGV", 11),
        ("SIGUSR2", 12),
        ("SIGPIPE", 13),
        ("SIGALRM", 14),
        ("SIGTERM", 15),
        ("SIGSTKFLT", 16),
        ("SIGCHLD", 17),
        ("SIGCONT", 18),
        ("SIGSTOP", 19),
        ("SIGTSTP", 20),
        ("SIGTTIN", 21),
        ("SIGTTOU", 22),
        ("SIGURG", 23),
        ("SIGXCPU", 24),
        ("SIGXFSZ", 25),
        ("SIGVTALRM", 26),
        ("SIGPROF", 27),
        ("SIGWINCH", 28),
        ("SIGIO", 29),
        ("SIGPOLL", 29),
        ("SIGPWR", 30),
        ("SIGSYS", 31),
    ];
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_all_but_the_last_column() {
        let rows = vec![
            vec!["a".to_string(), "long-name".to_string(), "x".to_string()],
            vec!["bb".to_string(), String::new(), String::new()],
        ];
        assert_eq!(
            table(&["ID", "NAME", "END"], &rows),
            "ID  NAME       END\na   long-name  x\nbb"
        );
        // JavaScript's length: "é" is one unit, "😀" two.
        let rows = vec![
            vec!["😀".to_string(), "y".to_string()],
            vec!["é".to_string(), "z".to_string()],
        ];
        assert_eq!(table(&["A", "B"], &rows), "A   B\n😀  y\né   z");
    }

    #[test]
    fn ages_and_exits() {
        assert_eq!(
            [
                age(0, 59_999),
                age(0, 60_000),
                age(0, 3_600_000),
                age(0, 86_400_000),
                age(10, 0)
            ],
            ["59s", "1m", "1h", "1d", "0s"]
        );
        assert_eq!(exit_summary(None), "-");
        assert_eq!(
            exit_summary(Some(&ExitInfo {
                code: Some(0),
                ..Default::default()
            })),
            "0"
        );
        assert_eq!(
            exit_summary(Some(&ExitInfo {
                signal: "SIGKILL".into(),
                reason: "stopped".into(),
                ..Default::default()
            })),
            "SIGKILL"
        );
        assert_eq!(
            exit_summary(Some(&ExitInfo {
                reason: "lost".into(),
                ..Default::default()
            })),
            "lost"
        );
        assert_eq!(
            [
                signal_number("SIGKILL"),
                signal_number("SIGTERM"),
                signal_number("NOPE")
            ],
            [Some(9), Some(15), None]
        );
    }
}
