//! Criterion bench of the array ladder against a `BTreeMap` book (the placeholder it replaced).
//!
//! Both books replay the same precomputed stream of "messages", 9 level updates each (the size of
//! a typical BTCUSDT depth diff), and read the best bid and ask after each message, as the pipeline
//! does. The books start with 1,000 levels a side around 61,837.63 (tick 0.01) and stay in a steady
//! state: updates land within 100 ticks of the touch (most near it), one in five removes a level,
//! and each message lists its bid updates before its ask updates, as Binance's do. A second pair
//! also sends one update in ten to a fixed pool of far levels 1% to 10% away, which the ladder keeps
//! in its overflow. It does not measure decoding, nor the cold cases (recentres, snapshot loads).
//!
//! Run: `cargo bench --bench ladder -- --warm-up-time 1 --measurement-time 3`. On a shared 2-core VM
//! the numbers move by tens of percent between runs; compare within one run.

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::BTreeMap;
use std::hint::black_box;
use tickfeed::book::{Ladder, LadderConfig, Level, Side};

const MID: i64 = 6_183_763;
const MESSAGES: usize = 4096;
const PER_MESSAGE: usize = 9;

/// One update: side, tick, quantity (0 removes).
type Update = (Side, i64, i64);

/// The book the ladder replaced: one ordered map per side.
#[derive(Default)]
struct MapBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

impl MapBook {
    #[inline]
    fn set(&mut self, side: Side, tick: i64, qty: i64) {
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
    #[inline]
    fn best_bid(&self) -> Option<Level> {
        self.bids.last_key_value().map(|(&tick, &qty)| Level { tick, qty })
    }
    #[inline]
    fn best_ask(&self) -> Option<Level> {
        self.asks.first_key_value().map(|(&tick, &qty)| Level { tick, qty })
    }
}

/// A small deterministic generator, so every run replays the same stream.
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
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn tick_at(side: Side, dist: i64) -> i64 {
    match side {
        Side::Bid => MID - dist,
        Side::Ask => MID + 1 + dist,
    }
}

/// The initial book: 1,000 levels a side over the first ~1,250 ticks from the touch.
fn initial(rng: &mut XorShift) -> Vec<Update> {
    let mut v = Vec::new();
    for side in [Side::Bid, Side::Ask] {
        let mut dist = 0;
        for _ in 0..1000 {
            v.push((side, tick_at(side, dist), 1 + rng.below(500_000_000)));
            dist += 1 + rng.below(2) * rng.below(2);
        }
    }
    v
}

/// The message stream; `far_pool` > 0 sends one update in ten to that many fixed far ticks a side.
/// Like a Binance diff, each message lists its bid updates first, then its ask updates.
fn messages(rng: &mut XorShift, far_pool: usize) -> Vec<[Update; PER_MESSAGE]> {
    let far: Vec<i64> = (0..far_pool).map(|_| 61_838 + rng.below(556_545)).collect();
    (0..MESSAGES)
        .map(|_| {
            let n_bids = rng.below(PER_MESSAGE as u64 + 1) as usize;
            std::array::from_fn(|k| {
                let side = if k < n_bids { Side::Bid } else { Side::Ask };
                let qty = if rng.below(5) == 0 { 0 } else { 1 + rng.below(500_000_000) };
                if far_pool > 0 && rng.below(10) == 0 {
                    let d = far[rng.below(far_pool as u64) as usize];
                    return (side, tick_at(side, d), qty);
                }
                // Most updates are right at the touch.
                let dist = rng.below(100).min(rng.below(100));
                (side, tick_at(side, dist), qty)
            })
        })
        .collect()
}

fn bench_pair(c: &mut Criterion, name: &str, far_pool: usize) {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let init = initial(&mut rng);
    let msgs = messages(&mut rng, far_pool);

    let mut ladder = Ladder::new(LadderConfig::default());
    let mut map = MapBook::default();
    for &(s, t, q) in &init {
        ladder.set(s, t, q);
        map.set(s, t, q);
    }
    // One pass to reach the steady state, and a check that both books agree.
    for m in &msgs {
        for &(s, t, q) in m {
            ladder.set(s, t, q);
            map.set(s, t, q);
        }
    }
    assert_eq!(ladder.best_bid(), map.best_bid());
    assert_eq!(ladder.best_ask(), map.best_ask());
    assert_eq!(ladder.len(Side::Bid), map.bids.len());
    assert_eq!(ladder.len(Side::Ask), map.asks.len());

    let mut g = c.benchmark_group(name);
    let mut i = 0usize;
    g.bench_function("ladder", |b| {
        b.iter(|| {
            let m = &msgs[i % MESSAGES];
            i += 1;
            for &(s, t, q) in m {
                ladder.set(s, t, q);
            }
            black_box((ladder.best_bid(), ladder.best_ask()))
        })
    });
    let mut i = 0usize;
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let m = &msgs[i % MESSAGES];
            i += 1;
            for &(s, t, q) in m {
                map.set(s, t, q);
            }
            black_box((map.best_bid(), map.best_ask()))
        })
    });
    g.finish();
    // Print the state so a reader can see what was measured.
    let st = ladder.stats();
    eprintln!(
        "{name}: {} bid / {} ask levels, {} recentres, {} evicted, {} bytes",
        ladder.len(Side::Bid),
        ladder.len(Side::Ask),
        st.recentres,
        st.evicted,
        ladder.memory_bytes()
    );
}

fn benches(c: &mut Criterion) {
    bench_pair(c, "9_updates_near_touch", 0);
    bench_pair(c, "9_updates_10pct_far", 2000);
}

criterion_group!(ladder_benches, benches);
criterion_main!(ladder_benches);
