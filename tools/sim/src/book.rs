//! The reference order book: the exact state a correct client must reproduce, plus a bounded
//! history so tests can ask for the book as it was after any recent diff.
//!
//! This is the oracle side of the project. It is written for obviousness, not speed: `BTreeMap`
//! per side, whole-book clones at checkpoints. It is not the handler's ladder and must never share
//! code with it. It does not know about sockets, clocks or JSON parsing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// One price level: price and quantity in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Level {
    /// Price in 1e-8 units (61837.63 is 6_183_763_000_000).
    pub price: i64,
    /// Quantity in 1e-8 units; never zero inside a [`Book`].
    pub qty: i64,
}

/// A full book at one update id: what `reference_book` and `current_book` return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    /// Uppercase symbol, as in payloads ("BTCUSDT").
    pub symbol: String,
    /// The update id this state corresponds to: the `u` of the last diff applied (or a snapshot's
    /// `lastUpdateId`).
    pub last_update_id: u64,
    /// Bids, best (highest) first.
    pub bids: Vec<Level>,
    /// Asks, best (lowest) first.
    pub asks: Vec<Level>,
}

impl Book {
    /// Renders tickfeed's `--dump-book` JSON:
    /// `{"symbol":"BTCUSDT","lastUpdateId":N,"bids":[["price","qty"],...],"asks":[...]}`, no
    /// spaces, 8-decimal strings, every level held. Tests compare handler dump files with this
    /// byte for byte.
    pub fn to_dump_json(&self) -> String {
        let mut s = String::with_capacity(64 + 40 * (self.bids.len() + self.asks.len()));
        s.push_str("{\"symbol\":\"");
        s.push_str(&self.symbol);
        s.push_str("\",\"lastUpdateId\":");
        s.push_str(&self.last_update_id.to_string());
        s.push_str(",\"bids\":");
        push_levels(&mut s, &self.bids);
        s.push_str(",\"asks\":");
        push_levels(&mut s, &self.asks);
        s.push('}');
        s
    }

    /// Renders the body of `GET /api/v3/depth`: `{"lastUpdateId":N,"bids":[...],"asks":[...]}`.
    pub fn to_depth_json(&self) -> String {
        let mut s = String::with_capacity(48 + 40 * (self.bids.len() + self.asks.len()));
        s.push_str("{\"lastUpdateId\":");
        s.push_str(&self.last_update_id.to_string());
        s.push_str(",\"bids\":");
        push_levels(&mut s, &self.bids);
        s.push_str(",\"asks\":");
        push_levels(&mut s, &self.asks);
        s.push('}');
        s
    }

    /// The body of `GET /fapi/v1/depth`: `{"lastUpdateId":..,"E":..,"T":..,"bids":..,"asks":..}`,
    /// prices at `pd` and quantities at `qd` fractional digits.
    pub fn to_futures_depth_json(&self, pd: usize, qd: usize, event_ms: i64, transaction_ms: i64) -> String {
        let mut s = String::with_capacity(80 + 30 * (self.bids.len() + self.asks.len()));
        s.push_str("{\"lastUpdateId\":");
        s.push_str(&self.last_update_id.to_string());
        s.push_str(",\"E\":");
        s.push_str(&event_ms.to_string());
        s.push_str(",\"T\":");
        s.push_str(&transaction_ms.to_string());
        s.push_str(",\"bids\":");
        push_levels_dp(&mut s, &self.bids, pd, qd);
        s.push_str(",\"asks\":");
        push_levels_dp(&mut s, &self.asks, pd, qd);
        s.push('}');
        s
    }

    /// Best bid, if any.
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.first().copied()
    }

    /// Best ask, if any.
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.first().copied()
    }
}

/// Appends `[["p","q"],...]`.
pub(crate) fn push_levels(s: &mut String, levels: &[Level]) {
    push_levels_dp(s, levels, crate::decimal::DECIMALS, crate::decimal::DECIMALS)
}

/// [`push_levels`] with prices at `pd` and quantities at `qd` fractional digits (USDⓈ-M futures).
pub(crate) fn push_levels_dp(s: &mut String, levels: &[Level], pd: usize, qd: usize) {
    s.push('[');
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("[\"");
        crate::decimal::push_units_dp(s, l.price, pd);
        s.push_str("\",\"");
        crate::decimal::push_units_dp(s, l.qty, qd);
        s.push_str("\"]");
    }
    s.push(']');
}

