//! Notices: what the layers below the drivers have to tell a person, as values.
//!
//! The pipeline, the book, the recorder and the REST worker never write to stderr. Each says what
//! happened as a [`Notice`] (a gap, a resync, a snapshot, a bookTicker mismatch, a bad message,
//! evicted levels, a negative latency, ...), pushed into a bounded, preallocated [`Notices`] queue.
//! The driver (the live loop, the replay command) drains the queue after each batch and writes
//! every notice through one [`NoticeLog`]: one line per notice, written for a person, with one
//! rate limit per kind of notice and `--quiet`.
//!
//! Building a notice does not allocate: symbols and frame excerpts are held inline
//! ([`Sym`], [`Excerpt`]), so a misbehaving peer cannot make the hot path allocate, and a full
//! queue drops (and counts) what does not fit rather than growing. This module decides nothing:
//! it only carries and words what the other layers decided.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::binance::rest::{RestError, WaitReason};
use crate::binance::DecodeError;
use crate::book::fixed::push_units;
use crate::book::sync::{SnapshotOutcome, SyncState};
use crate::book::top::Top;
use crate::capture::RecordError;

/// A symbol name held inline (Binance symbols are at most 20 characters; longer is cut).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sym {
    len: u8,
    bytes: [u8; 23],
}

impl Sym {
    /// `s`, cut to 23 bytes.
    pub fn new(s: &str) -> Sym {
        let mut bytes = [0u8; 23];
        let n = s.len().min(bytes.len());
        bytes[..n].copy_from_slice(&s.as_bytes()[..n]);
        Sym { len: n as u8, bytes }
    }

    /// The name as text (a cut in the middle of a character shows as its valid prefix).
    pub fn as_str(&self) -> &str {
        let b = &self.bytes[..self.len as usize];
        match std::str::from_utf8(b) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or_default(),
        }
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// The first bytes of a message, for a person to recognise it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Excerpt {
    len: u8,
    bytes: [u8; Excerpt::MAX],
}

impl Excerpt {
    /// Bytes kept.
    pub const MAX: usize = 160;

    /// The first [`Excerpt::MAX`] bytes of `b`.
    pub fn new(b: &[u8]) -> Excerpt {
        let mut bytes = [0u8; Excerpt::MAX];
        let n = b.len().min(Excerpt::MAX);
        bytes[..n].copy_from_slice(&b[..n]);
        Excerpt { len: n as u8, bytes }
    }

    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Display for Excerpt {
    /// Printable text: invalid UTF-8 and control characters (a raw newline) become a replacement
    /// or a space, so one notice stays one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in String::from_utf8_lossy(self.as_bytes()).chars() {
            f.write_fmt(format_args!("{}", if c.is_control() { ' ' } else { c }))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// Why a synced (or syncing) book was discarded and a new snapshot asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncCause {
    /// A diff starts past the book's next id (`U > id + 1`): an update was missed.
    Gap,
    /// A price that is not on the symbol's tick grid.
    OffTick,
    /// The snapshot is older than the first buffered diff can continue from.
    SnapshotTooOld,
    /// A far level had to be dropped (the ladder's overflow was full): the book is no longer known
    /// to be whole.
    Evicted,
    /// The best bid or ask moved past the deepest level of the snapshot: the levels beyond it
    /// were never sent, so the top is no longer known.
    BeyondSnapshot,
    /// The snapshot never connected to the stream: every diff after it was already covered.
    SnapshotUnconnected,
    /// The bookTicker audit disagreed with the book.
    AuditMismatch,
    /// An SBE `@depth20` disagreed with the book at its id.
    Depth20Mismatch,
}

impl ResyncCause {
    fn text(self) -> &'static str {
        match self {
            ResyncCause::Gap => "sequence gap",
            ResyncCause::OffTick => "price off the tick grid",
            ResyncCause::SnapshotTooOld => "snapshot too old for the buffered diffs",
            ResyncCause::SnapshotUnconnected => {
                "the snapshot does not connect to the stream (200 diffs in a row all at or below its lastUpdateId)"
            }
            ResyncCause::AuditMismatch => "the bookTicker disagreed with the book",
            ResyncCause::Depth20Mismatch => "the depth20 disagreed with the book",
            ResyncCause::BeyondSnapshot => {
                "the best price moved past the snapshot's deepest level (levels beyond it were never sent)"
            }
            ResyncCause::Evicted => {
                "a far level dropped (the ladder's overflow was full; the next one is twice as large)"
            }
        }
    }
}

