//! Reconnect delays: exponential backoff with jitter, capped.
//!
//! "Equal jitter": each delay is half the current step plus a random part of the other half, and
//! the step doubles up to the cap. The random part keeps many handlers that lost the same server
//! from reconnecting in lockstep; the fixed half keeps a floor under the retry rate (Binance allows
//! 300 connection attempts per 5 minutes per IP). The generator is an injected seed, so tests are
//! deterministic; no clock is read here.

use std::time::Duration;

/// Exponential backoff state.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    rng: u64,
}

impl Backoff {
    /// Steps start at `min` and double up to `max`; `seed` drives the jitter (any value).
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff { min, max: max.max(min), step: min, rng: seed | 1 }
    }

    /// The delay before the next attempt; doubles the step for the one after.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let half = self.step / 2;
        let span = (self.step - half).as_micros() as u64;
        let jitter = if span == 0 { 0 } else { self.next_u64() % (span + 1) };
        let d = half + Duration::from_micros(jitter);
        self.step = (self.step * 2).min(self.max);
        d
    }

    /// Back to the first step (after a connection proved healthy).
    pub(crate) fn reset(&mut self) {
        self.step = self.min;
    }

    /// The step the next delay is drawn from (its upper bound).
    #[cfg(test)]
    fn current_step(&self) -> Duration {
        self.step
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_caps() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), Duration::from_secs(30), 42);
        let mut steps = Vec::new();
        for _ in 0..12 {
            let step = b.current_step();
            let d = b.next_delay();
            assert!(d >= step / 2 && d <= step, "{d:?} outside [{:?}, {step:?}]", step / 2);
            steps.push(step);
        }
        assert_eq!(&steps[..4], &[ms(100), ms(200), ms(400), ms(800)]);
        assert_eq!(*steps.last().unwrap(), Duration::from_secs(30));
        b.reset();
        assert_eq!(b.current_step(), ms(100));
    }

    #[test]
    fn deterministic_for_a_seed_and_jittered_across_seeds() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30), seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