/// One depth diff as the reference applies it: the ids it covers and absolute quantities
/// (0 removes a level; removing an absent level is normal and a no-op).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diff {
    /// `U`: first update id in the diff.
    pub first_id: u64,
    /// `u`: final update id in the diff.
    pub last_id: u64,
    /// Bid levels to set, in the order they go on the wire.
    pub bids: Vec<Level>,
    /// Ask levels to set, in the order they go on the wire.
    pub asks: Vec<Level>,
}

/// A mutable book keyed by price; the working form of [`Book`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiveBook {
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
    pub last_update_id: u64,
}

impl LiveBook {
    /// Applies a diff's levels (absolute quantities) and takes its final id.
    pub fn apply(&mut self, diff: &Diff) {
        for l in &diff.bids {
            set_level(&mut self.bids, l);
        }
        for l in &diff.asks {
            set_level(&mut self.asks, l);
        }
        self.last_update_id = diff.last_id;
    }

    /// Copies out at most `limit` levels per side, best first (`None` = every level).
    pub fn to_book(&self, symbol: &str, limit: Option<usize>) -> Book {
        let n = limit.unwrap_or(usize::MAX);
        Book {
            symbol: symbol.to_string(),
            last_update_id: self.last_update_id,
            bids: self.bids.iter().rev().take(n).map(|(&price, &qty)| Level { price, qty }).collect(),
            asks: self.asks.iter().take(n).map(|(&price, &qty)| Level { price, qty }).collect(),
        }
    }

    /// Best bid and best ask, for bookTicker.
    pub fn top(&self) -> (Option<Level>, Option<Level>) {
        (
            self.bids.iter().next_back().map(|(&price, &qty)| Level { price, qty }),
            self.asks.iter().next().map(|(&price, &qty)| Level { price, qty }),
        )
    }
}

fn set_level(side: &mut BTreeMap<i64, i64>, l: &Level) {
    if l.qty == 0 {
        side.remove(&l.price);
    } else {
        side.insert(l.price, l.qty);
    }
}

/// A checkpoint: the full book after the first `next_diff` diffs ever pushed.
#[derive(Debug, Clone)]
struct Checkpoint {
    book: LiveBook,
    next_diff: u64,
}

/// The current reference book of one symbol plus a bounded history of recent states.
///
/// Memory is bounded: fewer than `max_diffs + every` retained diffs and a checkpoint every
/// `every` diffs. Any state among at least the last `max_diffs` diffs is rebuilt exactly by
/// cloning the nearest older checkpoint and replaying fewer than `every` diffs.
#[derive(Debug)]
pub(crate) struct History {
    current: LiveBook,
    checkpoints: VecDeque<Checkpoint>,
    diffs: VecDeque<Arc<Diff>>,
    /// Global index of `diffs[0]`.
    diffs_base: u64,
    every: u64,
    max_diffs: usize,
}

impl History {
    /// Starts a history at `initial` (an empty book or a recorded snapshot).
    pub fn new(initial: LiveBook, max_diffs: usize) -> History {
        let every = (max_diffs.max(16) as u64 / 8).clamp(8, 512);
        History::with_checkpoint_every(initial, max_diffs, every)
    }

    /// [`History::new`] with a checkpoint every `every` diffs: fewer checkpoints cost less memory
    /// (each is a whole book) and make `at` replay more diffs. For thousands of small books.
    pub fn with_checkpoint_every(initial: LiveBook, max_diffs: usize, every: u64) -> History {
        let max_diffs = max_diffs.max(16);
        let every = every.max(1);
        let mut checkpoints = VecDeque::new();
        checkpoints.push_back(Checkpoint { book: initial.clone(), next_diff: 0 });
        History { current: initial, checkpoints, diffs: VecDeque::new(), diffs_base: 0, every, max_diffs }
    }

    /// The live current state.
    pub fn current(&self) -> &LiveBook {
        &self.current
    }

    /// Applies `diff` to the current state and records it.
    pub fn push(&mut self, diff: Arc<Diff>) {
        self.current.apply(&diff);
        self.diffs.push_back(diff);
        let pushed = self.diffs_base + self.diffs.len() as u64;
        let last_cp = self.checkpoints.back().map_or(0, |c| c.next_diff);
        if pushed - last_cp >= self.every {
            self.checkpoints.push_back(Checkpoint { book: self.current.clone(), next_diff: pushed });
        }
        // Trim whole checkpoint intervals only, so the oldest checkpoint always starts exactly
        // where the retained diffs start: every retained state stays rebuildable.
        while self.checkpoints.len() > 1 {
            let next_start = self.checkpoints[1].next_diff;
            if pushed - next_start < self.max_diffs as u64 {
                break;
            }
            self.checkpoints.pop_front();
            while self.diffs_base < next_start {
                self.diffs.pop_front();
                self.diffs_base += 1;
            }
        }
    }

