//! Progress reports for long work, throttled so a fast download does not flood the caller.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// One report: a phase ("resolve", "download", "exists", "copy", "unpack", "mkfs",
/// "done"), the layer it concerns (empty for the whole image) and units done of total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub phase: &'static str,
    pub layer: String,
    pub current: u64,
    pub total: u64,
}

pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

/// Reports byte counts of one phase of one layer at most every 50 ms, and always the last.
pub struct Throttled {
    sink: ProgressFn,
    phase: &'static str,
    layer: String,
    total: u64,
    last: Option<Instant>,
}

const INTERVAL: Duration = Duration::from_millis(50);

impl Throttled {
    pub fn new(sink: ProgressFn, phase: &'static str, layer: String, total: u64) -> Self {
        Self {
            sink,
            phase,
            layer,
            total,
            last: None,
        }
    }

    pub fn update(&mut self, current: u64) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < INTERVAL) {
            return;
        }
        self.last = Some(now);
        self.emit(current);
    }

    pub fn finish(&mut self, current: u64) {
        self.emit(current);
    }

    fn emit(&self, current: u64) {
        (self.sink)(Progress {
            phase: self.phase,
            layer: self.layer.clone(),
            current,
            total: self.total,
        });
    }
}

pub fn report(sink: &ProgressFn, phase: &'static str, layer: &str, current: u64, total: u64) {
    sink(Progress {
        phase,
        layer: layer.to_owned(),
        current,
        total,
    });
}
