//! Property tests of the array-backed [`Ladder`] against a simple reference book, a
//! `BTreeMap<tick, qty>` per side.
//!
//! Random operation sequences (sets and removals near a moving "market", far levels up to
//! ±1,000,000 ticks away, updates and removals of existing levels, removals of the best, small
//! drifts and large jumps of the market that force recentring, clears) are applied to a ladder with
//! a small window and to the reference, and compared after every operation. A second property uses
//! a tiny overflow and checks the eviction rule: only the farthest levels are ever dropped, each is
//! counted, and nothing else changes. A soak test runs a long workload on the default configuration
//! under a counting global allocator to show that the ladder never allocates after `new`.
//!
//! This is not a benchmark, and the reference is deliberately naive: it is the specification.

mod util;

use proptest::prelude::*;
use std::collections::BTreeMap;
use tickfeed::book::{Ladder, LadderConfig, Level, Side};

/// BTCUSDT around 61,837.63 with a 0.01 tick.
const MID: i64 = 6_183_763;

/// One side of the reference book: tick to quantity.
type Book = BTreeMap<i64, i64>;

/// The reference: bids and asks.
#[derive(Default, Clone, Debug)]
struct Model {
    bids: Book,
    asks: Book,
}

impl Model {
    fn side(&self, side: Side) -> &Book {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }
    fn side_mut(&mut self, side: Side) -> &mut Book {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }
    fn set(&mut self, side: Side, tick: i64, qty: i64) {
        if qty == 0 {
            self.side_mut(side).remove(&tick);
        } else {
            self.side_mut(side).insert(tick, qty);
        }
    }
    fn best(&self, side: Side) -> Option<Level> {
        let kv = match side {
            Side::Bid => self.bids.last_key_value(),
            Side::Ask => self.asks.first_key_value(),
        };
        kv.map(|(&tick, &qty)| Level { tick, qty })
    }
    fn levels(&self, side: Side) -> Vec<Level> {
        let it = self.side(side).iter().map(|(&tick, &qty)| Level { tick, qty });
        match side {
            Side::Bid => it.rev().collect(),
            Side::Ask => it.collect(),
        }
    }
}

/// A random operation; prices are relative to the market, which the operations move.
#[derive(Debug, Clone)]
enum Op {
    /// A level `dist` ticks behind the market on its own side (negative: through it).
    Near { side: Side, dist: i64, qty: i64 },
    /// A level anywhere within ±1,000,000 ticks of the market.
    Far { side: Side, delta: i64, qty: i64 },
    /// Sets an existing level (picked by index) to `qty`, 0 removing it.
    Existing { side: Side, pick: usize, qty: i64 },
    /// Removes the best level of a side.
    RemoveBest(Side),
    /// The market drifts by a few ticks.
    Drift(i64),
    /// The market jumps by more than a small window.
    Jump(i64),
    /// The book is cleared (a resync).
    Clear,
}

/// What an operation does to a book, given the book's current levels.
#[derive(Debug, Clone, Copy)]
enum Action {
    Set(Side, i64, i64),
    Clear,
    Nothing,
}

fn action(op: &Op, market: &mut i64, book: &Model) -> Action {
    match *op {
        Op::Near { side, dist, qty } => {
            let tick = match side {
                Side::Bid => *market - dist,
                Side::Ask => *market + dist,
            };
            Action::Set(side, tick, qty)
        }
        Op::Far { side, delta, qty } => Action::Set(side, *market + delta, qty),
        Op::Existing { side, pick, qty } => {
            let b = book.side(side);
            match b.keys().nth(pick % b.len().max(1)) {
                Some(&tick) => Action::Set(side, tick, qty),
                None => Action::Nothing,
            }
        }
        Op::RemoveBest(side) => match book.best(side) {
            Some(l) => Action::Set(side, l.tick, 0),
            None => Action::Nothing,
        },
        Op::Drift(d) | Op::Jump(d) => {
            *market += d;
            Action::Nothing
        }
        Op::Clear => Action::Clear,
    }
}