    /// The exact state whose last update id is `id`: a retained checkpoint's id or a retained
    /// diff's `u`. `None` when `id` is not a diff boundary or has left the history.
    pub fn at(&self, id: u64) -> Option<LiveBook> {
        if id == self.current.last_update_id {
            return Some(self.current.clone());
        }
        let cp = self.checkpoints.iter().rev().find(|c| c.book.last_update_id <= id)?;
        let mut book = cp.book.clone();
        if book.last_update_id == id {
            return Some(book);
        }
        let start = usize::try_from(cp.next_diff.checked_sub(self.diffs_base)?).ok()?;
        for d in self.diffs.iter().skip(start) {
            if d.last_id > id {
                break;
            }
            book.apply(d);
            if d.last_id == id {
                return Some(book);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(price: i64, qty: i64) -> Level {
        Level { price, qty }
    }

    fn diff(first: u64, last: u64, bid: (i64, i64), ask: (i64, i64)) -> Arc<Diff> {
        Arc::new(Diff { first_id: first, last_id: last, bids: vec![lv(bid.0, bid.1)], asks: vec![lv(ask.0, ask.1)] })
    }

    #[test]
    fn apply_sets_and_removes() {
        let mut b = LiveBook::default();
        b.apply(&diff(1, 2, (100, 5), (101, 7)));
        b.apply(&diff(3, 3, (99, 1), (101, 0)));
        b.apply(&diff(4, 4, (50, 0), (200, 3))); // removing an absent level is a no-op
        let book = b.to_book("X", None);
        assert_eq!(book.bids, vec![lv(100, 5), lv(99, 1)]);
        assert_eq!(book.asks, vec![lv(200, 3)]);
        assert_eq!(book.last_update_id, 4);
        assert_eq!(b.to_book("X", Some(1)).bids, vec![lv(100, 5)]);
    }

    #[test]
    fn dump_json_is_exact() {
        let book = Book {
            symbol: "BTCUSDT".into(),
            last_update_id: 7,
            bids: vec![lv(6_183_763_000_000, 378_826_000)],
            asks: vec![],
        };
        assert_eq!(
            book.to_dump_json(),
            r#"{"symbol":"BTCUSDT","lastUpdateId":7,"bids":[["61837.63000000","3.78826000"]],"asks":[]}"#
        );
        assert_eq!(book.to_depth_json(), r#"{"lastUpdateId":7,"bids":[["61837.63000000","3.78826000"]],"asks":[]}"#);
    }

    #[test]
    fn history_rebuilds_every_retained_state() {
        let mut h = History::new(LiveBook::default(), 64);
        let mut states = Vec::new();
        let mut id = 10;
        for i in 0..300i64 {
            let d = diff(id + 1, id + 3, (1000 - (i % 17), i + 1), (2000 + (i % 13), i % 3));
            id += 3;
            h.push(d);
            states.push(h.current().clone());
        }
        // The last 64 states are exact; older ones are gone; non-boundaries are None.
        for s in states.iter().rev().take(64) {
            assert_eq!(h.at(s.last_update_id).as_ref(), Some(s));
        }
        assert_eq!(h.at(states[0].last_update_id), None);
        assert_eq!(h.at(id - 1), None);
        assert!(h.checkpoints.len() <= 64 / 8 + 2);
        assert!(h.diffs.len() < 64 + 8);

        // Sparse checkpoints: the same states, fewer whole books held.
        let mut h = History::with_checkpoint_every(LiveBook::default(), 64, 32);
        for (i, s) in states.iter().enumerate() {
            let first = if i == 0 { 11 } else { states[i - 1].last_update_id + 1 };
            h.push(diff(
                first,
                s.last_update_id,
                (1000 - (i as i64 % 17), i as i64 + 1),
                (2000 + (i as i64 % 13), i as i64 % 3),
            ));
        }
        for s in states.iter().rev().take(64) {
            assert_eq!(h.at(s.last_update_id).as_ref(), Some(s));
        }
        assert!(h.checkpoints.len() <= 3 && h.diffs.len() < 64 + 32);
    }
}
