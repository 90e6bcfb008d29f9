//! Books rebuilt from records: what `tickfeed subscribe` runs, and what the tests compare with
//! the publisher's `--dump-book`.
//!
//! A replica installs a [`SnapshotRec`] and applies each [`DiffRec`] whose `prev_id` is the
//! replica's update id, so it equals the publisher's book at every id it reports, whatever was
//! lost on the way: a diff that does not continue the replica's id (a record lost, a resync on
//! the publisher's side) leaves the replica waiting for the next snapshot, counted, and never
//! applies to the wrong book. Sequence numbers count what was lost per kind.
//!
//! Pure: records in, state out.

use std::collections::BTreeMap;

use super::{DiffRec, Header, Kind, Record, SeqCheck, SeqOutcome, SnapshotRec, StatusRec, SyncStatus, TopRec, KINDS};
use crate::book::fixed::{TickSize, Ticks, Units};
use crate::book::top::{self, Top};
use crate::output::{BookLine, Output};

/// The most levels a replica holds on one side; a bus that would grow it further (a publisher
/// it does not understand) makes it drop the book and wait for a snapshot, counted.
pub const MAX_REPLICA_LEVELS: usize = 50_000;

/// A best level: (price ticks, quantity units).
pub type Best = Option<(Ticks, Units)>;

/// Where a replica's book stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// No book yet, or the last one was dropped: waiting for a snapshot.
    Waiting,
    /// Equal to the publisher's book at [`Replica::update_id`]. `partial` when it came from a
    /// top-N snapshot: the levels beyond N are unknown.
    Synced {
        /// From a top-N snapshot.
        partial: bool,
    },
}

/// What one record did to a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The book changed (a snapshot installed or a diff applied).
    Book,
    /// A top of book was taken (the replica keeps the last one).
    Top,
    /// A trade was taken.
    Trade,
    /// Nothing changed: a diff already in the book, a record for a book not held, a status.
    Nothing,
    /// The book was dropped; it waits for a snapshot.
    Dropped(DropCause),
}

/// Why a replica dropped its book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// A diff did not continue the replica's id: something between was lost.
    Discontinuous,
    /// The publisher said the book is resyncing or saw a gap.
    PublisherResync,
    /// More than [`MAX_REPLICA_LEVELS`] levels on a side.
    TooManyLevels,
}

/// Counters of a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounters {
    /// Records taken, any kind.
    pub records: u64,
    /// Records whose sequence numbers were skipped, summed over kinds.
    pub lost: u64,
    /// Records numbered at or below one already seen (repeats, or a publisher restart).
    pub behind: u64,
    /// Snapshots installed.
    pub snapshots: u64,
    /// Diffs applied.
    pub diffs: u64,
    /// Times the book was dropped.
    pub drops: u64,
    /// Snapshots at the replica's own id that differed from its book (and replaced it).
    pub corrections: u64,
}

/// One symbol's book, rebuilt from records.
#[derive(Debug, Clone)]
pub struct Replica {
    state: ReplicaState,
    update_id: u64,
    tick: i64,
    bids: BTreeMap<Ticks, Units>,
    asks: BTreeMap<Ticks, Units>,
    last_top: Option<TopRec>,
    seqs: [SeqCheck; KINDS],
    counters: ReplicaCounters,
}

impl Default for Replica {
    fn default() -> Self {
        Replica::new()
    }
}

impl Replica {
    /// A replica waiting for its first snapshot.
    pub fn new() -> Replica {
        Replica {
            state: ReplicaState::Waiting,
            update_id: 0,
            tick: 1,
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_top: None,
            seqs: [SeqCheck::default(); KINDS],
            counters: ReplicaCounters::default(),
        }
    }

    /// Where the book stands.
    pub fn state(&self) -> ReplicaState {
        self.state
    }
    /// The book's update id (meaningful while synced).
    pub fn update_id(&self) -> u64 {
        self.update_id
    }
    /// The tick size of the last record with one, 1e-8 units.
    pub fn tick(&self) -> i64 {
        self.tick
    }
    /// Counters.
    pub fn counters(&self) -> &ReplicaCounters {
        &self.counters
    }
    /// The last top-of-book record taken.
    pub fn last_top(&self) -> Option<&TopRec> {
        self.last_top.as_ref()
    }