fn apply(action: Action, ladder: &mut Ladder, model: &mut Model) {
    match action {
        Action::Set(side, tick, qty) => {
            ladder.set(side, tick, qty);
            model.set(side, tick, qty);
        }
        Action::Clear => {
            ladder.clear();
            *model = Model::default();
        }
        Action::Nothing => {}
    }
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Bid), Just(Side::Ask)]
}

/// A quantity, zero (a removal) one time in four.
fn qty() -> impl Strategy<Value = i64> {
    prop_oneof![1 => Just(0i64), 3 => 1..1_000_000_000i64]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (side(), -20..300i64, qty()).prop_map(|(side, dist, qty)| Op::Near { side, dist, qty }),
        8 => (side(), -1_000_000..=1_000_000i64, qty())
            .prop_map(|(side, delta, qty)| Op::Far { side, delta, qty }),
        10 => (side(), any::<usize>(), qty())
            .prop_map(|(side, pick, qty)| Op::Existing { side, pick, qty }),
        8 => side().prop_map(Op::RemoveBest),
        6 => (-40..=40i64).prop_map(Op::Drift),
        2 => prop_oneof![-1_000_000..-300i64, 300..1_000_000i64].prop_map(Op::Jump),
        1 => Just(Op::Clear),
    ]
}

fn assert_same_top(ladder: &Ladder, model: &Model) -> Result<(), TestCaseError> {
    for s in [Side::Bid, Side::Ask] {
        prop_assert_eq!(ladder.best(s), model.best(s), "best of {:?}", s);
        prop_assert_eq!(ladder.len(s), model.side(s).len(), "len of {:?}", s);
    }
    prop_assert_eq!(ladder.best_bid(), model.best(Side::Bid));
    prop_assert_eq!(ladder.best_ask(), model.best(Side::Ask));
    prop_assert_eq!(ladder.is_empty(), model.bids.is_empty() && model.asks.is_empty());
    Ok(())
}

fn assert_same_levels(ladder: &Ladder, model: &Model) -> Result<(), TestCaseError> {
    for s in [Side::Bid, Side::Ask] {
        prop_assert_eq!(ladder.levels(s), model.levels(s), "levels of {:?}", s);
        for (&tick, &qty) in model.side(s) {
            prop_assert_eq!(ladder.qty(s, tick), qty);
        }
    }
    Ok(())
}

/// Window 256 ticks, overflow big enough that nothing is ever evicted: the ladder must equal the
/// reference exactly.
fn run_exact(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut ladder = Ladder::new(LadderConfig { window_ticks: 256, overflow_cap: 1 << 16 });
    let mut model = Model::default();
    let mut market = MID;
    for (i, op) in ops.iter().enumerate() {
        let a = action(op, &mut market, &model);
        apply(a, &mut ladder, &mut model);
        if let Action::Set(side, tick, qty) = a {
            prop_assert_eq!(ladder.qty(side, tick), qty);
        }
        assert_same_top(&ladder, &model)?;
        prop_assert_eq!(ladder.check_invariants(), Ok(()));
        if i % 8 == 7 {
            assert_same_levels(&ladder, &model)?;
        }
    }
    assert_same_levels(&ladder, &model)?;
    prop_assert_eq!(ladder.stats().evicted, 0);
    Ok(())
}

/// The ladder's levels of one side as a map.
fn snapshot(ladder: &Ladder, side: Side) -> Book {
    let mut b = Book::new();
    ladder.for_each_level(side, |l| {
        b.insert(l.tick, l.qty);
    });
    b
}

