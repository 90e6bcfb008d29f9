//! Binance's per-IP limits as plain bookkeeping: the connection-attempt window (300 websocket
//! upgrade attempts per 5 minutes per IP) and the REST request-weight window with its escalation
//! from 429 to a 418 ban.
//!
//! Sans-IO: every call takes `now` (an `Instant` or wall-clock milliseconds) and returns a verdict;
//! nothing here reads a clock, touches a socket or writes an answer. The server and the REST
//! responder hold these behind a mutex, ask for a verdict and answer accordingly.
//!
//! Memory stays bounded whatever a client does: the attempt window keeps at most `limit` instants
//! per IP (the most recent ones are all a sliding-window verdict needs), and the REST state is a
//! few integers per IP.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Recent websocket upgrade attempts per peer IP.
#[derive(Debug, Default)]
pub(crate) struct ConnectAttempts {
    by_ip: HashMap<IpAddr, VecDeque<Instant>>,
}

impl ConnectAttempts {
    /// Records one upgrade attempt from `ip` at `now`. `Err` carries how long until the window
    /// has room again when this attempt is one too many: more than `limit` attempts (this one
    /// included) within `window`. Refused attempts are attempts too and stay in the window, so a
    /// client retrying in a tight loop stays refused while one that waits the answer's
    /// `Retry-After` gets in. `limit` 0 admits everything.
    pub fn attempt(&mut self, ip: IpAddr, now: Instant, limit: u32, window: Duration) -> Result<(), Duration> {
        if limit == 0 {
            return Ok(());
        }
        let limit = limit as usize;
        let recent = self.by_ip.entry(ip).or_default();
        while recent.front().is_some_and(|t| now.saturating_duration_since(*t) >= window) {
            recent.pop_front();
        }
        let refused = recent.len() >= limit;
        recent.push_back(now);
        while recent.len() > limit {
            recent.pop_front();
        }
        match recent.front() {
            // The next attempt gets in once the oldest of the last `limit` (this one included)
            // has left the window.
            Some(&oldest) if refused => Err((oldest + window).saturating_duration_since(now)),
            _ => Ok(()),
        }
    }
}

/// How the REST side escalates from 429 to 418.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BanRule {
    /// The first ban's length (Binance: 2 minutes).
    pub first: Duration,
    /// No ban is longer than this (Binance: 3 days).
    pub max: Duration,
}

impl BanRule {
    /// The length of an IP's `nth` ban (0 for its first): `first` doubled per earlier ban, capped.
    pub fn length(&self, nth: u32) -> Duration {
        let factor = 1u32.checked_shl(nth.min(31)).unwrap_or(u32::MAX);
        self.first.checked_mul(factor).unwrap_or(Duration::MAX).min(self.max)
    }
}

/// REST state of one IP.
#[derive(Debug, Default)]
struct IpRest {
    /// Wall-clock minute (ms / 60 000) the weight below belongs to.
    minute: i64,
    used: u32,
    /// A request before this (ms) breaks the Retry-After of a 429: it gets banned.
    notice_until_ms: i64,
    /// When that 429 reached the client (ms): a request arriving before this, or within
    /// [`NOTICE_GRACE_MS`] after it, was already on its way and breaks nothing.
    notice_from_ms: i64,
    /// Banned until this (ms).
    banned_until_ms: i64,
    /// Bans so far, for the doubling.
    bans: u32,
}

/// A ban answer: the `Retry-After` to send and whether this request started the ban.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Banned {
    /// Seconds until the ban ends, rounded up.
    pub retry_after_secs: u64,
    /// Wall clock (ms) when the ban ends.
    pub until_ms: i64,
    /// True for the request that broke a 429's Retry-After (a new ban); false while one lasts.
    pub new_ban: bool,
}

/// Request weight and bans per IP.
#[derive(Debug, Default)]
pub(crate) struct RestLimits {
    by_ip: HashMap<IpAddr, IpRest>,
}

/// A request this close to the end of a 429's Retry-After (ms) counts as having waited. A client
/// may count the wait from when it sent the request that got the 429, a round trip before the
/// simulator stamped the answer, and on a loaded 2-core box that round trip can take
/// milliseconds; a client that does not wait at all is still caught. The same allowance after the
/// 429 was delivered covers requests the client sent, on its other connections, before it read
/// the 429: failing to back off needs the 429 in hand, and Binance bans for failing to back off.
pub(crate) const NOTICE_GRACE_MS: i64 = 100;

/// Whole seconds from `now_ms` to `until_ms`, rounded up, at least 1.
pub(crate) fn secs_until(until_ms: i64, now_ms: i64) -> u64 {
    let ms = until_ms.saturating_sub(now_ms).max(1) as u64;
    ms.div_ceil(1000)
}

impl RestLimits {
    /// Adds `weight` to `ip`'s current wall-clock minute (Binance resets weight at each minute,
    /// it does not slide) and returns the weight used in it so far.
    pub fn charge(&mut self, ip: IpAddr, weight: u32, now_ms: i64) -> u32 {
        let s = self.by_ip.entry(ip).or_default();
        let minute = now_ms.div_euclid(60_000);
        if s.minute != minute {
            s.minute = minute;
            s.used = 0;
        }
        s.used = s.used.saturating_add(weight);
        s.used
    }

