//! The sync engine (`OrderBook`) against a simple model of the exchange, for either procedure
//! (spot, or USDⓈ-M futures with its skipping ids and `pu`), shared by the proptest test
//! (`tests/sync_prop.rs`) and the cargo-fuzz target (`fuzz/fuzz_targets/sync.rs`), so the two
//! check one property.
//!
//! The model is a `BTreeMap<price, qty>` per side that moves through numbered updates, each
//! sent as a diff `U..=u` (one or a few updates per diff). On futures, ids are also skipped
//! between diffs (updates the stream never shows) and each diff names the previous one's `u` as
//! `pu`. The engine is fed those diffs with faults: some dropped (a gap), some delivered twice, a
//! few out of order. Snapshots of the model are taken at random moments, some at an id inside a
//! diff (taken while the exchange was gathering it). [`run`] checks:
//!
//! - whenever the engine says synced, its book equals the model's book at the engine's update id,
//!   level for level;
//! - the engine's update id never goes back while synced, and only ever lands on an id the
//!   exchange published (a diff's `u` or a snapshot's `lastUpdateId`: it never applies out of
//!   order);
//! - it recovers: after the faults stop, one more snapshot leaves it synced at the model's id.

// The fuzz target uses `run` alone; the proptest test every entry point.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use tickfeed::binance::RawLevel;
use tickfeed::book::fixed::TickSize;
use tickfeed::book::{BookConfig, OrderBook, Procedure, Side};

/// One tick is 1e-2 in 1e-8 units.
const TICK: i64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// The exchange makes `n` updates (1..4), each setting or removing one level, after `skip`
    /// ids it does not show (futures only: spot's ids are contiguous, and it ignores `skip`).
    Move { n: u8, seed: u64, skip: u8 },
    /// The next diff is lost on the way.
    Drop,
    /// The last diff delivered arrives again.
    Repeat,
    /// The next two diffs arrive swapped.
    Swap,
    /// A snapshot of the model is fetched now and delivered after `delay` more diffs.
    Snapshot { delay: u8 },
    /// A snapshot is taken while the next diff is gathered, at its `at`-th id (modulo its
    /// length), and delivered after `delay` more diffs (at least one).
    SnapshotInside { at: u8, delay: u8 },
}

#[derive(Clone, Default)]
struct Model {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    id: u64,
    /// `u` of the last diff made (the next one's `pu`).
    last_u: u64,
    /// Every state, by update id (each update's).
    history: BTreeMap<u64, (Levels, Levels)>,
    /// The ids the exchange published: each diff's `u` and each snapshot's `lastUpdateId`.
    published: BTreeSet<u64>,
}

/// A diff as sent: `U`, `u`, `pu`, bid and ask levels (price in ticks, qty; 0 removes).
type Diff = (u64, u64, u64, Vec<(i64, i64)>, Vec<(i64, i64)>);

/// One side of a book: price in ticks to quantity.
type Levels = BTreeMap<i64, i64>;

/// A snapshot as fetched: `lastUpdateId`, bids, asks.
type Snap = (u64, Vec<RawLevel>, Vec<RawLevel>);

impl Model {
    fn new() -> Model {
        let mut m = Model { id: 100, last_u: 100, ..Model::default() };
        for i in 0..10 {
            m.bids.insert(1000 - i, 5);
            m.asks.insert(1001 + i, 5);
        }
        m.history.insert(m.id, (m.bids.clone(), m.asks.clone()));
        m.published.insert(m.id);
        m
    }

    /// `skip` unseen ids, then `n` updates as one diff (the last quantity of each price changed).
    /// Bids stay below 1000.5 and asks above, so the book never crosses, and every level stays
    /// inside the range a full snapshot covers.
    fn advance(&mut self, skip: u64, n: u8, seed: u64) -> Diff {
        self.id += skip;
        let first = self.id + 1;
        let (mut b, mut a) = (BTreeMap::new(), BTreeMap::new());
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
            out.insert(price, qty);
            self.id += 1;
            self.history.insert(self.id, (self.bids.clone(), self.asks.clone()));
        }
        self.published.insert(self.id);
        let pu = std::mem::replace(&mut self.last_u, self.id);
        // Bids best first, asks best first, as Binance sends them.
        (first, self.id, pu, b.into_iter().rev().collect(), a.into_iter().collect())
    }

    /// A full snapshot of the model at `at` (a state it has been in), in Binance's order.
    fn snapshot_at(&mut self, at: u64) -> Snap {
        self.published.insert(at);
        let (b, a) = &self.history[&at];
        let bids: Vec<(i64, i64)> = b.iter().rev().map(|(&p, &q)| (p, q)).collect();
        let asks: Vec<(i64, i64)> = a.iter().map(|(&p, &q)| (p, q)).collect();
        (at, raw(&bids), raw(&asks))
    }
}

