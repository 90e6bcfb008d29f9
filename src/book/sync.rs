//! The local order book engine: Binance's official spot procedure for keeping an L2 book in sync.
//!
//! One [`OrderBook`] per symbol. It buffers diffs until a REST snapshot arrives, aligns the
//! snapshot with the buffer (`U <= lastUpdateId+1 <= u`), applies diffs in order, and treats a
//! missed update (`U > id+1`) as a gap: the book is discarded and a new snapshot requested. The
//! engine never does I/O: it says it wants a snapshot through [`OrderBook::poll_snapshot_request`]
//! and the caller fetches one (live) or finds one in the recording (replay).
//!
//! The procedure, from the Binance docs as corrected on 2025-11-12: buffer events, noting the `U`
//! of the first; fetch a snapshot; if its `lastUpdateId` is older than the first buffered event
//! can continue from, fetch again; drop buffered events with `u <= lastUpdateId`; apply the rest.
//! Per event: ignore `u <= id`; `U > id+1` is a gap.
//!
//! A book can follow the USDⓈ-M futures procedure instead ([`Procedure::UsdM`] in
//! [`BookConfig::procedure`]), whose update ids are not contiguous: drop buffered events with
//! `u < lastUpdateId`; the first event applied must hold `U <= lastUpdateId <= u` (not
//! `lastUpdateId+1`); after it every event's `pu` must equal the previous event's `u`, and one
//! that does not is a gap, handled as the spot gap is. Futures diffs come in through
//! [`OrderBook::on_futures_diff`], which carries `pu`. tickfeed's own rules (snapshots that never
//! connect, buffer bounds, too-old snapshots, the highest id applied or installed) hold for both;
//! where one needed adapting the code says so.
//!
//! Invariant: while [`OrderBook::state`] is [`SyncState::Synced`], the ladder equals the exchange's
//! book at [`OrderBook::last_update_id`] for every level inside the snapshot's depth.

use crate::binance::RawLevel;
use crate::book::fixed::{infer_tick, OffTick, TickSize, Ticks, Units};
use crate::book::ladder::{Ladder, LadderConfig, Side, MAX_OVERFLOW_CAP, MIN_WINDOW_TICKS};
use crate::book::top::Top;

/// Where a book stands in the procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Never synced yet: buffering diffs, waiting for the first snapshot.
    WaitingSnapshot,
    /// The book is exact at `last_update_id` and follows every diff.
    Synced,
    /// Was synced, lost it (gap, reconnect, bad data): buffering diffs, waiting for a snapshot.
    Resyncing,
}

impl SyncState {
    /// Lowercase name for logs and stats.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::WaitingSnapshot => "waiting_snapshot",
            SyncState::Synced => "synced",
            SyncState::Resyncing => "resyncing",
        }
    }
}

/// Which of Binance's procedures a book follows to join its snapshot to the diff stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Procedure {
    /// Spot (`api.binance.com`): update ids are contiguous. Buffered diffs with
    /// `u <= lastUpdateId` are dropped, the first applied has `U <= lastUpdateId+1 <= u`, and a
    /// diff with `U > id+1` is a gap.
    #[default]
    Spot,
    /// USDⓈ-M futures (`fapi.binance.com`): update ids are not contiguous, so each diff names the
    /// previous one's `u` as `pu`. Buffered diffs with `u < lastUpdateId` are dropped, the first
    /// applied has `U <= lastUpdateId <= u`, and after it a diff whose `pu` is not the previous
    /// diff's `u` is a gap. Never apply the spot `U == u+1` rule to it.
    UsdM,
}

/// Sizing of a book, and the procedure it follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookConfig {
    /// The price ladder's sizing: fixed (`Some`, e.g. `--window-ticks`), or `None` to size each
    /// book from its own first snapshot (see [`auto_ladder`]), so memory follows the book.
    pub ladder: Option<LadderConfig>,
    /// Diffs held while waiting for a snapshot; past this the buffer restarts from the newest
    /// diff (a snapshot judged against the old buffer would be refetched anyway).
    pub max_buffered_diffs: usize,
    /// Price levels held in the buffered diffs, bids and asks together; past this the buffer
    /// restarts from the newest diff as well. The diff count alone does not bound memory: a
    /// peer's diffs may carry tens of thousands of levels each. The default (262,144 levels,
    /// 4 MiB) holds minutes of the busiest real symbol's diffs (a few hundred levels each), far
    /// longer than a snapshot takes to arrive.
    pub max_buffered_levels: usize,
    /// Keep a book synced when its best bid or ask moves past the deepest level of its snapshot,
    /// as the plain official procedure does. Off by default: Binance says a book is authoritative
    /// only inside the snapshot's range, so tickfeed resyncs instead (`beyond_snapshot`).
    pub trust_beyond_snapshot: bool,
    /// The sync procedure: spot (the default) or USDⓈ-M futures.
    pub procedure: Procedure,
}

impl Default for BookConfig {
    fn default() -> Self {
        BookConfig {
            ladder: None,
            max_buffered_diffs: 5000,
            max_buffered_levels: 1 << 18,
            trust_beyond_snapshot: false,
            procedure: Procedure::Spot,
        }
    }
}

/// Levels the pre-snapshot buffer keeps room for after it overflows (64 KiB); a burst's memory
/// beyond it is given back.
const KEPT_LEVELS: usize = 4096;
/// Diffs the pre-snapshot buffer keeps room for after it overflows.
const KEPT_DIFFS: usize = 64;

/// Counters of the procedure's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounters {
    /// Snapshots installed into the book.
    pub snapshots: u64,
    /// Snapshots installed after the first one, for any reason (gap, reconnect, refetch).
    pub resyncs: u64,
    /// Sequence gaps detected while synced (spot: `U > id + 1`; futures: `pu` is not the previous
    /// diff's `u`).
    pub gaps: u64,
    /// Buffered diffs dropped at alignment because the snapshot already covered them (spot:
    /// `u <= lastUpdateId`; futures: `u < lastUpdateId`).
    pub dropped_diffs: u64,
    /// Diffs ignored while synced because `u <= id` (duplicates or late).
    pub stale_diffs: u64,
    /// Snapshots refused as too old for the buffered diffs (refetched).
    pub stale_snapshots: u64,
    /// Snapshots that arrived while the book was synced and were not needed.
    pub unneeded_snapshots: u64,
    /// Times the pre-snapshot buffer overflowed (too many diffs or too many levels) and
    /// restarted.
    pub buffer_overflows: u64,
    /// Times a diff made the ladder drop a far level (its overflow was full): the book could no
    /// longer be sure, so it was discarded and resynced with a larger overflow.
    pub evictions: u64,
    /// Prices that were not a multiple of the tick size (book discarded, tick refined).
    pub off_tick: u64,
    /// Times the best bid or ask moved past the deepest level of the snapshot (the levels beyond
    /// it were never sent, so the top could no longer be sure): the book was discarded and
    /// resynced from a snapshot around the new price.
    pub beyond_snapshot: u64,
    /// Times a synced book was discarded because its bookTicker audit disagreed with it (see
    /// [`OrderBook::distrust`]).
    pub audit_resyncs: u64,
    /// Snapshots that never connected to the stream: [`MAX_DROPPED_AFTER_SNAPSHOT`] diffs in a
    /// row were all at or below its `lastUpdateId` (a snapshot far ahead of the stream: another
    /// venue or environment), so the book was discarded rather than left frozen.
    pub unconnected_snapshots: u64,
    /// Snapshots refused because they cannot be a real book (out of order, a price twice, crossed).
    pub malformed_snapshots: u64,
    /// Times the pre-snapshot buffer was dropped because two snapshots in a row were too old for
    /// its first diff: that diff was not of this stream, and nothing would ever continue it.
    pub buffer_restarts: u64,
}

/// A synced book that has dropped this many diffs in a row as covered by its snapshot, without
/// applying one, does not connect to the stream, unless the stream is visibly catching up with it
/// (see [`MAX_CATCH_UP_DIFFS`]). A snapshot is normally at most a REST round trip ahead (a few
/// diffs of a 100 ms stream); 200 is 20 s of one symbol's diffs.
pub const MAX_DROPPED_AFTER_SNAPSHOT: u64 = 200;

/// A stream still catching up with its snapshot (a reader behind the exchange: its socket
/// buffers hold many diffs the snapshot already covers) may take at most this many covered diffs
/// to reach it, if its pace so far says it will: past [`MAX_DROPPED_AFTER_SNAPSHOT`] the book
/// waits on while the remaining distance, at the pace of the covered diffs so far, is within
/// this many diffs. A snapshot of another stream is far further ahead and is refused at 200.
pub(crate) const MAX_CATCH_UP_DIFFS: u64 = 20_000;

