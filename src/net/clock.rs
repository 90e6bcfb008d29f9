//! The receive clock: wall-clock nanoseconds from one monotonic `Instant` read.
//!
//! Latency is receive wall clock minus the exchange's event time, so each socket read needs a wall
//! time; reading `SystemTime` there would be a second clock read per read. Instead the wall clock
//! is read once at calibration and later reads add the `Instant` delta (the event loop already
//! holds the `Instant` it took for the read). The loop recalibrates every minute, off the read
//! path, so NTP corrections to the wall clock are followed within a minute.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Wall clock = calibration wall time + monotonic time since calibration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    wall0_ns: i64,
    inst0: Instant,
}

impl WallClock {
    /// Calibrated now.
    pub(crate) fn new() -> WallClock {
        let inst0 = Instant::now();
        let wall0_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        WallClock { wall0_ns, inst0 }
    }

    /// Wall-clock nanoseconds since the epoch at `t`.
    #[inline]
    pub(crate) fn ns(&self, t: Instant) -> i64 {
        match t.checked_duration_since(self.inst0) {
            Some(d) => self.wall0_ns + d.as_nanos() as i64,
            None => self.wall0_ns - self.inst0.duration_since(t).as_nanos() as i64,
        }
    }
}

#[cfg(test)]
impl WallClock {
    /// When this calibration was taken.
    fn calibrated_at(&self) -> Instant {
        self.inst0
    }
}

impl Default for WallClock {
    fn default() -> Self {
        WallClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn follows_the_wall_clock() {
        let c = WallClock::new();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i64;
        let ours = c.ns(Instant::now());
        assert!((ours - wall).abs() < 50_000_000, "{ours} vs {wall}");
        let t = c.calibrated_at();
        assert_eq!(c.ns(t + Duration::from_millis(5)) - c.ns(t), 5_000_000);
    }
}