    /// Whether `ip` is banned now, starting a ban if this request came inside the Retry-After of
    /// a 429 it was sent. `None` (no ban rule) never bans.
    pub fn check_ban(&mut self, ip: IpAddr, now_ms: i64, rule: Option<BanRule>) -> Option<Banned> {
        let rule = rule?;
        let s = self.by_ip.entry(ip).or_default();
        if now_ms < s.banned_until_ms {
            let until_ms = s.banned_until_ms;
            return Some(Banned { retry_after_secs: secs_until(until_ms, now_ms), until_ms, new_ban: false });
        }
        let in_flight = now_ms < s.notice_from_ms.saturating_add(NOTICE_GRACE_MS);
        if !in_flight && now_ms.saturating_add(NOTICE_GRACE_MS) < s.notice_until_ms {
            let len = rule.length(s.bans);
            s.bans = s.bans.saturating_add(1);
            s.notice_until_ms = 0;
            let len_ms = i64::try_from(len.as_millis()).unwrap_or(i64::MAX).max(1);
            s.banned_until_ms = now_ms.saturating_add(len_ms);
            let until_ms = s.banned_until_ms;
            return Some(Banned { retry_after_secs: secs_until(until_ms, now_ms), until_ms, new_ban: true });
        }
        None
    }

    /// Records that `ip` was answered 429, the answer reaching it at `from_ms` (a slow answer is
    /// written late) with a Retry-After ending at `until_ms`.
    pub fn notice(&mut self, ip: IpAddr, from_ms: i64, until_ms: i64) {
        let s = self.by_ip.entry(ip).or_default();
        if until_ms > s.notice_until_ms {
            s.notice_until_ms = until_ms;
            s.notice_from_ms = from_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn attempts_slide_and_refusals_count() {
        let mut w = ConnectAttempts::default();
        let t0 = Instant::now();
        let win = Duration::from_secs(10);
        let s = |n: u64| t0 + Duration::from_secs(n);
        for i in 0..3 {
            assert_eq!(w.attempt(A, s(i), 3, win), Ok(()));
        }
        // The fourth within 10 s is refused; it counts, so the window has room once the attempt
        // at 1 leaves: at 11.
        assert_eq!(w.attempt(A, s(5), 3, win), Err(Duration::from_secs(6)));
        assert_eq!(w.attempt(B, s(5), 3, win), Ok(()), "per IP");
        // Waiting as told gets in: at 11 only the attempts at 2 and 5 are inside.
        assert_eq!(w.attempt(A, s(11), 3, win), Ok(()));
        assert_eq!(w.attempt(A, s(12), 3, win), Ok(()), "2 left at 12");
        // Retrying without waiting keeps the window full: each refusal pushes the way in later.
        assert_eq!(w.attempt(A, s(13), 3, win), Err(Duration::from_secs(8)));
        assert_eq!(w.attempt(A, s(14), 3, win), Err(Duration::from_secs(8)));
        assert_eq!(w.attempt(A, s(20), 3, win), Err(Duration::from_secs(3)));
        assert_eq!(w.attempt(A, s(23), 3, win), Ok(()));
        assert_eq!(w.attempt(A, s(100), 0, win), Ok(()), "0 disables");
        assert!(w.by_ip[&A].len() <= 3, "bounded by the limit");
    }

    #[test]
    fn weight_resets_each_wall_clock_minute() {
        let mut r = RestLimits::default();
        assert_eq!(r.charge(A, 20, 59_000), 20);
        assert_eq!(r.charge(A, 5, 59_999), 25);
        assert_eq!(r.charge(B, 5, 59_999), 5, "per IP");
        assert_eq!(r.charge(A, 5, 60_000), 5);
    }

    #[test]
    fn sending_inside_retry_after_bans_with_doubling() {
        let rule = BanRule { first: Duration::from_secs(2), max: Duration::from_secs(5) };
        assert_eq!(rule.length(0), Duration::from_secs(2));
        assert_eq!(rule.length(1), Duration::from_secs(4));
        assert_eq!(rule.length(2), Duration::from_secs(5), "capped");
        assert_eq!(rule.length(99), Duration::from_secs(5));
        let mut r = RestLimits::default();
        assert_eq!(r.check_ban(A, 0, Some(rule)), None);
        r.notice(A, 0, 1_000);
        assert_eq!(r.check_ban(A, 1_000, Some(rule)), None, "waiting the Retry-After is fine");
        r.notice(A, 0, 1_100);
        assert_eq!(r.check_ban(A, 1_000, Some(rule)), None, "within the grace");
        r.notice(A, 0, 2_000);
        assert_eq!(r.check_ban(A, 1_500, None), None, "no rule, no ban");
        let b = r.check_ban(A, 1_500, Some(rule)).unwrap();
        assert_eq!((b.retry_after_secs, b.until_ms, b.new_ban), (2, 3_500, true));
        let b = r.check_ban(A, 2_600, Some(rule)).unwrap();
        assert_eq!((b.retry_after_secs, b.new_ban), (1, false), "during the ban: what is left");
        assert_eq!(r.check_ban(A, 3_500, Some(rule)), None, "over");
        r.notice(A, 3_500, 5_000);
        let b = r.check_ban(A, 4_000, Some(rule)).unwrap();
        assert_eq!((b.retry_after_secs, b.new_ban), (4, true), "a repeat offender's ban doubles");
        assert_eq!(r.check_ban(B, 4_000, Some(rule)), None);
    }

    #[test]
    fn requests_already_on_their_way_when_the_429_arrived_are_not_banned() {
        let rule = BanRule { first: Duration::from_secs(2), max: Duration::from_secs(5) };
        let mut r = RestLimits::default();
        // A slow 429 decided at 0, written at 500, asking to wait until 1 500.
        r.notice(A, 500, 1_500);
        assert_eq!(r.check_ban(A, 200, Some(rule)), None, "sent before the 429 was even written");
        assert_eq!(r.check_ban(A, 500 + NOTICE_GRACE_MS - 1, Some(rule)), None, "in flight as it was read");
        let b = r.check_ban(A, 500 + NOTICE_GRACE_MS, Some(rule)).unwrap();
        assert!(b.new_ban, "sent with the 429 in hand");
    }
}