/// One thing worth telling a person. Each variant says what happened and, in its words, what
/// tickfeed does about it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notice {
    /// A frame could not be decoded or belongs to no subscribed stream (counted, skipped).
    BadMessage {
        /// Why.
        error: DecodeError,
        /// Bad messages so far.
        total: u64,
        /// The frame's first bytes.
        excerpt: Excerpt,
    },
    /// The server answered a control request with an error.
    ControlError {
        /// Binance's error code.
        code: Option<i64>,
        /// Its message.
        msg: String,
    },
    /// serverShutdown: this connection is about to be closed by the server.
    ServerShutdown,
    /// A book lost its sync and will resync from a new snapshot.
    Resync {
        /// The symbol.
        symbol: Sym,
        /// Why.
        cause: ResyncCause,
        /// `U` of the diff that showed it.
        first_id: u64,
        /// `u` of that diff.
        final_id: u64,
        /// The book's state before.
        was: SyncState,
        /// The book's update id before.
        book_id: u64,
    },
    /// A snapshot was judged against the buffered diffs.
    Snapshot {
        /// The symbol.
        symbol: Sym,
        /// Its `lastUpdateId`.
        last_update_id: u64,
        /// What it did.
        outcome: SnapshotOutcome,
        /// The book's update id after.
        book_id: u64,
        /// Bid levels held after.
        bids: usize,
        /// Ask levels held after.
        asks: usize,
    },
    /// A snapshot body could not be decoded; another is asked for.
    SnapshotUnusable {
        /// The symbol.
        symbol: Sym,
        /// Why.
        error: DecodeError,
    },
    /// The book's top differs from the exchange's bookTicker at the same update id.
    Mismatch {
        /// The symbol.
        symbol: Sym,
        /// The update id both are at.
        update_id: u64,
        /// The bookTicker's best bid and ask.
        ticker: Top,
        /// The book's.
        book: Top,
    },
    /// An SBE `@depth20` disagrees with the book at the same update id (its best levels shown).
    Depth20Mismatch {
        /// The symbol.
        symbol: Sym,
        /// The update id both are at.
        update_id: u64,
        /// The depth20's best bid and ask.
        depth20: Top,
        /// The book's.
        book: Top,
    },
    /// An event was received before its exchange time: the local clock is behind (told for the
    /// first such event).
    NegativeLatency {
        /// How far the event's exchange time was ahead of its receive time, in µs.
        behind_us: i64,
    },
    /// A snapshot request waits for the weight budget or a Retry-After.
    SnapshotWait {
        /// The symbol.
        symbol: Sym,
        /// How long.
        wait: Duration,
        /// Why.
        reason: WaitReason,
    },
    /// A snapshot could not be fetched.
    SnapshotFailed {
        /// The symbol.
        symbol: Sym,
        /// Why.
        error: RestError,
        /// When it is asked for again, if the worker pauses first.
        retry_in: Option<Duration>,
    },
    /// exchangeInfo could not be used; the tick size comes from the first snapshot.
    TickInferred {
        /// The symbol.
        symbol: Sym,
        /// Why.
        error: RestError,
    },
    /// exchangeInfo lists the symbol with a status other than TRADING (`BREAK`, `HALT`, ...).
    NotTrading {
        /// The symbol.
        symbol: Sym,
        /// Its status.
        status: String,
    },
    /// What exchangeInfo decided for the snapshots (said with `--symbol ALL` or `--depth-limit auto`).
    SnapshotPlan {
        /// Books to sync.
        symbols: usize,
        /// TRADING symbols left out (not plain ASCII letters and digits).
        skipped: usize,
        /// The weight per minute planned with.
        budget: u32,
        /// exchangeInfo's REQUEST_WEIGHT per minute, if it said.
        server_limit: Option<u32>,
        /// The share of the limit left unused.
        headroom_percent: u32,
        /// The snapshot `limit`.
        depth_limit: u32,
        /// With `--depth-limit auto`: `--sync-within`, and whether every book fits it.
        auto: Option<(Duration, bool)>,
    },
    /// exchangeInfo failed in a way worth retrying.
    ExchangeInfoRetry {
        /// Why.
        error: RestError,
        /// When.
        retry_in: Duration,
    },
    /// Recording stopped at its first I/O error; the feed goes on.
    RecordingStopped(RecordError),
    /// A closed capture file could not be gzipped; it stays plain.
    GzipFailed {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: String,
    },
    /// A binary websocket frame (the JSON streams send none) was ignored.
    BinaryFrame {
        /// Its length.
        len: usize,
        /// Binary frames so far.
        total: u64,
    },
    /// stdout failed (a closed pipe): output stops, the handler keeps running.
    StdoutFailed(String),
    /// A connection event of the live loop, already worded (connected, lost, switched, retrying).
    Link(String),
}

