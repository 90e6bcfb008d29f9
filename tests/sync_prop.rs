//! Property test of the sync engine (`OrderBook`) against a simple model of the exchange.
//!
//! The model is a `BTreeMap<price, qty>` per side that moves through numbered updates, each
//! sent as a diff `U..=u` (one or a few updates per diff). The engine is fed those diffs
//! with faults: some dropped (a gap), some delivered twice, a few out of order. Full-depth
//! snapshots of the model are taken at random moments. The properties:
//!
//! - Whenever the engine says synced, its book equals the model's book at the engine's update id,
//!   level for level.
//! - The engine's update id never goes back while synced, and only ever lands on an id the
//!   exchange published.
//! - It recovers: after the faults stop, one more snapshot leaves it synced at the model's id.
//!
//! The same property in fuzzing form is issue 10's sync-engine target; this one runs in the
//! normal suite.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tickfeed::binance::RawLevel;
use tickfeed::book::fixed::TickSize;
use tickfeed::book::{BookConfig, OrderBook, Side};

/// One tick is 1e-2 in 1e-8 units.
const TICK: i64 = 1_000_000;

#[derive(Debug, Clone)]
enum Step {
    /// The exchange makes `n` updates (1..4), each setting or removing one level.
    Move { n: u8, seed: u64 },
    /// The next diff is lost on the way.
    Drop,
    /// The last diff delivered arrives again.
    Repeat,
    /// The next two diffs arrive swapped.
    Swap,
    /// A snapshot of the model is fetched now and delivered after `delay` more diffs.
    Snapshot { delay: u8 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1u8..4, any::<u64>()).prop_map(|(n, seed)| Step::Move { n, seed }),
        1 => Just(Step::Drop),
        1 => Just(Step::Repeat),
        1 => Just(Step::Swap),
        2 => (0u8..4).prop_map(|delay| Step::Snapshot { delay }),
    ]
}

#[derive(Clone, Default)]
struct Model {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    id: u64,
    /// Every published state, by update id.
    history: BTreeMap<u64, (Levels, Levels)>,
}

/// A diff as sent: `U`, `u`, bid and ask levels (price in ticks, qty; 0 removes).
type Diff = (u64, u64, Vec<(i64, i64)>, Vec<(i64, i64)>);

/// One side of a book: price in ticks to quantity.
type Levels = BTreeMap<i64, i64>;

/// A snapshot as fetched: `lastUpdateId`, bids, asks.
type Snap = (u64, Vec<RawLevel>, Vec<RawLevel>);

impl Model {
    fn new() -> Model {
        let mut m = Model { id: 100, ..Model::default() };
        for i in 0..10 {
            m.bids.insert(1000 - i, 5);
            m.asks.insert(1001 + i, 5);
        }
        m.history.insert(m.id, (m.bids.clone(), m.asks.clone()));
        m
    }

    /// `n` updates as one diff. Bids stay below 1000.5 and asks above, so the book never
    /// crosses, and every level stays inside the range a full snapshot covers.
    fn advance(&mut self, n: u8, seed: u64) -> Diff {
        let first = self.id + 1;
        let (mut b, mut a) = (Vec::new(), Vec::new());
        let mut r = seed;
        for _ in 0..n {
            r = r.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let bid = r >> 63 == 0;
            let off = ((r >> 40) % 12) as i64;
            let qty = ((r >> 20) % 4) as i64; // 0 removes
            let (book, out, price) =
                if bid { (&mut self.bids, &mut b, 1000 - off) } else { (&mut self.asks, &mut a, 1001 + off) };
            if qty == 0 {
                book.remove(&price);
            } else {
                book.insert(price, qty);
            }
            out.push((price, qty));
            self.id += 1;
        }
        self.history.insert(self.id, (self.bids.clone(), self.asks.clone()));
        (first, self.id, b, a)
    }
}

fn raw(levels: &[(i64, i64)]) -> Vec<RawLevel> {
    levels.iter().map(|&(p, q)| RawLevel { price: p * TICK, qty: q }).collect()
}

