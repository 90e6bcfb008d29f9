//! The capture folder layout: names of symbol, date, take, kind folders and files, UTC calendar
//! arithmetic without a date crate, and race-free take numbering.
//!
//! ```text
//! DIR/{symbol}/{YYYY-MM-DD}/take_{n}/.run                       run id (one line)
//! DIR/{symbol}/{YYYY-MM-DD}/take_{n}/orderbook/{YYYY-MM-DD}T{HH}.log[.gz]   diffs, snapshots
//! DIR/{symbol}/{YYYY-MM-DD}/take_{n}/trades/...  aggTrades/...  bookTickers/...
//! ```
//!
//! Decisions, and why:
//! - `{symbol}` is lowercase: it is how Binance spells symbols in stream names, and the frames in
//!   the files say `btcusdt@depth@100ms`.
//! - `{date}` is the UTC date `YYYY-MM-DD` (ISO 8601 extended): it sorts as text and reads
//!   unambiguously.
//! - `take_{n}` is one more than the highest take already in the date folder (not the lowest
//!   hole), so take numbers are chronological within a date even when an old take was deleted; the
//!   directory is made with `create_dir`, and a racer that loses gets `AlreadyExists` and takes the
//!   next number.
//! - Files are named by the UTC start of their period: `2024-08-08T23.log` for hourly rotation
//!   (`T235930` style, HHMMSS, for shorter test periods). The name carries the date as well as the
//!   folder so that a file copied out of its tree still says when it is from.
//! - bookTicker frames get a folder of their own, `bookTickers/` (plural like `trades`): they are
//!   three quarters of the lines on a busy symbol, so keeping them out of `orderbook/` keeps the
//!   files a book rebuild needs small, and they can be deleted on their own. Replay merges all
//!   folders by receive time anyway.
//! - `.run` holds the id of the run that made the take. A run that crosses midnight continues in
//!   a new take of the new date's folder (the first free number there, which need not equal the
//!   old one) with the same run id, so replay knows the two takes are one run and merges them.
//!   It is a dot file so that tools walking the tree for recordings skip it.

use crate::binance::StreamKind;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Nanoseconds in a UTC day (no leap seconds in Unix time).
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;
/// Nanoseconds in an hour.
pub(crate) const HOUR_NS: i64 = 3_600_000_000_000;
/// Nanoseconds in a second.
pub(crate) const SECOND_NS: i64 = 1_000_000_000;
/// The file in a take folder holding the id of the run that recorded it.
pub(crate) const RUN_MARKER: &str = ".run";
/// The folder of depth diffs and REST snapshots (with their request lines).
pub(crate) const ORDERBOOK_DIR: &str = "orderbook";
/// Extension of a plain capture file.
pub(crate) const LOG_EXT: &str = "log";

/// The kind folders, in the order replay prefers for lines received at the same nanosecond.
pub(crate) const KIND_DIRS: [&str; 4] = [ORDERBOOK_DIR, "trades", "aggTrades", "bookTickers"];

/// Index of a stream kind's folder in [`KIND_DIRS`].
#[inline]
pub(crate) fn kind_index(kind: StreamKind) -> usize {
    match kind {
        StreamKind::Depth => 0,
        StreamKind::Trade => 1,
        StreamKind::AggTrade => 2,
        StreamKind::BookTicker => 3,
    }
}

/// The folder a stream kind is recorded in.
#[cfg(test)]
fn kind_dir(kind: StreamKind) -> &'static str {
    KIND_DIRS[kind_index(kind)]
}

/// Replay's tie order for a kind folder name: orderbook, trades, aggTrades, bookTickers, anything
/// else last.
pub(crate) fn kind_rank(dir_name: &str) -> u8 {
    KIND_DIRS.iter().position(|d| *d == dir_name).map_or(KIND_DIRS.len() as u8, |i| i as u8)
}

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct UtcDate {
    /// Year, e.g. 2024.
    pub year: i32,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
}

impl UtcDate {
    /// The date of day number `days` since 1970-01-01 (negative before it).
    pub(crate) fn from_days(days: i64) -> UtcDate {
        // Howard Hinnant's civil_from_days: exact for the proleptic Gregorian calendar.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        UtcDate { year, month, day }
    }

    /// The UTC date of a time in ns since the epoch.
    pub(crate) fn from_ns(ns: i64) -> UtcDate {
        UtcDate::from_days(ns.div_euclid(DAY_NS))
    }
}

impl fmt::Display for UtcDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The file name of the period starting at `start_ns`: `2024-08-08T23.log` when `rotate_ns` is
/// whole hours, else `2024-08-08T235930.log`.
pub(crate) fn file_name(start_ns: i64, rotate_ns: i64) -> String {
    let date = UtcDate::from_ns(start_ns);
    let secs = start_ns.rem_euclid(DAY_NS) / SECOND_NS;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if rotate_ns % HOUR_NS == 0 {
        format!("{date}T{h:02}.{LOG_EXT}")
    } else {
        format!("{date}T{h:02}{m:02}{s:02}.{LOG_EXT}")
    }
}