/// The kinds of notice, each with its own rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
enum Kind {
    Bad,
    Sync,
    Mismatch,
    Book,
    Rest,
    Capture,
    Link,
    Other,
}
const KINDS: usize = 8;

impl Notice {
    fn kind(&self) -> Kind {
        match self {
            Notice::BadMessage { .. } | Notice::BinaryFrame { .. } => Kind::Bad,
            Notice::Resync { .. } | Notice::Snapshot { .. } | Notice::SnapshotUnusable { .. } => Kind::Sync,
            Notice::Mismatch { .. } | Notice::Depth20Mismatch { .. } => Kind::Mismatch,
            Notice::NegativeLatency { .. } => Kind::Book,
            Notice::SnapshotWait { .. }
            | Notice::SnapshotFailed { .. }
            | Notice::TickInferred { .. }
            | Notice::NotTrading { .. }
            | Notice::SnapshotPlan { .. }
            | Notice::ExchangeInfoRetry { .. } => Kind::Rest,
            Notice::RecordingStopped(_) | Notice::GzipFailed { .. } => Kind::Capture,
            Notice::Link(_) => Kind::Link,
            Notice::ControlError { .. } | Notice::ServerShutdown | Notice::StdoutFailed(_) => Kind::Other,
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

struct Price(Option<(i64, i64)>);

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none"),
            Some((p, q)) => {
                let mut b = Vec::with_capacity(48);
                push_units(&mut b, p, 8);
                b.extend_from_slice(b" x ");
                push_units(&mut b, q, 8);
                f.write_str(&String::from_utf8_lossy(&b))
            }
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::BadMessage { error, total, excerpt } => {
                write!(f, "bad message skipped ({error}; {total} so far): {excerpt}")
            }
            Notice::ControlError { code, msg } => match code {
                Some(c) => write!(f, "the server refused a control request: code {c}: {msg}"),
                None => write!(f, "the server refused a control request: {msg}"),
            },
            Notice::ServerShutdown => f.write_str("serverShutdown received: the server will close this connection"),
            Notice::Resync { symbol, cause, first_id, final_id, was, book_id } => write!(
                f,
                "{symbol}: {} at U={first_id} u={final_id} (book was {} at {book_id}): resyncing from a new snapshot",
                cause.text(),
                was.as_str()
            ),
            Notice::Snapshot { symbol, last_update_id, outcome, book_id, bids, asks } => {
                write!(f, "{symbol}: snapshot lastUpdateId={last_update_id}: ")?;
                snapshot_outcome(f, outcome, *book_id, *bids, *asks)
            }
            Notice::SnapshotUnusable { symbol, error } => {
                write!(f, "{symbol}: snapshot unusable ({error}); asking again")
            }
            Notice::Mismatch { symbol, update_id, ticker, book } => write!(
                f,
                "{symbol}: bookTicker disagrees with the book at u={update_id}: ticker bid {} ask {}, book bid {} ask {}",
                Price(ticker.bid),
                Price(ticker.ask),
                Price(book.bid),
                Price(book.ask)
            ),
            Notice::Depth20Mismatch { symbol, update_id, depth20, book } => write!(
                f,
                "{symbol}: depth20 disagrees with the book at u={update_id} (its 20 levels a side): depth20 bid {} ask {}, \
                 book bid {} ask {}",
                Price(depth20.bid),
                Price(depth20.ask),
                Price(book.bid),
                Price(book.ask)
            ),
            Notice::NegativeLatency { behind_us } => write!(
                f,
                "an event arrived {behind_us} us before its exchange time: the local clock is behind; such events \
                 are counted (negative_latency), not recorded as latency"
            ),
            Notice::SnapshotWait { symbol, wait, reason } => {
                let why = match reason {
                    WaitReason::RetryAfter => "Retry-After from a 429/418",
                    WaitReason::Budget => "request weight budget",
                };
                write!(f, "{symbol} snapshot waits {} ({why})", secs(*wait))
            }
            Notice::SnapshotFailed { symbol, error, retry_in } => snapshot_failed(f, symbol, error, *retry_in),
            Notice::TickInferred { symbol, error } => {
                write!(f, "{error}; {symbol} tick size will be inferred from its first snapshot")
            }
            Notice::NotTrading { symbol, status } => {
                write!(f, "{symbol} is {status} on the exchange, not TRADING: its book may not update")
            }
            Notice::SnapshotPlan { symbols, skipped, budget, server_limit, headroom_percent, depth_limit, auto } => {
                write!(f, "{symbols} symbols from exchangeInfo")?;
                if *skipped > 0 {
                    write!(f, " ({skipped} left out: not plain ASCII letters and digits)")?;
                }
                write!(f, "; snapshots planned at {budget} weight per minute (")?;
                match server_limit {
                    Some(l) => write!(f, "REQUEST_WEIGHT {l}")?,
                    None => f.write_str("no REQUEST_WEIGHT listed")?,
                }
                write!(f, " or --weight-budget if lower, less {headroom_percent}%); depth limit {depth_limit}")?;
                match auto {
                    Some((within, true)) => write!(f, " (auto: every book's first snapshot within {})", secs(*within)),
                    Some((within, false)) => write!(
                        f,
                        " (auto: the shallowest; every book's first snapshot needs more than {} at this budget)",
                        secs(*within)
                    ),
                    None => Ok(()),
                }
            }
            Notice::ExchangeInfoRetry { error, retry_in } => {
                write!(f, "{error}")?;
                if let RestError::Status { status: 429 | 418, retry_after, .. } = error {
                    write!(f, " (rate limited), retry after {}s", retry_after.map_or(60, |d| d.as_secs()))?;
                }
                write!(f, "; retrying in {}", secs(*retry_in))
            }
            Notice::RecordingStopped(e) => write!(
                f,
                "recording stopped: {e} (the feed goes on; later lines are counted as dropped, not written)"
            ),
            Notice::GzipFailed { path, error } => write!(
                f,
                "recording: cannot gzip {}: {error} (the plain file is kept; later failures are only counted)",
                path.display()
            ),
            Notice::BinaryFrame { len, total } => write!(f, "binary frame of {len} bytes ignored ({total} so far)"),
            Notice::StdoutFailed(e) => write!(f, "stdout failed ({e}): output stops, the handler keeps running"),
            Notice::Link(text) => f.write_str(text),
        }
    }
}