/// A full snapshot of the model, in Binance's order (bids best first, asks best first).
fn snapshot(m: &Model) -> Snap {
    let bids: Vec<(i64, i64)> = m.bids.iter().rev().map(|(&p, &q)| (p, q)).collect();
    let asks: Vec<(i64, i64)> = m.asks.iter().map(|(&p, &q)| (p, q)).collect();
    (m.id, raw(&bids), raw(&asks))
}

fn book_side(b: &OrderBook, side: Side) -> BTreeMap<i64, i64> {
    b.ladder().levels(side).into_iter().map(|l| (l.tick, l.qty)).collect()
}

/// The engine, if synced, equals the model at its id.
fn check(b: &OrderBook, m: &Model, last: &mut u64) -> Result<(), TestCaseError> {
    if !b.is_synced() {
        return Ok(());
    }
    let id = b.last_update_id();
    prop_assert!(id >= *last, "went back from {} to {}", *last, id);
    *last = id;
    let Some((bids, asks)) = m.history.get(&id) else {
        return Err(TestCaseError::fail(format!("synced at {id}, an id the exchange never published")));
    };
    prop_assert_eq!(&book_side(b, Side::Bid), bids, "bids at {}", id);
    prop_assert_eq!(&book_side(b, Side::Ask), asks, "asks at {}", id);
    Ok(())
}

fn deliver(b: &mut OrderBook, d: &Diff) {
    let _ = b.on_diff(d.0, d.1, &raw(&d.2), &raw(&d.3));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_synced_book_always_equals_the_exchange(steps in prop::collection::vec(step(), 1..120)) {
        let mut m = Model::new();
        let mut b = OrderBook::new(BookConfig::default(), TickSize::new(TICK));
        let (mut last, mut dropping, mut swapping) = (0u64, false, false);
        let mut prev: Option<Diff> = None;
        let mut held: Option<Diff> = None;
        let mut pending: Vec<(u8, Snap)> = Vec::new();
        for s in steps {
            match s {
                Step::Move { n, seed } => {
                    let d = m.advance(n, seed);
                    if dropping {
                        dropping = false;
                    } else if swapping {
                        swapping = false;
                        held = Some(d);
                        continue;
                    } else {
                        deliver(&mut b, &d);
                        if let Some(h) = held.take() {
                            deliver(&mut b, &h);
                        }
                        prev = Some(d);
                    }
                    // Snapshots due after this many diffs arrive now.
                    for p in &mut pending {
                        p.0 = p.0.saturating_sub(1);
                    }
                    while let Some(i) = pending.iter().position(|p| p.0 == 0) {
                        let (_, (id, bids, asks)) = pending.remove(i);
                        let _ = b.poll_snapshot_request();
                        let _ = b.on_snapshot(id, &bids, &asks);
                        check(&b, &m, &mut last)?;
                    }
                }
                Step::Drop => dropping = true,
                Step::Swap => swapping = true,
                Step::Repeat => {
                    if let Some(d) = &prev {
                        deliver(&mut b, d);
                    }
                }
                Step::Snapshot { delay } => pending.push((delay, snapshot(&m))),
            }
            check(&b, &m, &mut last)?;
        }
        // Faults over: whatever state it is in, diffs and one fresh snapshot bring it back.
        if let Some(h) = held.take() {
            deliver(&mut b, &h);
        }
        let d = m.advance(1, 7);
        deliver(&mut b, &d);
        let (id, bids, asks) = snapshot(&m);
        let _ = b.poll_snapshot_request();
        let _ = b.on_snapshot(id, &bids, &asks);
        let d = m.advance(1, 9);
        deliver(&mut b, &d);
        prop_assert!(b.is_synced(), "not synced after a clean snapshot: {:?}", b.state());
        prop_assert_eq!(b.last_update_id(), m.id);
        check(&b, &m, &mut last)?;
    }
}