/// Window 64 ticks and an overflow of 4 levels per side, so far levels are evicted all the time.
/// Each operation must act like the reference on the levels the ladder kept, except for dropped
/// levels, which must be counted and farther from the touch than every level that stayed; the best
/// must never be dropped; the kept levels must be a subset of the full reference.
fn run_evicting(ops: &[Op]) -> Result<(), TestCaseError> {
    const WINDOW: usize = 64;
    const CAP: usize = 4;
    let mut ladder = Ladder::new(LadderConfig { window_ticks: WINDOW, overflow_cap: CAP });
    // The reference for what the ladder kept, and the full reference without evictions.
    let mut kept = Model::default();
    let mut truth = Model::default();
    let mut market = MID;
    for op in ops {
        let evicted_before = ladder.stats().evicted;
        let a = action(op, &mut market, &kept);
        apply(a, &mut ladder, &mut kept);
        match a {
            Action::Set(side, tick, qty) => truth.set(side, tick, qty),
            Action::Clear => truth = Model::default(),
            Action::Nothing => {}
        }
        prop_assert_eq!(ladder.check_invariants(), Ok(()));
        let mut dropped = 0u64;
        for s in [Side::Bid, Side::Ask] {
            let after = snapshot(&ladder, s);
            for (tick, qty) in &after {
                prop_assert_eq!(kept.side(s).get(tick), Some(qty), "{:?} {} changed", s, tick);
                prop_assert_eq!(truth.side(s).get(tick), Some(qty), "{:?} {} not real", s, tick);
            }
            let gone: Vec<i64> = kept.side(s).keys().filter(|t| !after.contains_key(t)).copied().collect();
            if let (Some(&lo), Some(&hi)) = (after.keys().next(), after.keys().next_back()) {
                for &t in &gone {
                    match s {
                        Side::Bid => prop_assert!(t < lo, "dropped bid {} above kept {}", t, lo),
                        Side::Ask => prop_assert!(t > hi, "dropped ask {} below kept {}", t, hi),
                    }
                }
            }
            prop_assert_eq!(ladder.best(s), kept.best(s), "the best of {:?} was dropped", s);
            prop_assert!(after.len() <= WINDOW + CAP);
            dropped += gone.len() as u64;
            *kept.side_mut(s) = after;
        }
        prop_assert_eq!(ladder.stats().evicted - evicted_before, dropped);
        assert_same_top(&ladder, &kept)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ladder_equals_btreemap_model(ops in prop::collection::vec(op(), 1..400)) {
        run_exact(&ops)?;
    }

    #[test]
    fn tiny_overflow_evicts_only_the_farthest(ops in prop::collection::vec(op(), 1..300)) {
        run_evicting(&ops)?;
    }
}

/// The proptest workloads must actually reach the overflow, recentre and evict; this runs a fixed
/// long sequence through both checkers and looks at the counters.
#[test]
fn workload_exercises_overflow_recentre_and_eviction() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let ops: Vec<Op> = (0..3000).map(|_| rng.op()).collect();
    run_exact(&ops).unwrap();
    run_evicting(&ops).unwrap();
    let mut exact = Ladder::new(LadderConfig { window_ticks: 256, overflow_cap: 1 << 16 });
    let mut tiny = Ladder::new(LadderConfig { window_ticks: 64, overflow_cap: 4 });
    let (mut m1, mut m2) = (Model::default(), Model::default());
    let (mut k1, mut k2) = (MID, MID);
    let mut max_overflowed = 0;
    for op in &ops {
        let a = action(op, &mut k1, &m1);
        apply(a, &mut exact, &mut m1);
        let a = action(op, &mut k2, &m2);
        apply(a, &mut tiny, &mut m2);
        m2 = Model { bids: snapshot(&tiny, Side::Bid), asks: snapshot(&tiny, Side::Ask) };
        // Bids 256 or more ticks below the best cannot be in a 256-tick window.
        if let Some(b) = m1.best(Side::Bid) {
            let far = m1.bids.range(..=b.tick - 256).count();
            max_overflowed = max_overflowed.max(far);
        }
    }
    assert!(exact.stats().recentres > 50, "{:?}", exact.stats());
    assert!(max_overflowed > 10, "{max_overflowed}");
    assert!(tiny.stats().evicted > 50, "{:?}", tiny.stats());
}