/// What a snapshot did, for [`Notice::Snapshot`].
fn snapshot_outcome(
    f: &mut fmt::Formatter<'_>,
    outcome: &SnapshotOutcome,
    book_id: u64,
    bids: usize,
    asks: usize,
) -> fmt::Result {
    match outcome {
        SnapshotOutcome::Synced { dropped, applied } => write!(
            f,
            "synced at {book_id} ({dropped} buffered diffs already in it, {applied} applied on top; {bids} bids, \
             {asks} asks)"
        ),
        SnapshotOutcome::TooOld => {
            f.write_str("older than the buffered diffs can continue from, asking for a newer one")
        }
        SnapshotOutcome::NotNeeded => write!(f, "not needed, the book is already synced at {book_id}"),
        SnapshotOutcome::Failed => f.write_str("installed, but the buffered diffs did not continue it; asking again"),
        SnapshotOutcome::Malformed => {
            f.write_str("refused: a side out of order, a price twice, or a crossed book; asking again")
        }
    }
}

/// [`Notice::SnapshotFailed`]: a rate limit says how long nothing is asked; other failures when
/// the worker asks again.
fn snapshot_failed(
    f: &mut fmt::Formatter<'_>,
    symbol: &Sym,
    error: &RestError,
    retry_in: Option<Duration>,
) -> fmt::Result {
    match error {
        RestError::Status { url, status, retry_after, excerpt, .. } if error.is_rate_limited() => write!(
            f,
            "{symbol} snapshot: HTTP {status} (rate limited), not asking again for {}s (GET {url}: {excerpt})",
            retry_after.map_or(60, |d| d.as_secs())
        )?,
        RestError::Status { status, excerpt, .. } => write!(f, "{symbol} snapshot: HTTP {status} {excerpt}")?,
        e => write!(f, "{symbol} snapshot: {e}")?,
    }
    match retry_in {
        Some(d) => write!(f, "; retrying in {}", secs(d)),
        None => Ok(()),
    }
}

