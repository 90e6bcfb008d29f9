//! The sync engine (`OrderBook`) against a simple model of the exchange, shared by the proptest
//! test (`tests/sync_prop.rs`) and the cargo-fuzz target (`fuzz/fuzz_targets/sync.rs`), so the two
//! check one property.
//!
//! The model is a `BTreeMap<price, qty>` per side that moves through numbered updates, each
//! sent as a diff `U..=u` (one or a few updates per diff). The engine is fed those diffs
//! with faults: some dropped (a gap), some delivered twice, a few out of order. Full-depth
//! snapshots of the model are taken at random moments. [`run`] checks:
//!
//! - whenever the engine says synced, its book equals the model's book at the engine's update id,
//!   level for level;
//! - the engine's update id never goes back while synced, and only ever lands on an id the
//!   exchange published (it never applies out of order);
//! - it recovers: after the faults stop, one more snapshot leaves it synced at the model's id.

use std::collections::BTreeMap;

use tickfeed::binance::RawLevel;
use tickfeed::book::fixed::TickSize;
use tickfeed::book::{BookConfig, OrderBook, Side};

/// One tick is 1e-2 in 1e-8 units.
const TICK: i64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
pub enum Step {
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
fn check(b: &OrderBook, m: &Model, last: &mut u64) -> Result<(), String> {
    if !b.is_synced() {
        return Ok(());
    }
    let id = b.last_update_id();
    if id < *last {
        return Err(format!("went back from {} to {}", *last, id));
    }
    *last = id;
    let Some((bids, asks)) = m.history.get(&id) else {
        return Err(format!("synced at {id}, an id the exchange never published"));
    };
    let (got_bids, got_asks) = (book_side(b, Side::Bid), book_side(b, Side::Ask));
    if &got_bids != bids || &got_asks != asks {
        return Err(format!(
            "synced at {id} but the book differs: bids {got_bids:?} vs {bids:?}, asks {got_asks:?} vs {asks:?}"
        ));
    }
    Ok(())
}

fn deliver(b: &mut OrderBook, d: &Diff) {
    let _ = b.on_diff(d.0, d.1, &raw(&d.2), &raw(&d.3));
}

/// Plays `steps` against a fresh engine and model; `Err` says which property broke.
pub fn run(steps: &[Step]) -> Result<(), String> {
    let mut m = Model::new();
    let mut b = OrderBook::new(BookConfig::default(), TickSize::new(TICK));
    let (mut last, mut dropping, mut swapping) = (0u64, false, false);
    let mut prev: Option<Diff> = None;
    let mut held: Option<Diff> = None;
    let mut pending: Vec<(u8, Snap)> = Vec::new();
    for &s in steps {
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
    if !b.is_synced() {
        return Err(format!("not synced after a clean snapshot: {:?}", b.state()));
    }
    if b.last_update_id() != m.id {
        return Err(format!("synced at {} after a clean snapshot, the exchange is at {}", b.last_update_id(), m.id));
    }
    check(&b, &m, &mut last)?;
    Ok(())
}

/// Steps from raw bytes, for the fuzzer: each step takes one byte for its kind, and a move two
/// more for its seed. Weights follow the proptest strategy (moves 8, snapshots 2, each fault 1).
pub fn steps_from_bytes(data: &[u8]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(data.len());
    let mut it = data.iter().copied();
    while let Some(b) = it.next() {
        let s = match b % 13 {
            0..=7 => {
                let seed = u64::from(it.next().unwrap_or(0)) << 8 | u64::from(it.next().unwrap_or(0));
                Step::Move { n: 1 + b / 13 % 3, seed: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) }
            }
            8 => Step::Drop,
            9 => Step::Repeat,
            10 => Step::Swap,
            _ => Step::Snapshot { delay: b / 13 % 4 },
        };
        steps.push(s);
        if steps.len() == 4096 {
            break;
        }
    }
    steps
}
