//! The PC's CMOS RAM and MC146818 real-time clock on ports 0x70 (index) and 0x71 (data).
//!
//! Without it the ports are unclaimed and read 0xff: register A then says "update in
//! progress" forever and Linux's `rtc_cmos` spins on it for seconds (one port exit per
//! read) before giving up with "broken or not accessible". This model is what a guest
//! without ACPI reads at boot:
//!
//! - the time, from the host's clock, in BCD or binary and 12- or 24-hour form as the
//!   guest chose in register B; a guest that sets the clock keeps an offset from the
//!   host's, so the clock keeps running;
//! - register A's update-in-progress bit is never set: the registers are computed at
//!   each read, so there is no update cycle to wait for;
//! - register D says the RAM and time are valid; register C (interrupt flags) reads 0,
//!   as no interrupt source (alarm, periodic, update) is modelled;
//! - the memory-size bytes a BIOS leaves (base, extended, above 16 MiB and above
//!   4 GiB), for guests that size memory from CMOS instead of the e820 map.
//!
//! vm-superio has an RTC for the ARM PL031 only, hence this one.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::device_manager::bus::BusDevice;

const INDEX_OFFSET: u64 = 0;
const DATA_OFFSET: u64 = 1;
/// Bit 7 of the index port masks NMIs on a PC; it is not part of the index.
const INDEX_MASK: u8 = 0x7f;

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_C: u8 = 0x0c;
const REG_D: u8 = 0x0d;
/// Base memory in KiB (16-bit, little endian).
const REG_BASE_MEM: u8 = 0x15;
/// Extended memory (above 1 MiB, up to 64 MiB) in KiB, as the BIOS found it...
const REG_EXT_MEM: u8 = 0x17;
/// ...and the same again where POST stores its copy.
const REG_EXT_MEM_POST: u8 = 0x30;
const REG_CENTURY: u8 = 0x32;
/// Memory above 16 MiB (below 4 GiB) in 64 KiB units.
const REG_MEM_ABOVE_16M: u8 = 0x34;
/// Memory above 4 GiB in 64 KiB units (24-bit).
const REG_MEM_ABOVE_4G: u8 = 0x5b;

/// Register A: 32.768 kHz time base, 1024 Hz periodic rate (the power-on default);
/// bit 7 (update in progress) never set.
const REG_A_DEFAULT: u8 = 0x26;
/// Register B: 24-hour mode, BCD, no interrupts, no daylight saving.
const REG_B_DEFAULT: u8 = 0x02;
const REG_B_SET: u8 = 0x80;
const REG_B_BINARY: u8 = 0x04;
const REG_B_24H: u8 = 0x02;
/// Register D: valid RAM and time (the battery is good).
const REG_D_VRT: u8 = 0x80;
const HOUR_PM: u8 = 0x80;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const FOUR_GIB: u64 = 4 * 1024 * MIB;
const BASE_MEM_KIB: u16 = 640;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A broken-down time as the RTC's registers hold it (binary values, 24-hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    second: u8,
    minute: u8,
    hour: u8,
    /// 1 = Sunday, as the MC146818 counts.
    weekday: u8,
    day: u8,
    month: u8,
    year: i64,
}

impl Fields {
    fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Self {
            second: (rem % 60) as u8,
            minute: (rem / 60 % 60) as u8,
            hour: (rem / 3600) as u8,
            // 1970-01-01 was a Thursday (5 when Sunday is 1).
            weekday: ((days + 4).rem_euclid(7) + 1) as u8,
            day: day as u8,
            month: month as u8,
            year,
        }
    }

    fn to_unix(self) -> i64 {
        let month = u32::from(self.month.clamp(1, 12));
        let day = u32::from(self.day.clamp(1, 31));
        days_from_civil(self.year, month, day) * 86_400
            + i64::from(self.hour.min(23)) * 3600
            + i64::from(self.minute.min(59)) * 60
            + i64::from(self.second.min(59))
    }
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

/// Where the RTC's time comes from: the host's clock, as seconds since the epoch.
pub trait Clock: Send {
    fn now(&self) -> i64;
}

/// The host's real-time clock.
#[derive(Debug, Default)]
pub struct HostClock;