/// What a diff did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOutcome {
    /// Held until a snapshot arrives.
    Buffered,
    /// Applied: the book changed and is now at the diff's `u`.
    Applied,
    /// Ignored: `u <= id`, already in the book (futures, before the first diff applied:
    /// `u < lastUpdateId`).
    Stale,
    /// A gap (spot: `U > id + 1`; futures: `pu` is not the previous diff's `u`): the book was
    /// discarded and a snapshot is wanted.
    Gap,
    /// A price off the tick grid: the book was discarded and a snapshot is wanted.
    OffTick,
    /// The snapshot was too old to continue from this diff: discarded, a new one is wanted.
    SnapshotTooOld,
    /// Applying it made the ladder drop a far level: the book is no longer known to be whole, so
    /// it was discarded; the next snapshot gets a ladder with twice the overflow.
    Evicted,
    /// Applying it moved the best bid or ask past the deepest level of the snapshot: levels
    /// beyond that were never sent, so the top is no longer known; the book was discarded.
    BeyondSnapshot,
    /// [`MAX_DROPPED_AFTER_SNAPSHOT`] diffs in a row after a snapshot were all covered by it: the
    /// snapshot is far ahead of the stream; the book was discarded.
    SnapshotUnconnected,
}

/// What a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// Installed; buffered diffs were dropped or applied; the book is synced.
    Synced {
        /// Buffered diffs dropped as already covered by the snapshot.
        dropped: usize,
        /// Buffered diffs applied on top of it.
        applied: usize,
    },
    /// Older than the buffered diffs can continue from: a new snapshot is wanted.
    TooOld,
    /// The book was already synced: ignored.
    NotNeeded,
    /// Installed, but applying the buffer then found a gap or bad price: a new snapshot is wanted.
    Failed,
    /// Not installed: the snapshot cannot be a real book (a side out of Binance's order or with a
    /// price twice, or a best bid at or above the best ask). A new snapshot is wanted.
    Malformed,
}

/// How the latest snapshot was joined to the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncPoint {
    /// The snapshot's `lastUpdateId`.
    pub snapshot_id: u64,
    /// Diffs dropped because the snapshot covered them (`u <= lastUpdateId`).
    pub dropped: u64,
    /// `(U, u)` of the first diff applied on top of the snapshot, once there is one.
    pub first_applied: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct Buffered {
    first_id: u64,
    final_id: u64,
    /// `pu` of a futures diff (`None` for spot).
    prev_final: Option<u64>,
    bids: (u32, u32),
    asks: (u32, u32),
}

/// The ladder a book gets at its first snapshot when none is fixed: a window of ticks (a power of
/// two, 1,024..65,536) that holds the snapshot's depth twice over and at least 0.5% of the price, and
/// an overflow for the far levels of a quarter of the window but at least twice the snapshot's
/// levels per side (256..16,384). BTCUSDT at a 0.01 tick gets the largest ladder (1.6 MB), a
/// low-priced symbol a few tens of kB.
pub fn auto_ladder(tick: TickSize, bids: &[RawLevel], asks: &[RawLevel]) -> LadderConfig {
    let t = |p: Units| p / tick.units().max(1);
    let span = |side: &[RawLevel]| {
        let (lo, hi) = side.iter().fold((i64::MAX, i64::MIN), |(lo, hi), l| (lo.min(l.price), hi.max(l.price)));
        if side.is_empty() {
            0
        } else {
            t(hi).saturating_sub(t(lo))
        }
    };
    let depth = span(bids).max(span(asks)).max(0) as u64;
    let price = bids.iter().chain(asks).map(|l| t(l.price)).max().unwrap_or(0).max(0) as u64;
    let want = depth.saturating_mul(2).max(price / 200);
    let window_ticks = (want.clamp(1024, 1 << 16) as usize).next_power_of_two();
    let levels = bids.len().max(asks.len());
    let overflow_cap = (window_ticks / 4).max(levels.saturating_mul(2)).clamp(256, 1 << 14);
    LadderConfig { window_ticks, overflow_cap }
}

/// One symbol's book and its sync state.
pub struct OrderBook {
    ladder: Ladder,
    /// `Some`: every ladder is this size; `None`: sized from each first snapshot.
    fixed: Option<LadderConfig>,
    /// The ladder is still the placeholder of a book never synced (auto sizing).
    not_sized: bool,
    /// An eviction asked for a larger overflow at the next snapshot.
    grow: bool,
    tick: Option<TickSize>,
    /// [`BookConfig::procedure`].
    procedure: Procedure,
    state: SyncState,
    last_update_id: u64,
    /// Synced from a snapshot but no diff applied yet: a `U > id+1` (futures: `U > id`) then
    /// means the snapshot was too old, not that the stream skipped.
    awaiting_first_diff: bool,
    diffs: Vec<Buffered>,
    levels: Vec<RawLevel>,
    max_buffered: usize,
    /// [`BookConfig::max_buffered_levels`].
    max_levels: usize,
    wants_snapshot: bool,
    snapshot_in_flight: bool,
    counters: SyncCounters,
    sync_point: Option<SyncPoint>,
    /// The deepest bid and ask of the snapshot, in ticks (`None`: that side was empty, so the
    /// snapshot held all of it). Every level at or better than these is known exactly; beyond
    /// them only the levels a diff has touched are, so a best price past them cannot be trusted.
    known: (Option<i64>, Option<i64>),
    /// [`BookConfig::trust_beyond_snapshot`].
    trust_beyond_snapshot: bool,
    /// Diffs that arrived after the snapshot was installed and were all covered by it.
    covered_since_install: u64,
    /// `u` of the first of those diffs: with the last one's, the pace at which the stream is
    /// closing in on the snapshot.
    first_covered: u64,
    /// The snapshot's buffered diffs are being replayed.
    replaying: bool,
    /// The first buffered diff (`U`) the last snapshot was too old for.
    too_old_for: Option<u64>,
    /// The highest update id this stream's book ever applied (until `reset`): a snapshot older
    /// than that is behind the stream, whatever the buffer holds. Buffered diffs do not count: one
    /// far ahead may not be of this stream.
    highest_applied: u64,
    /// The id of the last snapshot installed (until `reset`, or until it turns out not to connect
    /// to the stream): a snapshot older than it is behind too. Without it a book synced from a
    /// snapshot alone, whose buffer then restarts, could take an older snapshot and go back.
    installed_id: u64,
}

impl OrderBook {
    /// A new book, waiting for its first snapshot. `tick` comes from exchangeInfo; `None` means
    /// infer it from the first snapshot (replay of a recording without exchangeInfo).
    pub fn new(cfg: BookConfig, tick: Option<TickSize>) -> OrderBook {
        OrderBook {
            // Auto sizing starts with the smallest ladder; the first snapshot sizes the real one.
            ladder: Ladder::new(cfg.ladder.unwrap_or(LadderConfig { window_ticks: MIN_WINDOW_TICKS, overflow_cap: 0 })),
            fixed: cfg.ladder,
            not_sized: cfg.ladder.is_none(),
            grow: false,
            tick,
            procedure: cfg.procedure,
            state: SyncState::WaitingSnapshot,
            last_update_id: 0,
            awaiting_first_diff: false,
            // The pre-snapshot buffers grow while a book syncs, then keep their size.
            diffs: Vec::with_capacity(cfg.max_buffered_diffs.min(64)),
            levels: Vec::with_capacity(256),
            max_buffered: cfg.max_buffered_diffs.max(1),
            max_levels: cfg.max_buffered_levels.max(1),
            wants_snapshot: false,
            snapshot_in_flight: false,
            counters: SyncCounters::default(),
            sync_point: None,
            known: (None, None),
            trust_beyond_snapshot: cfg.trust_beyond_snapshot,
            covered_since_install: 0,
            first_covered: 0,
            replaying: false,
            too_old_for: None,
            highest_applied: 0,
            installed_id: 0,
        }
    }

    /// How the latest snapshot was joined to the stream (`None` before the first).
    pub fn sync_point(&self) -> Option<SyncPoint> {
        self.sync_point
    }

    /// The procedure this book follows.
    pub fn procedure(&self) -> Procedure {
        self.procedure
    }

    /// The sync state.
    pub fn state(&self) -> SyncState {
        self.state
    }

    /// True when the book is exact at [`Self::last_update_id`].
    pub fn is_synced(&self) -> bool {
        self.state == SyncState::Synced
    }

