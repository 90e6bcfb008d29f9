//! The stage clock: the CPU's time-stamp counter, calibrated against the monotonic clock, for the
//! per-stage timing that runs in production (read, TLS, websocket, JSON, book, output).
//!
//! A TSC read is one instruction and no syscall; `Instant::now()` is a vDSO call that reads the
//! same counter and scales it. The stages need five to seven reads per message, so the cheaper one
//! is used, and turned into nanoseconds with an integer multiply (no float on the hot path). The
//! cost of both is measured in `benches/micro.rs`' neighbour `benches/stages.rs`.
//!
//! Where the TSC cannot be trusted (not x86_64, or a CPU without an invariant TSC) the ticks come
//! from `Instant` in nanoseconds, so the stage figures stay right, only dearer.

use std::time::{Duration, Instant};

/// Reads the counter: TSC ticks, or monotonic nanoseconds where there is no usable TSC.
#[derive(Debug, Clone, Copy)]
pub struct StageClock {
    /// Nanoseconds per tick as a 32.32 fixed-point number.
    ns_per_tick_q32: u64,
    source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Tsc,
    Monotonic(Instant),
}

/// The raw counter. On x86_64 this is `rdtsc`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)] // rdtsc: see the SAFETY note
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads a register; it has no memory effects and no preconditions on any
    // x86_64 CPU (std::arch marks it unsafe only because all intrinsics once were).
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn rdtsc() -> u64 {
    0
}

/// Whether this machine's TSC ticks at a constant rate and keeps ticking in idle states
/// (`constant_tsc` and `nonstop_tsc` in `/proc/cpuinfo`'s flags).
fn invariant_tsc(cpuinfo: &str) -> bool {
    cpuinfo.lines().find(|l| l.starts_with("flags")).is_some_and(|l| {
        let mut words = l.split_whitespace();
        let (mut constant, mut nonstop) = (false, false);
        for w in words.by_ref() {
            constant |= w == "constant_tsc";
            nonstop |= w == "nonstop_tsc";
        }
        constant && nonstop
    })
}

/// 32.32 nanoseconds per tick from `ticks` counted over `ns` nanoseconds.
fn ratio_q32(ns: u64, ticks: u64) -> Option<u64> {
    if ticks == 0 || ns == 0 {
        return None;
    }
    u64::try_from((u128::from(ns) << 32) / u128::from(ticks)).ok().filter(|&q| q > 0)
}

impl StageClock {
    /// Calibrates the TSC against `Instant` over `span` (a few milliseconds at start-up: the
    /// event loop has not begun), or falls back to the monotonic clock.
    pub fn calibrate(span: Duration) -> StageClock {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        if cfg!(target_arch = "x86_64") && invariant_tsc(&cpuinfo) {
            let (i0, t0) = (Instant::now(), rdtsc());
            while i0.elapsed() < span {
                std::hint::spin_loop();
            }
            let (t1, i1) = (rdtsc(), Instant::now());
            let ns = u64::try_from((i1 - i0).as_nanos()).unwrap_or(u64::MAX);
            if let Some(q) = ratio_q32(ns, t1.wrapping_sub(t0)) {
                return StageClock { ns_per_tick_q32: q, source: Source::Tsc };
            }
        }
        StageClock::monotonic()
    }

    /// Ticks are monotonic nanoseconds (no TSC).
    pub fn monotonic() -> StageClock {
        StageClock { ns_per_tick_q32: 1 << 32, source: Source::Monotonic(Instant::now()) }
    }

    /// Whether the ticks are TSC ticks.
    pub fn is_tsc(&self) -> bool {
        self.source == Source::Tsc
    }

    /// The counter now.
    #[inline]
    pub fn now(&self) -> u64 {
        match self.source {
            Source::Tsc => rdtsc(),
            Source::Monotonic(origin) => origin.elapsed().as_nanos() as u64,
        }
    }

    /// Nanoseconds in `ticks` ticks.
    #[inline]
    pub fn ns(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
    }

    /// Nanoseconds from `from` to `to` (0 if the counter went back, as a TSC can across cores).
    #[inline]
    pub fn between(&self, from: u64, to: u64) -> u64 {
        self.ns(to.saturating_sub(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invariant_tsc_needs_both_flags() {
        assert!(invariant_tsc("processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n"));
        assert!(!invariant_tsc("flags\t\t: fpu tsc constant_tsc\n"));
        assert!(!invariant_tsc("flags\t\t: fpu tsc nonstop_tsc_x constant_tsc\n"));
        assert!(!invariant_tsc(""));
    }

    #[test]
    fn ticks_become_nanoseconds_by_the_calibrated_ratio() {
        // A 2.5 GHz counter: 0.4 ns per tick.
        let q = ratio_q32(1_000_000, 2_500_000).unwrap();
        let c = StageClock { ns_per_tick_q32: q, source: Source::Tsc };
        assert_eq!(c.ns(2_500), 999, "1 µs, rounded down by the fixed point");
        assert_eq!(c.between(10_000, 12_500), 999);
        assert_eq!(c.between(12_500, 10_000), 0, "a counter that went back is 0, not a wrap");
        assert_eq!(ratio_q32(0, 5), None);
        assert_eq!(ratio_q32(5, 0), None);
        let m = StageClock::monotonic();
        assert_eq!(m.ns(1234), 1234);
    }

    #[test]
    fn the_calibrated_clock_agrees_with_instant() {
        let c = StageClock::calibrate(Duration::from_millis(5));
        let (i0, t0) = (Instant::now(), c.now());
        std::thread::sleep(Duration::from_millis(20));
        let (t1, i1) = (c.now(), Instant::now());
        let want = (i1 - i0).as_nanos() as i64;
        let got = c.between(t0, t1) as i64;
        // Within 5% (the calibration span is short; a loaded machine adds noise on both sides).
        assert!((got - want).abs() < want / 20, "tsc {got} ns vs Instant {want} ns (tsc: {})", c.is_tsc());
    }
}
