//! The soak loop: the fuzzers' byte inputs from a seeded RNG instead of proptest, on every
//! core, counting cases. proptest's runner (strategies, shrinking bookkeeping) costs more
//! than a case itself; here a case costs what the device and the model cost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Cases the soak runs: `VMCTL_SOAK_CASES` (underscores allowed), else `default`.
pub fn cases_from_env(default: u64) -> u64 {
    match std::env::var("VMCTL_SOAK_CASES") {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("VMCTL_SOAK_CASES={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The seed: `VMCTL_SOAK_SEED` to replay a run, else the clock.
pub fn seed_from_env() -> u64 {
    match std::env::var("VMCTL_SOAK_SEED") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("VMCTL_SOAK_SEED={v:?} is not a number")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// splitmix64: fast, and good enough to feed `arbitrary`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Refills `buf` with 1..=`max` random bytes.
    pub fn fill(&mut self, buf: &mut Vec<u8>, max: usize) {
        let len = 1 + (self.next_u64() as usize % max);
        buf.clear();
        while buf.len() < len {
            buf.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        buf.truncate(len);
    }
}

/// What a soak found.
pub struct Report {
    pub cases: u64,
    pub interesting: u64,
    pub elapsed: Duration,
    pub failure: Option<String>,
}

/// Runs `total` cases over `threads` threads. Each thread makes its state with `make` and
/// runs `case(state, bytes)`, which returns `Ok(interesting)` or `Err(report)`; the first
/// failure stops every thread.
pub fn run<S, M, C>(total: u64, threads: usize, seed: u64, max_len: usize, make: M, case: C) -> Report
where
    M: Fn() -> S + Sync,
    C: Fn(&mut S, &[u8]) -> Result<bool, String> + Sync,
{
    let done = AtomicU64::new(0);
    let interesting = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure = std::sync::Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads as u64 {
            let (done, interesting, stop, failure, make, case) =
                (&done, &interesting, &stop, &failure, &make, &case);
            s.spawn(move || {
                let mut state = make();
                let mut rng = Rng::new(seed ^ t.wrapping_mul(0x2545_f491_4f6c_dd1d));
                let mut buf = Vec::new();
                let share = total / threads as u64 + u64::from(t < total % threads as u64);
                let mut local_interesting = 0;
                let mut ran = 0;
                for i in 0..share {
                    if i % 4096 == 0 && stop.load(Ordering::Relaxed) {
                        break;
                    }
                    ran = i + 1;
                    rng.fill(&mut buf, max_len);
                    match case(&mut state, &buf) {
                        Ok(hit) => local_interesting += u64::from(hit),
                        Err(report) => {
                            stop.store(true, Ordering::Relaxed);
                            let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
                            *failure.lock().unwrap() = Some(format!(
                                "{report}\ninput ({} bytes, thread {t}, case {i}, seed {seed}): {hex}",
                                buf.len()
                            ));
                            done.fetch_add(i + 1, Ordering::Relaxed);
                            interesting.fetch_add(local_interesting, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                done.fetch_add(ran, Ordering::Relaxed);
                interesting.fetch_add(local_interesting, Ordering::Relaxed);
            });
        }
    });
    Report {
        cases: done.into_inner(),
        interesting: interesting.into_inner(),
        elapsed: started.elapsed(),
        failure: failure.into_inner().unwrap(),
    }
}

/// Parses the hex input a soak failure printed, to replay it in a regression test.
pub fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}