    /// The update id the book is at (meaningful while synced).
    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    /// The price ladder (read-only: only the engine changes it).
    pub fn ladder(&self) -> &Ladder {
        &self.ladder
    }

    /// The deepest bid and ask of the last snapshot, in ticks: every level at or better than
    /// these is known exactly (`None`: that side of the snapshot was whole). Beyond them only the
    /// levels a diff has touched are known.
    pub fn known_band(&self) -> (Option<i64>, Option<i64>) {
        self.known
    }

    /// The tick size in use, once known.
    pub fn tick(&self) -> Option<TickSize> {
        self.tick
    }

    /// Sets the tick size (from exchangeInfo); takes effect at the next snapshot.
    pub fn set_tick(&mut self, tick: TickSize) {
        if self.tick != Some(tick) {
            self.tick = Some(tick);
            if self.state == SyncState::Synced {
                self.discard(true);
            }
        }
    }

    /// The procedure's counters.
    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    /// Diffs currently buffered.
    pub fn buffered(&self) -> usize {
        self.diffs.len()
    }

    /// The final update id (`u`) of the last diff buffered, while the book is not synced.
    pub fn buffered_last(&self) -> Option<u64> {
        self.diffs.last().map(|d| d.final_id)
    }

    /// True once each time the engine wants a snapshot: the caller must fetch one and hand it to
    /// [`Self::on_snapshot`], or call [`Self::snapshot_failed`]. While a request is outstanding it
    /// answers false, so polling it every loop iteration is cheap and never double-requests.
    #[must_use]
    pub fn poll_snapshot_request(&mut self) -> bool {
        if self.wants_snapshot && !self.snapshot_in_flight {
            self.wants_snapshot = false;
            self.snapshot_in_flight = true;
            true
        } else {
            false
        }
    }

    /// The requested snapshot could not be had (HTTP error, timeout): ask again.
    pub fn snapshot_failed(&mut self) {
        self.snapshot_in_flight = false;
        if self.state != SyncState::Synced {
            self.wants_snapshot = true;
        }
    }

    /// Forgets the book and the buffer (after a reconnect: events in between are lost). The next
    /// diff starts a new buffer and a new snapshot request.
    pub fn reset(&mut self) {
        self.discard(false);
        self.diffs.clear();
        self.levels.clear();
        self.highest_applied = 0;
        self.installed_id = 0;
        self.too_old_for = None;
        self.wants_snapshot = false;
        self.snapshot_in_flight = false;
    }

    /// Feeds one diff (`U` = `first_id`, `u` = `final_id`). On a [`Procedure::UsdM`] book this is a
    /// futures diff without its `pu`: it can be the first diff applied after a snapshot (that one
    /// is judged by `U` and `u` alone), but never continue one, so there it is a gap. Futures
    /// callers use [`Self::on_futures_diff`].
    pub fn on_diff(&mut self, first_id: u64, final_id: u64, bids: &[RawLevel], asks: &[RawLevel]) -> DiffOutcome {
        self.diff(first_id, final_id, None, bids, asks)
    }

    /// Feeds one USDⓈ-M futures diff: `U` = `first_id`, `u` = `final_id`, and `pu` =
    /// `prev_final_id`, the `u` of the diff before it on the stream. On a [`Procedure::Spot`]
    /// book `pu` is not looked at: this is [`Self::on_diff`].
    pub fn on_futures_diff(
        &mut self,
        first_id: u64,
        final_id: u64,
        prev_final_id: u64,
        bids: &[RawLevel],
        asks: &[RawLevel],
    ) -> DiffOutcome {
        self.diff(first_id, final_id, Some(prev_final_id), bids, asks)
    }

    /// One diff of either procedure; `prev` is `pu` (futures only).
    fn diff(
        &mut self,
        first_id: u64,
        final_id: u64,
        prev: Option<u64>,
        bids: &[RawLevel],
        asks: &[RawLevel],
    ) -> DiffOutcome {
        if self.state != SyncState::Synced {
            self.buffer(first_id, final_id, prev, bids, asks);
            return DiffOutcome::Buffered;
        }
        let futures = self.procedure == Procedure::UsdM;
        // Already in the book. Futures, before the first diff applied, drops only `u <
        // lastUpdateId` (the docs' rule): a diff ending at lastUpdateId is the first to apply
        // (re-applying it is idempotent: its quantities are absolute and final at `u`), and the
        // next diff's `pu` points at it. After the first diff both procedures ignore `u <= id`:
        // the futures docs only ask for `pu == previous u`, which a duplicate or late diff cannot
        // meet, but it is already in the book, so tickfeed ignores it as it does on spot rather
        // than resync for nothing.
        let covered = if futures && self.awaiting_first_diff {
            final_id < self.last_update_id
        } else {
            final_id <= self.last_update_id
        };
        if covered {
            if self.awaiting_first_diff {
                self.counters.dropped_diffs += 1;
                if let Some(sp) = &mut self.sync_point {
                    sp.dropped += 1;
                }
                // Only diffs that arrive after the snapshot count: the buffer it replays may
                // legitimately hold many it covers (a snapshot that waited on a Retry-After).
                // Futures counts its covered diffs (`u < lastUpdateId`) the same way: its ids
                // skip, but still rise, so the pace `catching_up` measures in ids is as sound.
                if !self.replaying {
                    if self.covered_since_install == 0 {
                        self.first_covered = final_id;
                    }
                    self.covered_since_install += 1;
                }
                if self.covered_since_install >= MAX_DROPPED_AFTER_SNAPSHOT && !self.catching_up(final_id) {
                    self.counters.unconnected_snapshots += 1;
                    // Not of this stream: its id says nothing about where the stream is.
                    self.installed_id = 0;
                    self.discard(true);
                    self.buffer(first_id, final_id, prev, bids, asks);
                    return DiffOutcome::SnapshotUnconnected;
                }
            } else {
                self.counters.stale_diffs += 1;
            }
            return DiffOutcome::Stale;
        }
        let joins = match (futures, self.awaiting_first_diff) {
            (false, _) => first_id <= self.last_update_id + 1,
            // The first diff after a futures snapshot must hold lastUpdateId itself.
            (true, true) => first_id <= self.last_update_id,
            // Afterwards only `pu` says whether the diff continues the book: futures ids skip,
            // so `U` says nothing. A diff without `pu` cannot show that it does.
            (true, false) => prev == Some(self.last_update_id),
        };
        if !joins {
            let too_old = self.awaiting_first_diff;
            if too_old {
                self.counters.stale_snapshots += 1;
            } else {
                self.counters.gaps += 1;
            }
            self.discard(true);
            self.buffer(first_id, final_id, prev, bids, asks);
            return if too_old { DiffOutcome::SnapshotTooOld } else { DiffOutcome::Gap };
        }
        let evicted = self.ladder.stats().evicted;
        match self.apply(bids, asks) {
            Ok(()) if self.ladder.stats().evicted != evicted => {
                // A level had to be dropped: the book is no longer known to equal the exchange's
                // (a nearer level deleted later would expose the hole). Resync with more room.
                self.counters.evictions += 1;
                self.grow = true;
                self.discard(true);
                self.buffer(first_id, final_id, prev, bids, asks);
                DiffOutcome::Evicted
            }
            Ok(()) if self.beyond_snapshot() => {
                self.counters.beyond_snapshot += 1;
                self.discard(true);
                self.buffer(first_id, final_id, prev, bids, asks);
                DiffOutcome::BeyondSnapshot
            }
            Ok(()) => {
                if self.awaiting_first_diff {
                    if let Some(sp) = &mut self.sync_point {
                        sp.first_applied = Some((first_id, final_id));
                    }
                }
                self.last_update_id = final_id;
                self.highest_applied = self.highest_applied.max(final_id);
                self.awaiting_first_diff = false;
                DiffOutcome::Applied
            }
            Err(off) => {
                self.off_tick(off);
                DiffOutcome::OffTick
            }
        }
    }