impl Clock for HostClock {
    fn now(&self) -> i64 {
        // A host clock before 1970 is a broken host; the guest then starts at 1970.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

pub struct Cmos {
    index: u8,
    ram: [u8; 128],
    /// Guest time minus host time, in seconds: non-zero once the guest sets the clock.
    offset: i64,
    /// The time the guest is writing while register B's SET bit is on; applied when it
    /// clears the bit (how Linux's `mc146818_set_time` writes the clock).
    pending: Option<Fields>,
    clock: Box<dyn Clock>,
}

impl Cmos {
    /// A CMOS for a guest with `ram_below_4g` bytes of RAM below 4 GiB and
    /// `ram_above_4g` above (see [`Cmos::ram_split`]), reading time from `clock`.
    pub fn new(ram_below_4g: u64, ram_above_4g: u64, clock: Box<dyn Clock>) -> Self {
        let mut ram = [0u8; 128];
        ram[REG_A as usize] = REG_A_DEFAULT;
        ram[REG_B as usize] = REG_B_DEFAULT;
        ram[REG_D as usize] = REG_D_VRT;
        let put16 = |ram: &mut [u8; 128], reg: u8, v: u16| {
            ram[reg as usize..reg as usize + 2].copy_from_slice(&v.to_le_bytes());
        };
        put16(&mut ram, REG_BASE_MEM, BASE_MEM_KIB);
        let ext_kib = (ram_below_4g.saturating_sub(MIB) / KIB).min(u64::from(u16::MAX)) as u16;
        put16(&mut ram, REG_EXT_MEM, ext_kib);
        put16(&mut ram, REG_EXT_MEM_POST, ext_kib);
        let above_16m = (ram_below_4g.saturating_sub(16 * MIB) / (64 * KIB)).min(u64::from(u16::MAX));
        put16(&mut ram, REG_MEM_ABOVE_16M, above_16m as u16);
        let above_4g = (ram_above_4g / (64 * KIB)).min(0xff_ffff) as u32;
        let r = REG_MEM_ABOVE_4G as usize;
        ram[r..r + 3].copy_from_slice(&above_4g.to_le_bytes()[..3]);
        Self {
            index: 0,
            ram,
            offset: 0,
            pending: None,
            clock,
        }
    }

    /// The guest's RAM split at [`FOUR_GIB`] from the `(start, len)` ranges of its RAM.
    pub fn ram_split(ranges: &[(u64, u64)]) -> (u64, u64) {
        ranges.iter().fold((0, 0), |(below, above), &(start, len)| {
            let end = start + len;
            let b = end.min(FOUR_GIB).saturating_sub(start.min(FOUR_GIB));
            (below + b, above + (len - b))
        })
    }

    fn reg_b(&self) -> u8 {
        self.ram[REG_B as usize]
    }

    fn now(&self) -> Fields {
        self.pending
            .unwrap_or_else(|| Fields::from_unix(self.clock.now() + self.offset))
    }

    /// A time field as the guest reads it: BCD unless register B asks for binary.
    fn encode(&self, v: u8) -> u8 {
        if self.reg_b() & REG_B_BINARY != 0 {
            v
        } else {
            to_bcd(v)
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.reg_b() & REG_B_BINARY != 0 {
            v
        } else {
            from_bcd(v)
        }
    }

    fn encode_hour(&self, hour: u8) -> u8 {
        if self.reg_b() & REG_B_24H != 0 {
            return self.encode(hour);
        }
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        self.encode(h12) | if hour >= 12 { HOUR_PM } else { 0 }
    }

    fn decode_hour(&self, v: u8) -> u8 {
        if self.reg_b() & REG_B_24H != 0 {
            return self.decode(v);
        }
        let h12 = self.decode(v & !HOUR_PM) % 12;
        if v & HOUR_PM != 0 { h12 + 12 } else { h12 }
    }

    fn read_reg(&mut self, reg: u8) -> u8 {
        let t = self.now();
        match reg {
            REG_SECONDS => self.encode(t.second),
            REG_MINUTES => self.encode(t.minute),
            REG_HOURS => self.encode_hour(t.hour),
            REG_WEEKDAY => self.encode(t.weekday),
            REG_DAY => self.encode(t.day),
            REG_MONTH => self.encode(t.month),
            REG_YEAR => self.encode(t.year.rem_euclid(100) as u8),
            REG_CENTURY => self.encode(t.year.div_euclid(100).clamp(0, 99) as u8),
            // No update cycle to be in (see the module comment).
            REG_A => self.ram[REG_A as usize] & 0x7f,
            // No interrupt sources: no flags to report (reading would clear them).
            REG_C => 0,
            REG_D => REG_D_VRT,
            _ => self.ram[reg as usize],
        }
    }

    fn write_reg(&mut self, reg: u8, value: u8) {
        let field = match reg {
            REG_SECONDS | REG_MINUTES | REG_HOURS | REG_WEEKDAY | REG_DAY | REG_MONTH | REG_YEAR
            | REG_CENTURY => true,
            // Read-only: C (flags) and D (valid).
            REG_C | REG_D => return,
            REG_A => {
                // Bit 7 (update in progress) is read-only.
                self.ram[REG_A as usize] = value & 0x7f;
                return;
            }
            REG_B => {
                let was_set = self.reg_b() & REG_B_SET != 0;
                let now = self.now();
                self.ram[REG_B as usize] = value;
                if value & REG_B_SET != 0 && !was_set {
                    // Freeze the time the guest is about to overwrite.
                    self.pending = Some(now);
                } else if value & REG_B_SET == 0
                    && let Some(t) = self.pending.take()
                {
                    self.offset = t.to_unix() - self.clock.now();
                }
                return;
            }
            _ => false,
        };
        if !field {
            self.ram[reg as usize] = value;
            return;
        }
        let mut t = self.now();
        match reg {
            REG_SECONDS => t.second = self.decode(value),
            REG_MINUTES => t.minute = self.decode(value),
            REG_HOURS => t.hour = self.decode_hour(value),
            REG_WEEKDAY => t.weekday = self.decode(value),
            REG_DAY => t.day = self.decode(value),
            REG_MONTH => t.month = self.decode(value),
            // Two BCD digits hold 0..=99; out-of-range bytes wrap there, so no sequence
            // of writes can push the year past what to_unix handles.
            REG_YEAR => t.year = t.year.div_euclid(100) * 100 + i64::from(self.decode(value) % 100),
            _ => t.year = i64::from(self.decode(value) % 100) * 100 + t.year.rem_euclid(100),
        }
        if self.pending.is_some() {
            self.pending = Some(t);
        } else {
            // Written without SET: the clock runs on from the new value at once.
            self.offset = t.to_unix() - self.clock.now();
        }
    }
}

impl BusDevice for Cmos {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let v = match offset {
            INDEX_OFFSET => self.index,
            DATA_OFFSET => self.read_reg(self.index),
            _ => 0xff,
        };
        super::read_byte(data, v);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            INDEX_OFFSET => self.index = value & INDEX_MASK,
            DATA_OFFSET => self.write_reg(self.index, value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    /// A clock the test moves by hand.
    #[derive(Clone)]
    struct FakeClock(Arc<AtomicI64>);

    impl Clock for FakeClock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    // 2026-12-06 04:05:09 UTC, a Sunday.
    const T: i64 = 1_796_529_909;

    fn cmos_at(secs: i64, below: u64, above: u64) -> (Cmos, FakeClock) {
        let clock = FakeClock(Arc::new(AtomicI64::new(secs)));
        (Cmos::new(below, above, Box::new(clock.clone())), clock)
    }

    fn read(c: &mut Cmos, reg: u8) -> u8 {
        c.write(INDEX_OFFSET, &[reg]);
        let mut b = [0u8];
        c.read(DATA_OFFSET, &mut b);
        b[0]
    }

    fn write(c: &mut Cmos, reg: u8, v: u8) {
        c.write(INDEX_OFFSET, &[reg]);
        c.write(DATA_OFFSET, &[v]);
    }

    #[test]
    fn the_time_reads_in_bcd_by_default() {
        let (mut c, _) = cmos_at(T, 256 * MIB, 0);
        let got: Vec<u8> = [
            REG_SECONDS,
            REG_MINUTES,
            REG_HOURS,
            REG_WEEKDAY,
            REG_DAY,
            REG_MONTH,
            REG_YEAR,
            REG_CENTURY,
        ]
        .iter()
        .map(|&r| read(&mut c, r))
        .collect();
        assert_eq!(got, vec![0x09, 0x05, 0x04, 0x01, 0x06, 0x12, 0x26, 0x20]);
    }

    #[test]
    fn binary_and_12_hour_modes_follow_register_b() {
        let (mut c, _) = cmos_at(T + 10 * 3600, 256 * MIB, 0); // 14:05:09
        write(&mut c, REG_B, REG_B_BINARY);
        assert_eq!(read(&mut c, REG_HOURS), 2 | HOUR_PM);
        assert_eq!(read(&mut c, REG_MONTH), 12);
        assert_eq!(read(&mut c, REG_YEAR), 26);
        write(&mut c, REG_B, REG_B_BINARY | REG_B_24H);
        assert_eq!(read(&mut c, REG_HOURS), 14);
        assert_eq!(read(&mut c, REG_SECONDS), 9);
    }

    #[test]
    fn update_in_progress_is_never_set_and_d_says_valid() {
        let (mut c, clock) = cmos_at(T, 256 * MIB, 0);
        for i in 0..2000 {
            clock.0.store(T + i / 3, Ordering::SeqCst);
            assert_eq!(read(&mut c, REG_A) & 0x80, 0);
        }
        assert_eq!(read(&mut c, REG_A), REG_A_DEFAULT);
        write(&mut c, REG_A, 0xa6);
        assert_eq!(read(&mut c, REG_A), 0x26);
        assert_eq!(read(&mut c, REG_D), REG_D_VRT);
        assert_eq!(read(&mut c, REG_C), 0);
    }

    #[test]
    fn the_clock_follows_the_host_and_a_set_time_keeps_running() {
        let (mut c, clock) = cmos_at(T, 256 * MIB, 0);
        clock.0.store(T + 61, Ordering::SeqCst);
        assert_eq!(
            (read(&mut c, REG_MINUTES), read(&mut c, REG_SECONDS)),
            (0x06, 0x10)
        );
        // Linux's mc146818_set_time: SET on, write the fields, SET off.
        write(&mut c, REG_B, REG_B_DEFAULT | REG_B_SET);
        clock.0.store(T + 100, Ordering::SeqCst);
        assert_eq!(read(&mut c, REG_SECONDS), 0x10, "frozen while SET");
        write(&mut c, REG_YEAR, 0x30);
        write(&mut c, REG_HOURS, 0x23);
        write(&mut c, REG_MINUTES, 0x59);
        write(&mut c, REG_SECONDS, 0x58);
        write(&mut c, REG_B, REG_B_DEFAULT);
        clock.0.store(T + 103, Ordering::SeqCst);
        // 2030-12-06 23:59:58 + 3 s = 2030-12-07 00:00:01.
        let got: Vec<u8> = [REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY, REG_YEAR]
            .iter()
            .map(|&r| read(&mut c, r))
            .collect();
        assert_eq!(got, vec![0x01, 0x00, 0x00, 0x07, 0x30]);
    }

    #[test]
    fn the_index_port_ignores_the_nmi_mask_bit() {
        let (mut c, _) = cmos_at(T, 256 * MIB, 0);
        c.write(INDEX_OFFSET, &[0x80 | REG_D]);
        let mut b = [0u8];
        c.read(DATA_OFFSET, &mut b);
        assert_eq!(b[0], REG_D_VRT);
        write(&mut c, 0x40, 0x5a);
        assert_eq!(read(&mut c, 0x40), 0x5a, "plain CMOS RAM keeps what is written");
    }

    #[test]
    fn memory_size_registers() {
        // 3.5 GiB below the hole is not possible here (the hole starts at 3.25 GiB), so
        // take the split the layout makes for 6 GiB: 3.25 GiB below, 2.75 GiB above.
        let below = 0xd000_0000;
        let above = 6 * 1024 * MIB - below;
        let (mut c, _) = cmos_at(T, below, above);
        let r16 = |c: &mut Cmos, reg: u8| u16::from_le_bytes([read(c, reg), read(c, reg + 1)]);
        assert_eq!(r16(&mut c, REG_BASE_MEM), 640);
        assert_eq!(r16(&mut c, REG_EXT_MEM), 0xffff, "capped");
        assert_eq!(
            r16(&mut c, REG_MEM_ABOVE_16M),
            ((below - 16 * MIB) / (64 * KIB)) as u16
        );
        let r24 = u32::from_le_bytes([read(&mut c, 0x5b), read(&mut c, 0x5c), read(&mut c, 0x5d), 0]);
        assert_eq!(u64::from(r24), above / (64 * KIB));

        let (mut small, _) = cmos_at(T, 32 * MIB, 0);
        assert_eq!(r16(&mut small, REG_EXT_MEM), 31 * 1024);
        assert_eq!(r16(&mut small, REG_EXT_MEM_POST), 31 * 1024);
        assert_eq!(r16(&mut small, REG_MEM_ABOVE_16M), 256);
        assert_eq!(read(&mut small, 0x5b), 0);
    }

    #[test]
    fn no_writes_to_the_year_registers_can_run_the_year_away() {
        let (mut c, _) = cmos_at(T, 256 * MIB, 0);
        write(&mut c, REG_B, REG_B_BINARY | REG_B_24H);
        for _ in 0..10_000 {
            write(&mut c, REG_YEAR, 0xff);
            write(&mut c, REG_CENTURY, 0xff);
        }
        // 0xff wraps to 55 in both: the year 5555, still a date to_unix handles.
        assert_eq!(read(&mut c, REG_YEAR), 55);
        assert_eq!(read(&mut c, REG_CENTURY), 55);
    }

    #[test]
    fn ram_split_at_4_gib() {
        assert_eq!(Cmos::ram_split(&[(0, 256 * MIB)]), (256 * MIB, 0));
        assert_eq!(
            Cmos::ram_split(&[(0, 0xd000_0000), (FOUR_GIB, 2 * 1024 * MIB)]),
            (0xd000_0000, 2 * 1024 * MIB)
        );
    }

    #[test]
    fn dates_round_trip() {
        for secs in [
            0,
            951_782_400, /* 2000-02-29 */
            T,
            4_102_444_800, /* 2100-01-01 */
        ] {
            assert_eq!(Fields::from_unix(secs).to_unix(), secs);
        }
        let f = Fields::from_unix(951_782_400);
        assert_eq!((f.year, f.month, f.day, f.weekday), (2000, 2, 29, 3));
    }
}