/// The take number a folder name stands for: `take_7` is 7; anything else is not a take.
pub(crate) fn parse_take(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("take_")?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The highest take number in `date_dir` (0 when there is none or the folder does not exist).
pub(crate) fn highest_take(date_dir: &Path) -> io::Result<u32> {
    let entries = match std::fs::read_dir(date_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut max = 0;
    for e in entries {
        let e = e?;
        if let Some(n) = e.file_name().to_str().and_then(parse_take) {
            max = max.max(n);
        }
    }
    Ok(max)
}

/// Creates the next take folder in `date_dir` (made if missing) and returns its number and path.
/// Safe against other recorders doing the same at the same moment: the folder is created with
/// `create_dir`, which fails with `AlreadyExists` for all but one of them; a loser rescans and
/// tries the next number.
pub(crate) fn create_take(date_dir: &Path) -> io::Result<(u32, PathBuf)> {
    std::fs::create_dir_all(date_dir)?;
    let mut n = highest_take(date_dir)? + 1;
    // Bounded: each failure means another recorder took a number; 1000 of them at once is not a
    // race any more but a fault.
    for _ in 0..1000 {
        let dir = date_dir.join(format!("take_{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((n, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                n = (highest_take(date_dir)? + 1).max(n + 1);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("{}: no free take number after 1000 attempts", date_dir.display())))
}

/// The run id stored in a take folder's [`RUN_MARKER`], if it has one.
pub(crate) fn read_run_id(take_dir: &Path) -> Option<String> {
    let s = std::fs::read_to_string(take_dir.join(RUN_MARKER)).ok()?;
    let id = s.lines().next()?.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// The start time a run id begins with (`<start ns>-<pid>`), for ordering runs.
pub(crate) fn run_start_ns(run_id: &str) -> Option<i64> {
    run_id.split('-').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(UtcDate::from_days(0).to_string(), "1970-01-01");
        assert_eq!(UtcDate::from_days(-1).to_string(), "1969-12-31");
        assert_eq!(UtcDate::from_days(11_016).to_string(), "2000-02-29");
        assert_eq!(UtcDate::from_days(11_017).to_string(), "2000-03-01");
        // The shared recordings: 0808 ends one ms before midnight, 0809 starts just after.
        assert_eq!(UtcDate::from_ns(1_723_161_599_999_231_384).to_string(), "2024-08-08");
        assert_eq!(UtcDate::from_ns(1_723_161_600_001_658_384).to_string(), "2024-08-09");
        assert_eq!(UtcDate::from_ns(1_723_161_600_000_000_000 - 1).to_string(), "2024-08-08");
        assert_eq!(UtcDate::from_ns(1_723_161_600_000_000_000).to_string(), "2024-08-09");
        assert_eq!(UtcDate::from_ns(4_107_542_400 * SECOND_NS).to_string(), "2100-03-01");
        // Every day of 1970..2400 round-trips through a naive day counter.
        let mut days = 0i64;
        for y in 1970..2400 {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let lens = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            for (m, len) in lens.iter().enumerate() {
                for d in 1..=*len {
                    assert_eq!(UtcDate::from_days(days), UtcDate { year: y, month: m as u8 + 1, day: d });
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn file_names() {
        let t: i64 = 1_723_161_599_999_231_384; // 2024-08-08 23:59:59.999
        let hour_start = t - t.rem_euclid(HOUR_NS);
        assert_eq!(file_name(hour_start, HOUR_NS), "2024-08-08T23.log");
        assert_eq!(file_name(hour_start, 2 * HOUR_NS), "2024-08-08T23.log");
        let p30 = t - t.rem_euclid(30 * SECOND_NS);
        assert_eq!(file_name(p30, 30 * SECOND_NS), "2024-08-08T235930.log");
        assert_eq!(file_name(1_723_161_600_000_000_000, HOUR_NS), "2024-08-09T00.log");
        assert_eq!(kind_dir(StreamKind::Depth), "orderbook");
        assert_eq!(kind_dir(StreamKind::BookTicker), "bookTickers");
        assert_eq!(kind_rank("orderbook"), 0);
        assert_eq!(kind_rank("bookTickers"), 3);
        assert_eq!(kind_rank("misc"), 4);
    }

    #[test]
    fn take_names() {
        assert_eq!(parse_take("take_1"), Some(1));
        assert_eq!(parse_take("take_012"), Some(12));
        assert_eq!(parse_take("take_"), None);
        assert_eq!(parse_take("take_x"), None);
        assert_eq!(parse_take("take_-1"), None);
        assert_eq!(parse_take("Take_1"), None);
        assert_eq!(parse_take("take_99999999999"), None);
        assert_eq!(run_start_ns("1723161253937085768-4242"), Some(1_723_161_253_937_085_768));
        assert_eq!(run_start_ns("x"), None);
    }
}