    /// Feeds a REST depth snapshot.
    pub fn on_snapshot(&mut self, last_update_id: u64, bids: &[RawLevel], asks: &[RawLevel]) -> SnapshotOutcome {
        self.snapshot_in_flight = false;
        if self.state == SyncState::Synced {
            self.counters.unneeded_snapshots += 1;
            return SnapshotOutcome::NotNeeded;
        }
        // Step 3: the snapshot must reach at least to just before the first buffered event.
        // (The docs refetch while lastUpdateId < U; lastUpdateId == U-1 also continues exactly, as
        // the alignment test U <= lastUpdateId+1 <= u accepts, so it is kept rather than refetched.)
        // Futures (adapted): the first diff applied must hold lastUpdateId itself, so the snapshot
        // must reach the first buffered `U`; ids skip there, so `U-1` continues nothing.
        let reach = match self.procedure {
            Procedure::Spot => last_update_id.saturating_add(1),
            Procedure::UsdM => last_update_id,
        };
        if let Some(first) = self.diffs.first() {
            if reach < first.first_id {
                self.counters.stale_snapshots += 1;
                self.wants_snapshot = true;
                // A snapshot fetched after the buffer began is newer than its first diff, so two
                // in a row too old for the same first diff mean that diff is not of this stream
                // (a frame far ahead of the book, say): nothing would ever continue it. The buffer
                // starts again from the next diff.
                let first_id = first.first_id;
                if self.too_old_for == Some(first_id) {
                    self.counters.buffer_restarts += 1;
                    self.diffs.clear();
                    self.levels.clear();
                    self.too_old_for = None;
                } else {
                    self.too_old_for = Some(first_id);
                }
                return SnapshotOutcome::TooOld;
            }
        }
        self.too_old_for = None;
        // Behind what this book already applied (an empty buffer, after a restart, cannot say
        // so): a book synced from it would be one the stream has passed. The same for futures:
        // ids there skip but never go back.
        if last_update_id < self.highest_applied.max(self.installed_id) {
            self.counters.stale_snapshots += 1;
            self.wants_snapshot = true;
            return SnapshotOutcome::TooOld;
        }
        // Binance sends bids best first (prices falling) and asks best first (prices rising), each
        // price once, and never a crossed book: a snapshot that is not so is no book to trust.
        let ordered =
            |ls: &[RawLevel], better: fn(i64, i64) -> bool| ls.windows(2).all(|w| better(w[0].price, w[1].price));
        let crossed = matches!((bids.first(), asks.first()), (Some(b), Some(a)) if b.price >= a.price);
        if !ordered(bids, |a, b| a > b) || !ordered(asks, |a, b| a < b) || crossed {
            self.counters.malformed_snapshots += 1;
            self.wants_snapshot = true;
            return SnapshotOutcome::Malformed;
        }
        if self.tick.is_none() {
            let buffered = self.levels.iter();
            let prices = bids.iter().chain(asks).chain(buffered).map(|l| l.price);
            self.tick = Some(infer_tick(prices));
        }
        self.size_ladder(bids, asks);
        self.ladder.clear();
        if let Err(off) = self.apply(bids, asks) {
            self.off_tick(off);
            return SnapshotOutcome::Failed;
        }
        if let Some(tick) = self.tick {
            let deepest = |ls: &[RawLevel], worse: fn(Ticks, Ticks) -> Ticks| {
                ls.iter().filter_map(|l| tick.to_ticks(l.price).ok()).reduce(worse)
            };
            self.known = (deepest(bids, Ticks::min), deepest(asks, Ticks::max));
        }
        if self.counters.snapshots > 0 {
            self.counters.resyncs += 1;
        }
        self.counters.snapshots += 1;
        self.last_update_id = last_update_id;
        self.installed_id = last_update_id;
        self.state = SyncState::Synced;
        self.awaiting_first_diff = true;
        self.sync_point = Some(SyncPoint { snapshot_id: last_update_id, dropped: 0, first_applied: None });
        // Steps 4 and 5: replay the buffer through the ordinary update rule, which drops what the
        // snapshot covers and catches a gap inside the buffer.
        let diffs = std::mem::take(&mut self.diffs);
        let levels = std::mem::take(&mut self.levels);
        self.covered_since_install = 0;
        self.first_covered = 0;
        self.replaying = true;
        let (mut dropped, mut applied) = (0, 0);
        let mut failed = false;
        for (i, d) in diffs.iter().enumerate() {
            let b = &levels[d.bids.0 as usize..d.bids.1 as usize];
            let a = &levels[d.asks.0 as usize..d.asks.1 as usize];
            match self.diff(d.first_id, d.final_id, d.prev_final, b, a) {
                DiffOutcome::Applied => applied += 1,
                DiffOutcome::Stale => dropped += 1,
                _ => {
                    // The book was discarded and this diff re-buffered; keep the rest buffered
                    // behind it so the next snapshot can continue from them.
                    for d in &diffs[i + 1..] {
                        let b = &levels[d.bids.0 as usize..d.bids.1 as usize];
                        let a = &levels[d.asks.0 as usize..d.asks.1 as usize];
                        self.buffer(d.first_id, d.final_id, d.prev_final, b, a);
                    }
                    failed = true;
                    break;
                }
            }
        }
        self.replaying = false;
        // Give the (now empty) storage back so its capacity is reused.
        if !failed {
            self.diffs = diffs;
            self.levels = levels;
            self.diffs.clear();
            self.levels.clear();
            SnapshotOutcome::Synced { dropped, applied }
        } else {
            SnapshotOutcome::Failed
        }
    }

    fn buffer(&mut self, first_id: u64, final_id: u64, prev_final: Option<u64>, bids: &[RawLevel], asks: &[RawLevel]) {
        let levels = self.levels.len().saturating_add(bids.len()).saturating_add(asks.len());
        if self.diffs.len() >= self.max_buffered || (levels > self.max_levels && !self.diffs.is_empty()) {
            // Restart from this diff (a diff larger than the bound on its own is still kept: its
            // size is bounded by the message limit). A burst's memory is given back.
            self.counters.buffer_overflows += 1;
            self.diffs.clear();
            self.levels.clear();
            self.diffs.shrink_to(KEPT_DIFFS);
            self.levels.shrink_to(KEPT_LEVELS);
        }
        let b0 = self.levels.len() as u32;
        self.levels.extend_from_slice(bids);
        let b1 = self.levels.len() as u32;
        self.levels.extend_from_slice(asks);
        let a1 = self.levels.len() as u32;
        self.diffs.push(Buffered { first_id, final_id, prev_final, bids: (b0, b1), asks: (b1, a1) });
        if !self.snapshot_in_flight {
            self.wants_snapshot = true;
        }
    }

    /// The best bid is below the snapshot's deepest bid (or the bids are gone), or the best ask
    /// above its deepest ask: between there and the known band may be levels never sent.
    /// Past [`MAX_DROPPED_AFTER_SNAPSHOT`] covered diffs: whether the stream, at the pace its
    /// covered diffs closed in on the snapshot, reaches it within [`MAX_CATCH_UP_DIFFS`] in all.
    fn catching_up(&self, u: u64) -> bool {
        let n = self.covered_since_install;
        if !(2..MAX_CATCH_UP_DIFFS).contains(&n) {
            return false;
        }
        let per_diff = u.saturating_sub(self.first_covered) / (n - 1);
        let left = self.last_update_id.saturating_sub(u);
        per_diff > 0 && left / per_diff <= MAX_CATCH_UP_DIFFS - n
    }

    fn beyond_snapshot(&self) -> bool {
        if self.trust_beyond_snapshot {
            return false;
        }
        let (bid_floor, ask_ceiling) = self.known;
        let bid_out = bid_floor.is_some_and(|f| self.ladder.best_bid().is_none_or(|b| b.tick < f));
        let ask_out = ask_ceiling.is_some_and(|c| self.ladder.best_ask().is_none_or(|a| a.tick > c));
        bid_out || ask_out
    }

    fn apply(&mut self, bids: &[RawLevel], asks: &[RawLevel]) -> Result<(), OffTick> {
        let Some(tick) = self.tick else { return Err(OffTick { price: 0 }) };
        for l in bids {
            self.ladder.set(Side::Bid, tick.to_ticks(l.price)?, l.qty);
        }
        for l in asks {
            self.ladder.set(Side::Ask, tick.to_ticks(l.price)?, l.qty);
        }
        Ok(())
    }

    /// Before a snapshot is installed: a book never sized gets a ladder sized from this snapshot,
    /// and one that evicted gets twice the overflow. Allocates only then, never on a diff.
    fn size_ladder(&mut self, bids: &[RawLevel], asks: &[RawLevel]) {
        if !self.not_sized && !self.grow {
            return;
        }
        let mut cfg = match (self.fixed, self.tick) {
            (Some(c), _) => c,
            (None, Some(tick)) if self.not_sized => auto_ladder(tick, bids, asks),
            (None, _) => self.ladder.config(),
        };
        if self.grow {
            let now = self.ladder.config().overflow_cap;
            cfg.overflow_cap = cfg.overflow_cap.max(now.saturating_mul(2)).clamp(256, MAX_OVERFLOW_CAP);
        }
        if cfg != self.ladder.config() {
            self.ladder = Ladder::new(cfg);
        }
        self.not_sized = false;
        self.grow = false;
    }