fn raw(levels: &[(i64, i64)]) -> Vec<RawLevel> {
    levels.iter().map(|&(p, q)| RawLevel { price: p * TICK, qty: q }).collect()
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
    let (Some((bids, asks)), true) = (m.history.get(&id), m.published.contains(&id)) else {
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

/// Feeds a diff the way the procedure's stream carries it: spot's without `pu`. `corrupt`: the
/// diff is damaged on the way (its first level's quantity one more than the exchange's).
fn deliver_as(b: &mut OrderBook, d: &Diff, corrupt: bool) {
    let mut d = d.clone();
    if corrupt {
        if let Some(l) = d.3.first_mut().or(d.4.first_mut()) {
            l.1 += 1;
        }
    }
    let _ = match b.procedure() {
        Procedure::Spot => b.on_diff(d.0, d.1, &raw(&d.3), &raw(&d.4)),
        Procedure::UsdM => b.on_futures_diff(d.0, d.1, d.2, &raw(&d.3), &raw(&d.4)),
    };
}

/// Plays `steps` against a fresh engine following `procedure` and a fresh model; `Err` says
/// which property broke.
pub fn run(procedure: Procedure, steps: &[Step]) -> Result<(), String> {
    play(procedure, steps, None)
}

/// [`run`] with the `n`-th diff delivered damaged: what the checks must catch (a test of the
/// model itself: a driver that cannot fail proves nothing).
pub fn run_corrupting(procedure: Procedure, steps: &[Step], n: usize) -> Result<(), String> {
    play(procedure, steps, Some(n))
}

fn play(procedure: Procedure, steps: &[Step], corrupt_at: Option<usize>) -> Result<(), String> {
    let futures = procedure == Procedure::UsdM;
    let mut delivered = 0usize;
    let mut deliver = |b: &mut OrderBook, d: &Diff| {
        deliver_as(b, d, corrupt_at == Some(delivered));
        delivered += 1;
    };
    let mut m = Model::new();
    let mut b = OrderBook::new(BookConfig { procedure, ..BookConfig::default() }, TickSize::new(TICK));
    let (mut last, mut dropping, mut swapping) = (0u64, false, false);
    let mut prev: Option<Diff> = None;
    let mut held: Option<Diff> = None;
    let mut pending: Vec<(u8, Snap)> = Vec::new();
    let mut inside: Option<(u8, u8)> = None;
    for &s in steps {
        match s {
            Step::Move { n, seed, skip } => {
                let skip = if futures { u64::from(skip % 4) } else { 0 };
                let d = m.advance(skip, n, seed);
                if let Some((at, delay)) = inside.take() {
                    let id = d.0 + u64::from(at) % (d.1 - d.0 + 1);
                    pending.push((delay.max(1), m.snapshot_at(id)));
                }
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
            Step::Snapshot { delay } => {
                let snap = m.snapshot_at(m.id);
                pending.push((delay, snap));
            }
            Step::SnapshotInside { at, delay } => inside = Some((at, delay)),
        }
        check(&b, &m, &mut last)?;
    }
    // Faults over: whatever state it is in, diffs and one fresh snapshot bring it back (on
    // futures the snapshot is taken inside the diff before the last, as futures' first-event
    // rule `U <= lastUpdateId <= u` expects of a busy stream).
    if let Some(h) = held.take() {
        deliver(&mut b, &h);
    }
    let d = m.advance(u64::from(futures), 1, 7);
    deliver(&mut b, &d);
    let (id, bids, asks) = if futures {
        let d = m.advance(2, 3, 5);
        deliver(&mut b, &d);
        m.snapshot_at(d.0 + 1)
    } else {
        m.snapshot_at(m.id)
    };
    let _ = b.poll_snapshot_request();
    let _ = b.on_snapshot(id, &bids, &asks);
    let d = m.advance(if futures { 3 } else { 0 }, 1, 9);
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
/// more for its seed (whose bits also give its skipped ids). Weights follow the proptest strategy
/// (moves 8, snapshots 2, each fault 1). Inputs decode as they did before futures (a move's
/// skip is unused on spot), so the corpus found before keeps its meaning.
pub fn steps_from_bytes(data: &[u8]) -> Vec<Step> {
    let mut steps = Vec::with_capacity(data.len());
    let mut it = data.iter().copied();
    while let Some(b) = it.next() {
        let s = match b % 13 {
            0..=7 => {
                let (hi, lo) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
                let seed = u64::from(hi) << 8 | u64::from(lo);
                Step::Move { n: 1 + b / 13 % 3, seed: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), skip: lo >> 6 }
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

/// [`steps_from_bytes`] for the futures run: the same steps, with every second snapshot byte
/// (by its bucket) taken inside the next diff instead.
pub fn futures_steps_from_bytes(data: &[u8]) -> Vec<Step> {
    steps_from_bytes(data)
        .into_iter()
        .enumerate()
        .map(|(i, s)| match s {
            Step::Snapshot { delay } if i % 2 == 1 => Step::SnapshotInside { at: (i / 2) as u8, delay },
            s => s,
        })
        .collect()
}
