//! The price ladder: one symbol's L2 book, indexed by tick.
//!
//! PLACEHOLDER BODY: a BTreeMap stands in until the array-backed ladder lands; the public API below
//! is the final one.

use crate::fixed::{Ticks, Units};
use std::collections::BTreeMap;

/// Which side of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy orders; best is the highest price.
    Bid,
    /// Sell orders; best is the lowest price.
    Ask,
}

/// One price level: a price in ticks and its total quantity in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Price in ticks.
    pub tick: Ticks,
    /// Quantity in 1e-8 units, always > 0 for a level that exists.
    pub qty: Units,
}

/// Sizing of a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderConfig {
    /// Ticks covered by each side's array window (a power of two).
    pub window_ticks: usize,
    /// Levels each side may hold outside its window.
    pub overflow_cap: usize,
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig { window_ticks: 1 << 16, overflow_cap: 1 << 14 }
    }
}

/// Counters of the ladder's internal work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LadderStats {
    /// Times a side's window moved.
    pub recentres: u64,
    /// Levels dropped because a side's overflow was full (the farthest from the touch go first).
    pub evicted: u64,
}

/// One symbol's book.
pub struct Ladder {
    bids: BTreeMap<Ticks, Units>,
    asks: BTreeMap<Ticks, Units>,
    cfg: LadderConfig,
}

impl Ladder {
    /// An empty ladder.
    pub fn new(cfg: LadderConfig) -> Ladder {
        Ladder { bids: BTreeMap::new(), asks: BTreeMap::new(), cfg }
    }
    /// The configuration it was built with.
    pub fn config(&self) -> LadderConfig {
        self.cfg
    }
    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }
    /// Sets the quantity at a price; zero removes the level (removing an absent level is a no-op).
    pub fn set(&mut self, side: Side, tick: Ticks, qty: Units) {
        let m = match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        };
        if qty == 0 {
            m.remove(&tick);
        } else {
            m.insert(tick, qty);
        }
    }
    /// The best level of a side.
    pub fn best(&self, side: Side) -> Option<Level> {
        let kv = match side {
            Side::Bid => self.bids.last_key_value(),
            Side::Ask => self.asks.first_key_value(),
        };
        kv.map(|(&tick, &qty)| Level { tick, qty })
    }
    /// Best bid.
    pub fn best_bid(&self) -> Option<Level> {
        self.best(Side::Bid)
    }
    /// Best ask.
    pub fn best_ask(&self) -> Option<Level> {
        self.best(Side::Ask)
    }
    /// Quantity at a price, 0 when there is no level.
    pub fn qty(&self, side: Side, tick: Ticks) -> Units {
        let m = match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        };
        m.get(&tick).copied().unwrap_or(0)
    }
    /// Number of levels on a side.
    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }
    /// True when both sides are empty.
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }
    /// Calls `f` on every level of a side, best first.
    pub fn for_each_level(&self, side: Side, mut f: impl FnMut(Level)) {
        match side {
            Side::Bid => self.bids.iter().rev().for_each(|(&tick, &qty)| f(Level { tick, qty })),
            Side::Ask => self.asks.iter().for_each(|(&tick, &qty)| f(Level { tick, qty })),
        }
    }
    /// Every level of a side, best first (allocates: for dumps and tests, not the hot path).
    pub fn levels(&self, side: Side) -> Vec<Level> {
        let mut v = Vec::with_capacity(self.len(side));
        self.for_each_level(side, |l| v.push(l));
        v
    }
    /// Internal work counters.
    pub fn stats(&self) -> LadderStats {
        LadderStats::default()
    }
}