    fn off_tick(&mut self, off: OffTick) {
        self.counters.off_tick += 1;
        // The tick was wrong (inferred too coarse, or the filter changed): refine it so the next
        // snapshot can hold this price.
        let old = self.tick.map_or(1, TickSize::units);
        self.tick = Some(infer_tick([old, off.price]));
        self.discard(true);
    }

    /// Drops the book; with `want`, asks for a new snapshot at once.
    fn discard(&mut self, want: bool) {
        self.ladder.clear();
        if self.state == SyncState::Synced || self.counters.snapshots > 0 {
            self.state = SyncState::Resyncing;
        }
        self.awaiting_first_diff = false;
        if want && !self.snapshot_in_flight {
            self.wants_snapshot = true;
        }
    }

    /// The book cannot be trusted any more (its bookTicker audit disagreed with it): a synced book
    /// is discarded and asks for a snapshot (`audit_resyncs`). False if it was not synced.
    pub fn distrust(&mut self) -> bool {
        if self.state != SyncState::Synced {
            return false;
        }
        self.counters.audit_resyncs += 1;
        self.discard(true);
        true
    }

    /// Best bid and ask in 1e-8 units, for output and audit: `(price, qty)` per side.
    pub fn top(&self) -> Top {
        let tick = self.tick.map_or(1, TickSize::units);
        let f = |l: Option<crate::book::ladder::Level>| l.map(|l| (l.tick * tick, l.qty));
        Top { bid: f(self.ladder.best_bid()), ask: f(self.ladder.best_ask()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: i64, q: i64) -> RawLevel {
        RawLevel { price: p * 1_000_000, qty: q }
    }

    fn book() -> OrderBook {
        OrderBook::new(BookConfig::default(), TickSize::new(1_000_000))
    }

    #[test]
    fn a_snapshot_far_ahead_of_the_stream_is_not_left_frozen() {
        let mut b = book();
        assert_eq!(b.on_diff(5, 6, &[], &[]), DiffOutcome::Buffered);
        // Another venue's snapshot, far ahead: every diff of this stream is "covered" by it.
        assert!(matches!(b.on_snapshot(1_000_000, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        for u in 7..7 + MAX_DROPPED_AFTER_SNAPSHOT - 1 {
            assert_eq!(b.on_diff(u, u, &[], &[]), DiffOutcome::Stale, "diff {u}");
            assert!(b.is_synced());
        }
        let u = 7 + MAX_DROPPED_AFTER_SNAPSHOT - 1;
        assert_eq!(b.on_diff(u, u, &[], &[]), DiffOutcome::SnapshotUnconnected);
        assert!(!b.is_synced());
        assert_eq!(b.counters().unconnected_snapshots, 1);
        // A buffer holding many diffs the snapshot covers (it waited on a Retry-After) is normal.
        let mut b = book();
        for u in 1..=3 * MAX_DROPPED_AFTER_SNAPSHOT {
            assert_eq!(b.on_diff(u, u, &[], &[]), DiffOutcome::Buffered);
        }
        let last = 3 * MAX_DROPPED_AFTER_SNAPSHOT;
        assert!(matches!(b.on_snapshot(last - 1, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.last_update_id(), last);
        // A snapshot a few diffs ahead is normal: the first diff past it connects.
        let mut b = book();
        assert_eq!(b.on_diff(5, 6, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(9, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.on_diff(7, 8, &[], &[]), DiffOutcome::Stale);
        assert_eq!(b.on_diff(9, 10, &[l(10, 2)], &[]), DiffOutcome::Applied);
    }

    #[test]
    fn a_stream_catching_up_with_its_snapshot_is_waited_for_within_bounds() {
        // A reader behind the exchange: its snapshot is 700 diffs ahead of the diffs in hand,
        // which close in on it 10 ids a diff.
        let mut b = book();
        assert_eq!(b.on_diff(991, 1000, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(10_000, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        let mut u = 1000;
        while u + 10 <= 10_000 {
            assert_eq!(b.on_diff(u + 1, u + 10, &[], &[]), DiffOutcome::Stale, "diff ending {}", u + 10);
            u += 10;
        }
        assert_eq!(b.on_diff(u + 1, u + 10, &[l(10, 2)], &[]), DiffOutcome::Applied);
        assert_eq!((b.counters().unconnected_snapshots, b.last_update_id()), (0, 10_010));
        // The same pace, but the snapshot 30,000 diffs ahead: more than the catch-up bound.
        let mut b = book();
        assert_eq!(b.on_diff(991, 1000, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(301_000, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        let mut u = 1000;
        for _ in 0..MAX_DROPPED_AFTER_SNAPSHOT - 1 {
            assert_eq!(b.on_diff(u + 1, u + 10, &[], &[]), DiffOutcome::Stale);
            u += 10;
        }
        assert_eq!(b.on_diff(u + 1, u + 10, &[], &[]), DiffOutcome::SnapshotUnconnected);
        // A stream that stalls (no progress) is not waited for either.
        let mut b = book();
        assert_eq!(b.on_diff(991, 1000, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(5_000, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        for _ in 0..MAX_DROPPED_AFTER_SNAPSHOT - 1 {
            assert_eq!(b.on_diff(1001, 1001, &[], &[]), DiffOutcome::Stale);
        }
        assert_eq!(b.on_diff(1001, 1001, &[], &[]), DiffOutcome::SnapshotUnconnected);
    }

    #[test]
    fn a_buffer_started_by_a_frame_far_ahead_is_dropped_not_kept_for_ever() {
        let mut b = book();
        // A bogus diff far ahead of the stream starts the buffer; the real ones are behind it.
        assert_eq!(b.on_diff(999_999, 999_999, &[], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_diff(5, 6, &[], &[]), DiffOutcome::Buffered);
        assert!(b.poll_snapshot_request());
        assert_eq!(b.on_snapshot(6, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
        assert!(b.poll_snapshot_request());
        assert_eq!(b.on_snapshot(7, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
        assert_eq!((b.counters().buffer_restarts, b.buffered()), (1, 0), "two in a row: the buffer starts again");
        assert_eq!(b.on_diff(8, 9, &[l(10, 2)], &[]), DiffOutcome::Buffered);
        assert!(b.poll_snapshot_request());
        assert!(matches!(b.on_snapshot(8, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.last_update_id(), 9);
    }

    #[test]
    fn a_snapshot_older_than_one_installed_is_too_old_even_after_the_buffer_restarts() {
        // Found by the cargo-fuzz sync target: synced from a snapshot alone (no diff applied),
        // then a gap; the new buffer is judged against older snapshots twice and restarts, and
        // the third old snapshot would have synced the book back in time.
        let mut b = book();
        assert_eq!(b.on_diff(103, 104, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(104, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert_ne!(b.on_diff(106, 106, &[], &[]), DiffOutcome::Applied);
        assert!(!b.is_synced());
        for _ in 0..3 {
            assert!(b.poll_snapshot_request() || b.buffered() == 0);
            assert_eq!(b.on_snapshot(100, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
            assert!(!b.is_synced());
        }
        assert!(matches!(b.on_snapshot(106, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.last_update_id(), 106);
    }

    #[test]
    fn a_crossed_or_disordered_snapshot_is_refused() {
        for (bids, asks) in [
            (vec![l(10, 1)], vec![l(10, 1)]),           // crossed (equal)
            (vec![l(12, 1)], vec![l(11, 1)]),           // crossed
            (vec![l(10, 1), l(10, 2)], vec![l(11, 1)]), // a price twice
            (vec![l(9, 1), l(10, 2)], vec![l(11, 1)]),  // bids out of order
            (vec![l(10, 1)], vec![l(12, 1), l(11, 1)]), // asks out of order
        ] {
            let mut b = book();
            assert_eq!(b.on_diff(5, 6, &[], &[]), DiffOutcome::Buffered);
            assert!(b.poll_snapshot_request());
            assert_eq!(b.on_snapshot(5, &bids, &asks), SnapshotOutcome::Malformed, "{bids:?} {asks:?}");
            assert!(!b.is_synced());
            assert!(b.poll_snapshot_request(), "asks again");
            assert_eq!(b.counters().malformed_snapshots, 1);
        }
    }

    #[test]
    fn a_distrusted_book_resyncs_once() {
        let mut b = book();
        assert!(!b.distrust(), "not synced: nothing to discard");
        assert_eq!(b.on_diff(5, 6, &[], &[]), DiffOutcome::Buffered);
        assert!(b.poll_snapshot_request());
        assert!(matches!(b.on_snapshot(5, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert!(b.distrust());
        assert!(!b.is_synced());
        assert!(b.poll_snapshot_request(), "asks for a new snapshot");
        assert_eq!(b.counters().audit_resyncs, 1);
        assert!(!b.distrust());
    }

    #[test]
    fn a_best_price_past_the_snapshots_deepest_level_resyncs() {
        let mut b = book();
        assert_eq!(b.on_diff(5, 5, &[], &[]), DiffOutcome::Buffered);
        let synced = b.on_snapshot(4, &[l(10, 1), l(9, 1), l(8, 1)], &[l(11, 1), l(12, 1), l(13, 1)]);
        assert!(matches!(synced, SnapshotOutcome::Synced { .. }), "{synced:?}");
        // Within the snapshot's band the top is known, whatever happens beyond it.
        assert_eq!(b.on_diff(6, 6, &[l(10, 0), l(5, 2)], &[l(11, 0), l(20, 1)]), DiffOutcome::Applied);
        assert_eq!(b.on_diff(7, 7, &[l(9, 0)], &[l(12, 0)]), DiffOutcome::Applied);
        // The last snapshot ask is gone: the best ask (20) is past the band, and levels between 13
        // and 20 were never sent. The book cannot be sure any more.
        assert_eq!(b.on_diff(8, 8, &[], &[l(13, 0)]), DiffOutcome::BeyondSnapshot);
        assert!(!b.is_synced());
        assert_eq!(b.counters().beyond_snapshot, 1);
        // Bids emptied past the band count too.
        let mut b = book();
        assert_eq!(b.on_diff(5, 5, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(4, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.on_diff(6, 6, &[l(10, 0)], &[]), DiffOutcome::BeyondSnapshot);
        // A side the snapshot sent empty was whole: every level on it comes from diffs.
        let mut b = book();
        assert_eq!(b.on_diff(5, 5, &[], &[]), DiffOutcome::Buffered);
        assert!(matches!(b.on_snapshot(4, &[l(10, 1)], &[]), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.on_diff(6, 6, &[], &[l(30, 1)]), DiffOutcome::Applied);
        assert_eq!(b.on_diff(7, 7, &[l(11, 1)], &[l(30, 0)]), DiffOutcome::Applied);
    }

    #[test]
    fn official_alignment_drops_covered_diffs() {
        let mut b = book();
        assert_eq!(b.on_diff(100, 105, &[l(10, 1)], &[]), DiffOutcome::Buffered);
        assert!(b.poll_snapshot_request());
        assert!(!b.poll_snapshot_request(), "one request at a time");
        assert_eq!(b.on_diff(106, 110, &[l(11, 2)], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_diff(111, 115, &[], &[l(20, 3)]), DiffOutcome::Buffered);
        // Snapshot at 108: the first diff is covered, the second straddles it (U<=109<=u).
        let out = b.on_snapshot(108, &[l(9, 5)], &[l(21, 4)]);
        assert_eq!(out, SnapshotOutcome::Synced { dropped: 1, applied: 2 });
        assert!(b.is_synced());
        assert_eq!(b.last_update_id(), 115);
        assert_eq!(b.ladder().best_bid().unwrap().tick, 11);
        assert_eq!(b.ladder().best_ask().unwrap().tick, 20);
        assert_eq!(b.counters().dropped_diffs, 1);
        assert_eq!(b.counters().gaps, 0);
        assert_eq!(b.sync_point(), Some(SyncPoint { snapshot_id: 108, dropped: 1, first_applied: Some((106, 110)) }));
        assert!(!b.poll_snapshot_request());
    }

    #[test]
    fn each_book_is_sized_from_its_first_snapshot() {
        // BTCUSDT-like: price 60,000 at a 0.01 tick, 1,000 levels a few hundred dollars deep.
        let tick = TickSize::new(1_000_000).unwrap();
        let px = |t: i64| RawLevel { price: t * 1_000_000, qty: 1 };
        let bids: Vec<RawLevel> = (0..1000).map(|i| px(6_000_000 - 30 * i)).collect();
        let asks: Vec<RawLevel> = (0..1000).map(|i| px(6_000_001 + 30 * i)).collect();
        assert_eq!(auto_ladder(tick, &bids, &asks), LadderConfig { window_ticks: 1 << 16, overflow_cap: 1 << 14 });
        // A low-priced symbol: 0.5 at a 0.0001 tick, 100 levels.
        let tick = TickSize::new(10_000).unwrap();
        let px = |t: i64| RawLevel { price: t * 10_000, qty: 1 };
        let bids: Vec<RawLevel> = (0..100).map(|i| px(5_000 - i)).collect();
        let asks: Vec<RawLevel> = (0..100).map(|i| px(5_001 + i)).collect();
        let small = auto_ladder(tick, &bids, &asks);
        assert_eq!(small, LadderConfig { window_ticks: 1024, overflow_cap: 256 });
        let mut b = OrderBook::new(BookConfig::default(), Some(tick));
        let before = b.ladder().memory_bytes();
        b.on_diff(1, 2, &[], &[]);
        assert!(matches!(b.on_snapshot(5, &bids, &asks), SnapshotOutcome::Synced { .. }));
        assert_eq!(b.ladder().config(), small);
        assert!(b.ladder().memory_bytes() < 40_000, "{} bytes", b.ladder().memory_bytes());
        assert!(before < 4_000, "a book never synced holds a placeholder: {before} bytes");
        // A fixed size is kept as given.
        let fixed = LadderConfig { window_ticks: 4096, overflow_cap: 64 };
        let mut b = OrderBook::new(BookConfig { ladder: Some(fixed), ..BookConfig::default() }, Some(tick));
        b.on_diff(1, 2, &[], &[]);
        b.on_snapshot(5, &bids, &asks);
        assert_eq!(b.ladder().config(), fixed);
    }

    #[test]
    fn a_dropped_far_level_resyncs_the_book_with_twice_the_overflow() {
        let tick = TickSize::new(1_000_000).unwrap();
        let cfg = LadderConfig { window_ticks: 64, overflow_cap: 2 };
        let mut b = OrderBook::new(BookConfig { ladder: Some(cfg), ..BookConfig::default() }, Some(tick));
        b.on_diff(1, 1, &[], &[]);
        assert!(matches!(b.on_snapshot(1, &[l(1000, 1)], &[l(1001, 1)]), SnapshotOutcome::Synced { .. }));
        // Far asks: two fit in the overflow, the third does not.
        assert_eq!(b.on_diff(2, 2, &[], &[l(5000, 1), l(6000, 1)]), DiffOutcome::Applied);
        assert_eq!(b.on_diff(3, 3, &[], &[l(7000, 1)]), DiffOutcome::Evicted);
        assert!(!b.is_synced(), "a book with a hole is not reported synced");
        assert_eq!(b.counters().evictions, 1);
        assert!(b.poll_snapshot_request());
        let out = b.on_snapshot(3, &[l(1000, 1)], &[l(1001, 1), l(5000, 1), l(6000, 1), l(7000, 1)]);
        assert!(matches!(out, SnapshotOutcome::Synced { .. }), "{out:?}");
        assert_eq!(b.ladder().config().overflow_cap, 256, "grown (at least 256, twice what it was)");
        assert_eq!(b.on_diff(4, 4, &[], &[l(8000, 1)]), DiffOutcome::Applied);
        assert_eq!(b.ladder().len(Side::Ask), 5);
    }

    #[test]
    fn too_old_snapshot_is_refetched() {
        let mut b = book();
        b.on_diff(100, 105, &[], &[]);
        assert!(b.poll_snapshot_request());
        assert_eq!(b.on_snapshot(98, &[], &[]), SnapshotOutcome::TooOld);
        assert!(b.poll_snapshot_request());
        // lastUpdateId == U-1 continues exactly and is accepted.
        assert_eq!(b.on_snapshot(99, &[l(1, 1)], &[l(2, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 1 });
        assert_eq!(b.counters().stale_snapshots, 1);
    }

    #[test]
    fn gap_discards_and_resyncs() {
        let mut b = book();
        b.on_diff(10, 12, &[], &[]);
        let _ = b.poll_snapshot_request();
        b.on_snapshot(11, &[l(5, 1)], &[l(6, 1)]);
        assert_eq!(b.on_diff(13, 14, &[l(5, 2)], &[]), DiffOutcome::Applied);
        assert_eq!(b.on_diff(13, 14, &[l(5, 9)], &[]), DiffOutcome::Stale);
        assert_eq!(b.on_diff(16, 17, &[], &[]), DiffOutcome::Gap);
        assert_eq!(b.state(), SyncState::Resyncing);
        assert!(b.ladder().is_empty());
        assert_eq!(b.counters().gaps, 1);
        assert!(b.poll_snapshot_request());
        assert_eq!(b.on_snapshot(16, &[l(4, 1)], &[l(7, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 1 });
        assert_eq!(b.counters().resyncs, 1);
        assert_eq!(b.last_update_id(), 17);
    }

    #[test]
    fn zero_qty_for_unknown_level_is_normal() {
        let mut b = book();
        b.on_diff(1, 1, &[], &[]);
        b.on_snapshot(1, &[l(5, 1)], &[l(6, 1)]);
        assert_eq!(b.on_diff(2, 2, &[l(3, 0)], &[l(99, 0)]), DiffOutcome::Applied);
        assert_eq!(b.ladder().len(Side::Bid), 1);
    }

    #[test]
    fn snapshot_before_any_diff_then_too_old() {
        let mut b = book();
        assert_eq!(b.on_snapshot(50, &[l(5, 1)], &[l(6, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 0 });
        assert_eq!(b.on_diff(40, 50, &[], &[]), DiffOutcome::Stale);
        assert_eq!(b.on_diff(60, 61, &[], &[]), DiffOutcome::SnapshotTooOld);
        assert_eq!(b.counters().gaps, 0);
        assert_eq!(b.counters().stale_snapshots, 1);
        assert!(b.poll_snapshot_request());
    }

    #[test]
    fn off_tick_price_refines_tick_and_resyncs() {
        let mut b = book();
        b.on_diff(1, 1, &[], &[]);
        b.on_snapshot(1, &[l(5, 1)], &[l(6, 1)]);
        let odd = RawLevel { price: 5_500_000, qty: 1 };
        assert_eq!(b.on_diff(2, 2, &[odd], &[]), DiffOutcome::OffTick);
        assert_eq!(b.tick().unwrap().units(), 100_000);
        assert!(b.poll_snapshot_request());
        assert!(!b.is_synced());
    }

    #[test]
    fn buffer_is_bounded() {
        let mut b = OrderBook::new(BookConfig { max_buffered_diffs: 3, ..BookConfig::default() }, None);
        for i in 0..5 {
            b.on_diff(i * 2 + 1, i * 2 + 2, &[l(1, 1)], &[]);
        }
        assert!(b.buffered() <= 3);
        assert_eq!(b.counters().buffer_overflows, 1);
    }

    /// Diffs of 20,000 levels each while the book waits for a snapshot: the buffered levels stay
    /// under their bound (counted as overflows), and once the burst is over the next restart
    /// gives the memory back.
    #[test]
    fn buffered_levels_are_bounded_and_released_after_a_burst() {
        let cfg = BookConfig::default();
        let mut b = OrderBook::new(cfg, TickSize::new(1_000_000));
        let bids: Vec<RawLevel> = (1..=10_000).map(|p| l(p, 1)).collect();
        let asks: Vec<RawLevel> = (10_001..=20_000).map(|p| l(p, 1)).collect();
        for i in 0..100 {
            assert_eq!(b.on_diff(i + 1, i + 1, &bids, &asks), DiffOutcome::Buffered);
            assert!(b.levels.len() <= cfg.max_buffered_levels, "{} levels buffered", b.levels.len());
            assert!(b.levels.capacity() <= 2 * cfg.max_buffered_levels, "capacity {}", b.levels.capacity());
        }
        let overflows = b.counters().buffer_overflows;
        assert!(overflows >= 100 * 20_000 / cfg.max_buffered_levels as u64 - 1, "{overflows} overflows");
        // The burst is over: small diffs until the buffer restarts, which releases the memory.
        for i in 100..100 + cfg.max_buffered_diffs as u64 {
            b.on_diff(i + 1, i + 1, &[l(1, 2)], &[]);
        }
        assert_eq!(b.counters().buffer_overflows, overflows + 1);
        assert!(b.levels.capacity() <= KEPT_LEVELS, "capacity {} kept", b.levels.capacity());
        assert!(b.diffs.capacity() <= 2 * KEPT_DIFFS, "diff capacity {} kept", b.diffs.capacity());
    }

    #[test]
    fn gap_inside_buffer_is_caught_at_alignment() {
        let mut b = book();
        b.on_diff(10, 12, &[], &[]);
        b.on_diff(15, 16, &[], &[]); // 13..14 missing
        assert_eq!(b.on_snapshot(11, &[l(1, 1)], &[l(2, 1)]), SnapshotOutcome::Failed);
        assert_eq!(b.counters().gaps, 1);
        assert_eq!(b.buffered(), 1);
        assert!(b.poll_snapshot_request());
        assert_eq!(b.on_snapshot(15, &[l(1, 1)], &[l(2, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 1 });
    }

    // ---- USDⓈ-M futures: the `pu` procedure ----

    fn fbook() -> OrderBook {
        OrderBook::new(BookConfig { procedure: Procedure::UsdM, ..BookConfig::default() }, TickSize::new(1_000_000))
    }

    fn synced(o: SnapshotOutcome) -> bool {
        matches!(o, SnapshotOutcome::Synced { .. })
    }

    #[test]
    fn futures_first_diff_must_hold_last_update_id_at_both_ends() {
        // U == lastUpdateId: applied.
        let mut b = fbook();
        assert_eq!(b.on_futures_diff(100, 105, 90, &[l(10, 2)], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_snapshot(100, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 1 });
        assert_eq!((b.last_update_id(), b.top().bid), (105, Some((10_000_000, 2))));
        // u == lastUpdateId: applied, not dropped as spot would (its `pu` chain starts there).
        let mut b = fbook();
        assert_eq!(b.on_futures_diff(95, 100, 90, &[l(10, 1)], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_futures_diff(104, 108, 100, &[l(10, 3)], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_snapshot(100, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 2 });
        assert_eq!(b.sync_point().unwrap().first_applied, Some((95, 100)));
        assert_eq!(b.last_update_id(), 108);
        // One before (u == lastUpdateId - 1): dropped; the next diff holds lastUpdateId.
        let mut b = fbook();
        assert_eq!(b.on_futures_diff(95, 99, 90, &[l(10, 9)], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_futures_diff(100, 103, 99, &[], &[l(11, 2)]), DiffOutcome::Buffered);
        assert_eq!(b.on_snapshot(100, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 1, applied: 1 });
        assert_eq!(b.top().bid, Some((10_000_000, 1)), "the dropped diff was not applied");
        assert_eq!(b.counters().dropped_diffs, 1);
        // One after (U == lastUpdateId + 1): spot would continue from it, futures must not.
        let mut b = fbook();
        assert_eq!(b.on_futures_diff(101, 105, 100, &[], &[]), DiffOutcome::Buffered);
        assert_eq!(b.on_snapshot(100, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
        assert!(!b.is_synced());
        assert!(b.poll_snapshot_request());
        // The same judged live, on a snapshot installed before any diff.
        let mut b = fbook();
        assert!(synced(b.on_snapshot(100, &[l(10, 1)], &[l(11, 1)])));
        assert_eq!(b.on_futures_diff(101, 105, 100, &[], &[]), DiffOutcome::SnapshotTooOld);
        assert_eq!((b.counters().stale_snapshots, b.counters().gaps), (1, 0));
        // And spot, for contrast, takes U == lastUpdateId + 1.
        let mut s = book();
        assert_eq!(s.on_diff(101, 105, &[], &[]), DiffOutcome::Buffered);
        assert!(synced(s.on_snapshot(100, &[l(10, 1)], &[l(11, 1)])));
    }

    #[test]
    fn futures_diffs_continue_by_pu_whatever_their_ids_skip() {
        let mut b = fbook();
        assert_eq!(b.on_futures_diff(1000, 1003, 990, &[], &[]), DiffOutcome::Buffered);
        assert!(synced(b.on_snapshot(1001, &[l(10, 1)], &[l(11, 1)])));
        let mut u = 1003;
        let mut r = 7u64;
        for i in 0..2000u64 {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Ids skip: U is anywhere past the previous u, as futures sends them.
            let first = u + 1 + (r >> 58);
            let last = first + (r >> 60);
            let q = 1 + (i % 5) as i64;
            assert_eq!(b.on_futures_diff(first, last, u, &[l(10, q)], &[]), DiffOutcome::Applied, "diff {i}");
            assert_eq!(b.top().bid, Some((10_000_000, q)));
            u = last;
        }
        assert_eq!((b.last_update_id(), b.counters().gaps), (u, 0));
        // A diff whose U is far past id+1 continues the book when its pu says so; spot would
        // call it a gap.
        assert_eq!(b.on_futures_diff(u + 1_000, u + 1_001, u, &[], &[]), DiffOutcome::Applied);
    }

    #[test]
    fn futures_pu_break_is_a_gap_and_resyncs_like_spot() {
        let mut b = fbook();
        assert_eq!(b.on_futures_diff(100, 104, 95, &[], &[]), DiffOutcome::Buffered);
        assert!(b.poll_snapshot_request());
        assert!(synced(b.on_snapshot(102, &[l(10, 1)], &[l(11, 1)])));
        assert_eq!(b.on_futures_diff(107, 110, 104, &[l(10, 2)], &[]), DiffOutcome::Applied);
        // U == id+1 would continue a spot book, but pu is not the previous u: a diff was missed.
        assert_eq!(b.on_futures_diff(111, 115, 109, &[l(10, 3)], &[]), DiffOutcome::Gap);
        assert_eq!(b.state(), SyncState::Resyncing);
        assert!(b.ladder().is_empty());
        assert_eq!((b.counters().gaps, b.buffered()), (1, 1), "counted, and the diff is buffered for the next sync");
        assert!(b.poll_snapshot_request(), "a snapshot is wanted");
        // The next snapshot inside the re-buffered diff resyncs the book.
        assert_eq!(b.on_futures_diff(118, 120, 115, &[], &[l(11, 4)]), DiffOutcome::Buffered);
        assert_eq!(b.on_snapshot(113, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 2 });
        assert_eq!((b.counters().resyncs, b.last_update_id()), (1, 120));
        assert_eq!(b.top().bid, Some((10_000_000, 3)));
        // A break inside the buffer is caught at alignment, as on spot.
        let mut b = fbook();
        b.on_futures_diff(100, 104, 95, &[], &[]);
        b.on_futures_diff(108, 110, 106, &[], &[]); // the diff ending at 106 is missing
        assert_eq!(b.on_snapshot(101, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Failed);
        assert_eq!((b.counters().gaps, b.buffered()), (1, 1));
        // A diff without pu (the spot entry point) cannot continue a futures book.
        let mut b = fbook();
        b.on_diff(100, 104, &[], &[]);
        assert!(synced(b.on_snapshot(102, &[l(10, 1)], &[l(11, 1)])), "the first diff needs no pu");
        assert_eq!(b.on_diff(105, 106, &[], &[]), DiffOutcome::Gap);
    }

    #[test]
    fn futures_stale_and_duplicate_diffs_are_ignored_not_gaps() {
        let mut b = fbook();
        // Buffered: two covered by the snapshot, one holding it, a duplicate of it, one after.
        b.on_futures_diff(90, 93, 80, &[l(10, 7)], &[]);
        b.on_futures_diff(95, 99, 93, &[l(10, 8)], &[]);
        b.on_futures_diff(100, 104, 99, &[l(10, 2)], &[]);
        b.on_futures_diff(100, 104, 99, &[l(10, 2)], &[]);
        b.on_futures_diff(106, 108, 104, &[l(10, 3)], &[]);
        assert_eq!(b.on_snapshot(101, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 3, applied: 2 });
        assert_eq!(b.counters().dropped_diffs, 2);
        assert_eq!(b.counters().stale_diffs, 1, "the duplicate came after the first applied");
        // Live duplicates and late diffs: already in the book.
        assert_eq!(b.on_futures_diff(106, 108, 104, &[l(10, 9)], &[]), DiffOutcome::Stale);
        assert_eq!(b.on_futures_diff(100, 104, 99, &[l(10, 9)], &[]), DiffOutcome::Stale);
        assert_eq!((b.counters().stale_diffs, b.counters().gaps, b.top().bid), (3, 0, Some((10_000_000, 3))));
        assert_eq!(b.on_futures_diff(109, 112, 108, &[], &[]), DiffOutcome::Applied);
        assert!(b.is_synced());
    }

    #[test]
    fn futures_snapshot_ahead_waits_for_the_diff_that_holds_it_or_gives_up() {
        let mut b = fbook();
        b.on_futures_diff(100, 104, 95, &[], &[]);
        b.on_futures_diff(106, 109, 104, &[], &[]);
        assert_eq!(b.on_snapshot(115, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 2, applied: 0 });
        assert_eq!(b.on_futures_diff(111, 114, 109, &[], &[]), DiffOutcome::Stale);
        assert_eq!(b.on_futures_diff(115, 118, 114, &[l(10, 2)], &[]), DiffOutcome::Applied, "U == lastUpdateId");
        assert_eq!(b.last_update_id(), 118);
        // A snapshot the stream never reaches (another venue's) is not left frozen.
        let mut b = fbook();
        b.on_futures_diff(5, 6, 1, &[], &[]);
        assert!(synced(b.on_snapshot(1_000_000, &[l(10, 1)], &[l(11, 1)])));
        let mut u = 6;
        for _ in 0..MAX_DROPPED_AFTER_SNAPSHOT - 1 {
            assert_eq!(b.on_futures_diff(u + 1, u + 1, u, &[], &[]), DiffOutcome::Stale);
            u += 1;
        }
        assert_eq!(b.on_futures_diff(u + 1, u + 1, u, &[], &[]), DiffOutcome::SnapshotUnconnected);
        assert_eq!(b.counters().unconnected_snapshots, 1);
        // Nor is a snapshot that falls between two diffs: the next one starts after it.
        let mut b = fbook();
        b.on_futures_diff(100, 104, 95, &[], &[]);
        assert_eq!(b.on_snapshot(105, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 1, applied: 0 });
        assert_eq!(b.on_futures_diff(107, 109, 104, &[], &[]), DiffOutcome::SnapshotTooOld);
        assert!(b.poll_snapshot_request());
    }

    #[test]
    fn futures_keeps_the_highest_id_and_buffer_rules() {
        // A snapshot behind what the book applied is too old, whatever the new buffer holds.
        let mut b = fbook();
        b.on_futures_diff(100, 104, 95, &[], &[]);
        assert!(synced(b.on_snapshot(101, &[l(10, 1)], &[l(11, 1)])));
        assert_eq!(b.on_futures_diff(150, 200, 104, &[], &[]), DiffOutcome::Applied);
        // A broken diff that starts before what was applied: the new buffer alone would take a
        // snapshot at 195, which is behind the book's 200.
        assert_eq!(b.on_futures_diff(190, 210, 195, &[], &[]), DiffOutcome::Gap);
        assert!(b.poll_snapshot_request());
        assert_eq!(b.on_snapshot(195, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
        assert_eq!(b.on_snapshot(205, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::Synced { dropped: 0, applied: 1 });
        assert_eq!(b.last_update_id(), 210);
        // Two snapshots in a row too old for a first diff far ahead restart the buffer.
        let mut b = fbook();
        b.on_futures_diff(999_999, 999_999, 999_990, &[], &[]);
        assert_eq!(b.on_snapshot(10, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
        assert_eq!(b.on_snapshot(11, &[l(10, 1)], &[l(11, 1)]), SnapshotOutcome::TooOld);
        assert_eq!((b.counters().buffer_restarts, b.buffered()), (1, 0));
        // The buffer is bounded.
        let mut b = OrderBook::new(
            BookConfig { max_buffered_diffs: 3, procedure: Procedure::UsdM, ..BookConfig::default() },
            TickSize::new(1_000_000),
        );
        for i in 0..5 {
            b.on_futures_diff(i * 2 + 1, i * 2 + 2, i * 2, &[l(1, 1)], &[]);
        }
        assert!(b.buffered() <= 3);
        assert_eq!(b.counters().buffer_overflows, 1);
    }

    #[test]
    fn a_spot_book_does_not_look_at_pu() {
        let mut b = book();
        assert_eq!(b.procedure(), Procedure::Spot);
        b.on_futures_diff(100, 104, 0, &[], &[]);
        assert!(synced(b.on_snapshot(101, &[l(10, 1)], &[l(11, 1)])));
        assert_eq!(b.on_futures_diff(105, 106, 12345, &[], &[]), DiffOutcome::Applied);
        assert_eq!(b.on_futures_diff(108, 109, 106, &[], &[]), DiffOutcome::Gap, "spot's own U > id+1 rule");
    }

    #[test]
    fn infers_tick_from_snapshot() {
        let mut b = OrderBook::new(BookConfig::default(), None);
        b.on_snapshot(
            1,
            &[RawLevel { price: 268_380_000_000, qty: 1 }],
            &[RawLevel { price: 268_381_000_000, qty: 1 }],
        );
        assert_eq!(b.tick().unwrap().units(), 1_000_000);
        assert_eq!(b.top().bid, Some((268_380_000_000, 1)));
    }
}