    /// Bids, best first: (price ticks, quantity units).
    pub fn bids(&self) -> impl Iterator<Item = (Ticks, Units)> + '_ {
        self.bids.iter().rev().map(|(&p, &q)| (p, q))
    }
    /// Asks, best first.
    pub fn asks(&self) -> impl Iterator<Item = (Ticks, Units)> + '_ {
        self.asks.iter().map(|(&p, &q)| (p, q))
    }
    /// Best bid and ask of the rebuilt book, while synced.
    pub fn best(&self) -> Option<(Best, Best)> {
        match self.state {
            ReplicaState::Synced { .. } => Some((self.bids().next(), self.asks().next())),
            ReplicaState::Waiting => None,
        }
    }

    /// Takes one record of this symbol.
    pub fn on_record(&mut self, h: &Header, r: &Record<'_>) -> Applied {
        self.counters.records += 1;
        let mut dropped = false;
        match self.seqs[h.kind as usize - 1].on(h.seq) {
            SeqOutcome::Next => {}
            SeqOutcome::Lost { lost } => {
                self.counters.lost += lost;
                // A diff or a status lost: the book cannot be known to be the publisher's, and
                // need not wait for the next diff to find out.
                if matches!(h.kind, Kind::Diff | Kind::Status) && self.state != ReplicaState::Waiting {
                    self.drop_book(DropCause::Discontinuous);
                    dropped = true;
                }
            }
            SeqOutcome::Behind => self.counters.behind += 1,
        }
        let applied = match r {
            Record::Snapshot(s) => self.install(s),
            Record::Diff(d) => self.apply(d),
            Record::Status(s) => self.status(s),
            Record::Top(t) => {
                self.last_top = Some(*t);
                Applied::Top
            }
            Record::Trade(_) => Applied::Trade,
            Record::Symbol(s) => {
                // The grid of a book not held yet; a held book keeps its snapshot's.
                if s.tick > 0 && self.state == ReplicaState::Waiting {
                    self.tick = s.tick;
                }
                Applied::Nothing
            }
        };
        match applied {
            Applied::Nothing if dropped => Applied::Dropped(DropCause::Discontinuous),
            a => a,
        }
    }

    fn drop_book(&mut self, cause: DropCause) -> Applied {
        self.state = ReplicaState::Waiting;
        self.bids.clear();
        self.asks.clear();
        self.counters.drops += 1;
        Applied::Dropped(cause)
    }

    fn install(&mut self, s: &SnapshotRec<'_>) -> Applied {
        // An older snapshot than the book held (a repeat, or one overtaken on the way) changes
        // nothing: the book is already past it.
        if matches!(self.state, ReplicaState::Synced { .. }) && s.update_id < self.update_id {
            return Applied::Nothing;
        }
        // The book it holds, again (a periodic round, another subscriber's join): nothing
        // changes, unless it differs, which only a publisher that changed its book without a
        // diff could cause; then the snapshot is the truth, and it is counted.
        if self.state == (ReplicaState::Synced { partial: s.depth != 0 }) && s.update_id == self.update_id {
            let same = s.bids.len() == self.bids.len()
                && s.asks.len() == self.asks.len()
                && s.bids.iter().eq(self.bids())
                && s.asks.iter().eq(self.asks());
            if same && s.tick == self.tick {
                return Applied::Nothing;
            }
            self.counters.corrections += 1;
        }
        if s.bids.len() > MAX_REPLICA_LEVELS || s.asks.len() > MAX_REPLICA_LEVELS {
            return self.drop_book(DropCause::TooManyLevels);
        }
        self.bids.clear();
        self.asks.clear();
        for (p, q) in s.bids.iter().filter(|l| l.1 != 0) {
            self.bids.insert(p, q);
        }
        for (p, q) in s.asks.iter().filter(|l| l.1 != 0) {
            self.asks.insert(p, q);
        }
        self.tick = s.tick.max(1);
        self.update_id = s.update_id;
        self.state = ReplicaState::Synced { partial: s.depth != 0 };
        self.counters.snapshots += 1;
        Applied::Book
    }

    fn apply(&mut self, d: &DiffRec<'_>) -> Applied {
        if self.state == ReplicaState::Waiting {
            return Applied::Nothing;
        }
        if d.last_id <= self.update_id {
            // Already in the book (the snapshot was taken after it).
            return Applied::Nothing;
        }
        // Another id, or another grid (the publisher's book was rebuilt on a finer tick):
        // not this book's next diff.
        if d.prev_id != self.update_id || d.tick != self.tick {
            return self.drop_book(DropCause::Discontinuous);
        }
        for (side, levels) in [(&mut self.bids, d.bids), (&mut self.asks, d.asks)] {
            for (p, q) in levels.iter() {
                if q == 0 {
                    side.remove(&p);
                } else {
                    side.insert(p, q);
                }
            }
        }
        if self.bids.len() > MAX_REPLICA_LEVELS || self.asks.len() > MAX_REPLICA_LEVELS {
            return self.drop_book(DropCause::TooManyLevels);
        }
        self.update_id = d.last_id;
        self.counters.diffs += 1;
        Applied::Book
    }

    fn status(&mut self, s: &StatusRec) -> Applied {
        match s.status {
            SyncStatus::Synced => Applied::Nothing,
            SyncStatus::Resyncing | SyncStatus::Gap => match self.state {
                ReplicaState::Waiting => Applied::Nothing,
                ReplicaState::Synced { .. } => self.drop_book(DropCause::PublisherResync),
            },
        }
    }
}

/// The kinds a full-book replica needs (`tickfeed subscribe` subscribes to these).
pub const BOOK_KINDS: [Kind; 4] = [Kind::Symbol, Kind::Snapshot, Kind::Diff, Kind::Status];

/// Appends the output line (`tob` / `tob-json`, as `run` prints) for a book of `symbol` at
/// `update_id` whose best levels are `bid` and `ask` in ticks of `tick`; false when there is no
/// line (a side empty, or a price beyond i64 units).
pub fn print_top(
    out: &mut Output,
    symbol: &str,
    update_id: u64,
    tick: i64,
    bid: Best,
    ask: Best,
    recv_ns: i64,
) -> bool {
    let units = |s: Best| s.and_then(|(p, q)| p.checked_mul(tick).map(|p| (p, q)));
    let (b, a) = (units(bid), units(ask));
    if (bid.is_some() && b.is_none()) || (ask.is_some() && a.is_none()) {
        return false;
    }
    let Some(m) = top::compute(Top { bid: b, ask: a }) else { return false };
    let price_decimals = TickSize::new(tick).map_or(8, |t| t.decimals());
    out.book(&BookLine { symbol, price_decimals, update_id, recv_ns, m: &m });
    true
}