/// A bounded queue of notices, preallocated: pushing never allocates, and a notice that does not
/// fit is counted in [`Notices::dropped`] instead.
#[derive(Debug)]
pub struct Notices {
    q: VecDeque<Notice>,
    pub(crate) cap: usize,
    dropped: u64,
}

impl Default for Notices {
    fn default() -> Notices {
        Notices::with_capacity(64)
    }
}

impl Notices {
    /// Room for `cap` notices between two drains.
    pub fn with_capacity(cap: usize) -> Notices {
        Notices { q: VecDeque::with_capacity(cap), cap, dropped: 0 }
    }

    /// Queues `n`, or counts it as dropped when the queue is full.
    #[inline]
    pub fn push(&mut self, n: Notice) {
        if self.q.len() < self.cap {
            self.q.push_back(n);
        } else {
            self.dropped += 1;
        }
    }

    /// The oldest queued notice.
    #[must_use]
    #[inline]
    pub fn pop(&mut self) -> Option<Notice> {
        self.q.pop_front()
    }

    /// True when nothing is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// Notices lost because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A token bucket per kind of notice: a burst of [`NoticeLog::BURST`], then one per
/// [`NoticeLog::REFILL`]. What it holds back is counted and said with the next line of its kind.
#[derive(Debug, Clone)]
struct Limiter {
    tokens: [u32; KINDS],
    refilled: [Option<Instant>; KINDS],
    suppressed: [u64; KINDS],
}

impl Limiter {
    fn new() -> Limiter {
        Limiter { tokens: [NoticeLog::BURST; KINDS], refilled: [None; KINDS], suppressed: [0; KINDS] }
    }

    /// May a notice of `k` be written at `now`? When yes, also how many were held back before it.
    fn allow(&mut self, k: Kind, now: Instant) -> Option<u64> {
        let i = k as usize;
        let since = *self.refilled[i].get_or_insert(now);
        let earned = now.saturating_duration_since(since).as_nanos() / NoticeLog::REFILL.as_nanos();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens[i] = self.tokens[i].saturating_add(earned).min(NoticeLog::BURST);
            self.refilled[i] = Some(now);
        }
        if self.tokens[i] == 0 {
            self.suppressed[i] += 1;
            return None;
        }
        self.tokens[i] -= 1;
        Some(std::mem::take(&mut self.suppressed[i]))
    }
}

/// The one path from notices to a person: each notice becomes one line `tickfeed: ...` on the
/// writer (stderr in the drivers), through one rate limit per kind; `quiet` writes nothing.
pub struct NoticeLog {
    out: Box<dyn Write + Send>,
    quiet: bool,
    limiter: Limiter,
    written: u64,
    suppressed: u64,
}

impl NoticeLog {
    /// Lines of one kind written at once before the rate limit applies.
    pub const BURST: u32 = 20;
    /// Then one line of that kind per this long.
    pub const REFILL: Duration = Duration::from_secs(10);

    /// A log writing to stderr.
    pub fn stderr(quiet: bool) -> NoticeLog {
        NoticeLog::to_writer(Box::new(std::io::stderr()), quiet)
    }

    /// A log writing to `out` (tests capture it).
    pub fn to_writer(out: Box<dyn Write + Send>, quiet: bool) -> NoticeLog {
        NoticeLog { out, quiet, limiter: Limiter::new(), written: 0, suppressed: 0 }
    }

    /// Writes `n` if its kind's rate limit allows, as of `now`.
    pub fn emit(&mut self, n: &Notice, now: Instant) {
        if self.quiet {
            return;
        }
        match self.limiter.allow(n.kind(), now) {
            Some(0) => {
                let _ = writeln!(self.out, "tickfeed: {n}");
                self.written += 1;
            }
            Some(held) => {
                let _ = writeln!(self.out, "tickfeed: {n} ({held} similar notices held back by the rate limit)");
                self.written += 1;
            }
            None => self.suppressed += 1,
        }
    }

    /// Writes everything queued in `q`.
    pub fn drain(&mut self, q: &mut Notices, now: Instant) {
        while let Some(n) = q.pop() {
            self.emit(&n, now);
        }
    }