/// A small deterministic generator for the non-proptest workloads.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo) as u64) as i64
    }
    fn side(&mut self) -> Side {
        if self.next() & 1 == 0 {
            Side::Bid
        } else {
            Side::Ask
        }
    }
    fn qty(&mut self) -> i64 {
        if self.next() % 4 == 0 {
            0
        } else {
            self.range(1, 1_000_000_000)
        }
    }
    fn op(&mut self) -> Op {
        match self.next() % 75 {
            0..40 => Op::Near { side: self.side(), dist: self.range(-20, 300), qty: self.qty() },
            40..48 => Op::Far { side: self.side(), delta: self.range(-1_000_000, 1_000_001), qty: self.qty() },
            48..58 => Op::Existing { side: self.side(), pick: self.next() as usize, qty: self.qty() },
            58..66 => Op::RemoveBest(self.side()),
            66..72 => Op::Drift(self.range(-40, 41)),
            72..74 => Op::Jump(self.range(300, 1_000_000) * if self.next() & 1 == 0 { 1 } else { -1 }),
            _ => Op::Clear,
        }
    }
}

// ---- no allocation after construction ----

#[global_allocator]
static A: util::alloc::Counting = util::alloc::Counting;

use util::alloc::allocations_in;

#[test]
fn counting_allocator_sees_allocations() {
    // Without this the no-allocation test below could pass with a broken counter.
    let (v, n) = allocations_in(|| Vec::<u64>::with_capacity(16));
    assert_eq!(n, 1);
    let ((), n) = allocations_in(|| drop(v));
    assert_eq!(n, 1);
}

#[test]
fn ladder_never_allocates_after_new() {
    let mut ladder = Ladder::new(LadderConfig::default());
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut market = MID;
    let mut total = 0u64;
    let mut checksum = 0i64;
    for round in 0..40 {
        // Operations are drawn outside the counted section; only ladder calls are counted.
        let ops: Vec<(u8, Side, i64, i64)> = (0..5_000)
            .map(|_| {
                let kind = (rng.next() % 100) as u8;
                let side = rng.side();
                let (d, q) = match kind {
                    // Far levels, to fill the 16,384-level overflow and force evictions.
                    0..45 => (rng.range(-1_000_000, 1_000_001), rng.range(1, 1_000_000)),
                    45..90 => (rng.range(-20, 500), rng.qty()),
                    90..96 => (rng.range(-40, 41), 0),
                    _ => (rng.range(-200_000, 200_001), 0),
                };
                (kind, side, d, q)
            })
            .collect();
        let ((), n) = allocations_in(|| {
            for &(kind, side, d, q) in &ops {
                match kind {
                    90..96 => market += d,
                    96..100 => market += d, // a jump by up to three windows
                    0..45 => ladder.set(side, market + d, q),
                    _ => {
                        let t = if side == Side::Bid { market - d } else { market + d };
                        ladder.set(side, t, q);
                    }
                }
                if let Some(b) = ladder.best(side) {
                    // Remove the best now and then, to walk the bitmaps and the overflow.
                    if kind % 7 == 0 {
                        ladder.set(side, b.tick, 0);
                    }
                    checksum ^= b.qty ^ ladder.qty(side, b.tick);
                }
                checksum ^= ladder.len(side) as i64;
            }
            ladder.for_each_level(Side::Bid, |l| checksum ^= l.qty);
            ladder.for_each_level(Side::Ask, |l| checksum ^= l.tick);
            checksum ^= ladder.stats().recentres as i64 ^ ladder.memory_bytes() as i64;
            if round == 29 {
                ladder.clear();
            }
        });
        total += n;
        ladder.check_invariants().unwrap();
    }
    let stats = ladder.stats();
    assert_eq!(total, 0, "the ladder allocated or freed {total} times");
    assert!(stats.evicted > 0 && stats.recentres > 0, "{stats:?} {checksum}");
}