    /// Lines written and notices held back by the rate limit.
    pub fn counts(&self) -> (u64, u64) {
        (self.written, self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn bad(total: u64) -> Notice {
        Notice::BadMessage { error: DecodeError::Json, total, excerpt: Excerpt::new(b"{not json\n") }
    }

    #[test]
    fn notices_read_as_sentences_on_one_line() {
        let s = Sym::new("BTCUSDT");
        let n = Notice::Snapshot {
            symbol: s,
            last_update_id: 11,
            outcome: SnapshotOutcome::Synced { dropped: 1, applied: 0 },
            book_id: 11,
            bids: 2,
            asks: 3,
        };
        let t = n.to_string();
        assert_eq!(
            t,
            "BTCUSDT: snapshot lastUpdateId=11: synced at 11 (1 buffered diffs already in it, 0 applied on top; 2 \
             bids, 3 asks)"
        );
        assert!(!t.contains('{') && !t.contains("Synced"), "no Debug values: {t}");
        let r = Notice::Resync {
            symbol: s,
            cause: ResyncCause::Gap,
            first_id: 20,
            final_id: 22,
            was: SyncState::Synced,
            book_id: 17,
        };
        assert_eq!(
            r.to_string(),
            "BTCUSDT: sequence gap at U=20 u=22 (book was synced at 17): resyncing from a new snapshot"
        );
        assert_eq!(bad(3).to_string(), "bad message skipped (malformed JSON; 3 so far): {not json ");
        let m = Notice::Mismatch {
            symbol: s,
            update_id: 5,
            ticker: Top { bid: Some((100_000_000, 2)), ask: None },
            book: Top { bid: Some((99_000_000, 2)), ask: None },
        };
        assert_eq!(
            m.to_string(),
            "BTCUSDT: bookTicker disagrees with the book at u=5: ticker bid 1.00000000 x 0.00000002 ask none, book \
             bid 0.99000000 x 0.00000002 ask none"
        );
    }

    #[test]
    fn symbols_and_excerpts_are_inline_and_cut() {
        assert_eq!(Sym::new("ETHUSDT").as_str(), "ETHUSDT");
        assert_eq!(Sym::new(&"X".repeat(40)).as_str().len(), 23);
        assert_eq!(Sym::new("ééééééééééééé").as_str().chars().count(), 11, "a cut character is left out");
        assert_eq!(Excerpt::new(&[b'a'; 500]).as_bytes().len(), Excerpt::MAX);
        assert_eq!(Excerpt::new(b"\xff\xfe").to_string(), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn the_queue_is_bounded_and_counts_what_it_drops() {
        let mut q = Notices::with_capacity(2);
        for i in 0..5 {
            q.push(bad(i));
        }
        assert_eq!(q.dropped(), 3);
        assert_eq!(q.pop(), Some(bad(0)));
        assert_eq!(q.pop(), Some(bad(1)));
        assert!(q.pop().is_none() && q.is_empty());
    }

    #[test]
    fn one_rate_limit_per_kind_with_a_fake_clock() {
        let buf = Buf::default();
        let mut log = NoticeLog::to_writer(Box::new(buf.clone()), false);
        let t0 = Instant::now();
        for i in 0..100 {
            log.emit(&bad(i), t0);
        }
        // Another kind is not held back by the first.
        log.emit(&Notice::ServerShutdown, t0);
        assert_eq!(log.counts(), (u64::from(NoticeLog::BURST) + 1, 80));
        // One refill period later, one more line of the kind, saying what was held back.
        log.emit(&bad(100), t0 + NoticeLog::REFILL);
        log.emit(&bad(101), t0 + NoticeLog::REFILL);
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), NoticeLog::BURST as usize + 2);
        assert!(lines.iter().all(|l| l.starts_with("tickfeed: ")));
        assert!(lines.last().unwrap().ends_with("(80 similar notices held back by the rate limit)"), "{text}");
        assert_eq!(log.counts().1, 81);
        // A long quiet spell refills the whole burst, no more.
        for i in 0..25 {
            log.emit(&bad(i), t0 + NoticeLog::REFILL * 1000);
        }
        assert_eq!(log.counts().0, u64::from(NoticeLog::BURST) * 2 + 2);
    }

    #[test]
    fn quiet_writes_nothing() {
        let buf = Buf::default();
        let mut log = NoticeLog::to_writer(Box::new(buf.clone()), true);
        log.emit(&Notice::ServerShutdown, Instant::now());
        assert!(buf.text().is_empty());
    }
}
