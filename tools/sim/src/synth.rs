//! The synthetic market: a seeded, deterministic order book per symbol that moves like a liquid
//! Binance spot pair and emits Binance-shaped diffs, trades, aggTrades and bookTickers.
//!
//! Sans-IO: `step` turns "100 ms of simulated time starting at t" into timed events; it reads no
//! clock and touches no socket, so the same seed always yields the same market. It is not a
//! matching engine: orders are levels, trades are takers eating the touch, and the random walk is
//! a bias on which side improves and which side gets eaten. What it guarantees is consistency:
//! every internal book change has one update id, each 100 ms diff carries the final quantity of
//! every level changed in its id range, a trade reduces exactly the level it prints at, and a
//! bookTicker's `u` is the id of the state it shows.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::book::{push_levels, push_levels_dp, Diff, Level, LiveBook};
use crate::decimal::{push_units, push_units_dp};
use crate::event::{Fields, MarketEvent, Payload, StreamId, StreamKind};
use crate::rng::Rng;
use crate::symbols::SymbolSpec;

/// Stream ids of one synthetic symbol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SynthStreams {
    pub depth: StreamId,
    pub depth100: StreamId,
    pub trade: StreamId,
    pub agg_trade: StreamId,
    pub book_ticker: StreamId,
    /// USDⓈ-M futures' `@depth@500ms` (futures markets only).
    pub depth500: Option<StreamId>,
}

/// An event with the simulated time (ns from market start) it is due at.
#[derive(Debug, Clone)]
pub(crate) struct Timed {
    pub at_ns: u64,
    pub event: MarketEvent,
}

const BID: u8 = 0;
const ASK: u8 = 1;
/// Trade time precedes event time by this much, as on Binance (T is about 1 ms before E).
const TRADE_LAG_US: i64 = 1_000;
/// A side never shrinks below this many levels through cancels or sweeps.
const MIN_LEVELS: usize = 50;

/// One symbol's generator.
#[derive(Debug)]
pub(crate) struct Synth {
    spec: SymbolSpec,
    sym_index: usize,
    streams: SynthStreams,
    rng: Rng,
    book: LiveBook,
    next_id: u64,
    next_trade: u64,
    next_agg: u64,
    target_mid: i64,
    walk_ticks: i64,
    max_ticks: i64,
    target_levels: usize,
    steps: u64,
    /// Levels changed in the current 100 ms step: (side, price) -> final qty.
    changes: BTreeMap<(u8, i64), i64>,
    /// Levels changed since the last 1000 ms `@depth` diff, and its first id.
    acc: BTreeMap<(u8, i64), i64>,
    acc_first: Option<u64>,
    last_top: (Option<Level>, Option<Level>),
    /// Mean internal updates per 100 ms step, in thousandths; `None`: a liquid market (20 to 60
    /// updates every step, never a step without one).
    activity_milli: Option<u32>,
    /// A USDⓈ-M futures contract (`spec.futures`): ids skip (each update takes 1 to 3 ids), diffs
    /// carry `T` and `pu`, `@depth` is the 250 ms stream and `@depth@500ms` exists, and payloads
    /// write the contract's precisions.
    futures: bool,
    /// Futures: the `u` of the last diff on `@depth@100ms`, `@depth` and `@depth@500ms` (each
    /// stream's `pu` chain is its own).
    prev_u: [u64; 3],
    /// Futures: levels changed since the last `@depth@500ms` diff, and its first id.
    acc500: BTreeMap<(u8, i64), i64>,
    acc500_first: Option<u64>,
}

impl Synth {
    /// A market for `spec` whose whole history is fixed by `seed` (mixed with the symbol, so two
    /// symbols under one seed differ). `levels_per_side` is capped by what fits in 10% of the
    /// price at the symbol's tick.
    pub fn new(spec: SymbolSpec, sym_index: usize, streams: SynthStreams, seed: u64, levels_per_side: usize) -> Synth {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in spec.symbol.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut rng = Rng::new(seed ^ h);
        let tick = spec.tick.max(1);
        let mid = (spec.start_mid / tick).max(1000) * tick;
        let max_ticks = (mid / 10 / tick).max(100);
        let target_levels = levels_per_side.clamp(MIN_LEVELS * 2, (max_ticks as usize * 6 / 10).max(MIN_LEVELS * 2));
        let next_id = 50_000_000_000 + rng.below(1_000_000_000);
        let mut s = Synth {
            walk_ticks: (mid / tick / 300_000).max(1),
            next_trade: 3_700_000_000 + rng.below(100_000_000),
            next_agg: 3_000_000_000 + rng.below(100_000_000),
            spec,
            sym_index,
            streams,
            rng,
            book: LiveBook { last_update_id: next_id - 1, ..LiveBook::default() },
            next_id,
            target_mid: mid,
            max_ticks,
            target_levels,
            steps: 0,
            changes: BTreeMap::new(),
            acc: BTreeMap::new(),
            acc_first: None,
            last_top: (None, None),
            activity_milli: None,
            futures: false,
            prev_u: [next_id - 1; 3],
            acc500: BTreeMap::new(),
            acc500_first: None,
        };
        s.futures = s.spec.futures.is_some();
        let (qb, qa) = (s.rand_qty(), s.rand_qty());
        s.book.bids.insert(mid, qb);
        s.book.asks.insert(mid + tick, qa);
        let mut attempts = 0;
        while (s.book.bids.len() < target_levels || s.book.asks.len() < target_levels) && attempts < target_levels * 200
        {
            attempts += 1;
            let dist = s.log_dist();
            let q = s.rand_qty();
            if s.book.bids.len() < target_levels && mid - dist * tick > 0 {
                s.book.bids.insert(mid - dist * tick, q);
            }
            let q = s.rand_qty();
            if s.book.asks.len() < target_levels {
                s.book.asks.insert(mid + tick + dist * tick, q);
            }
        }
        s.last_top = s.book.top();
        s
    }

    /// This market with `milli` / 1000 internal updates per 100 ms step on average: a quiet
    /// market, where steps without any update publish no diff, as Binance sends a
    /// `@depth@100ms` event only when the book changed. 0: the market never moves.
    pub fn with_activity(mut self, milli: u32) -> Synth {
        self.activity_milli = Some(milli);
        self
    }

    /// How many internal updates this step makes.
    fn updates_this_step(&mut self) -> u64 {
        match self.activity_milli {
            None => self.rng.range_i64(20, 60) as u64,
            Some(0) => 0,
            // Below one a step: one update with that probability.
            Some(m) if m < 1000 => u64::from(self.rng.below(1000) < u64::from(m)),
            // Otherwise uniform around the mean, from half to one and a half times it.
            Some(m) => self.rng.range_i64(i64::from(m / 2000), i64::from(m * 3 / 2000)) as u64,
        }
    }

    /// The book before the first step; the reference book starts here.
    pub fn initial_book(&self) -> LiveBook {
        self.book.clone()
    }

    /// Generates `dt_ns` of market starting at `t0_ns` into `out`, in time order: trades,
    /// aggTrades and bookTickers as they happen, then the 100 ms diff at `t0 + dt`, and every
    /// tenth step the 1000 ms `@depth` diff right after it.
    pub fn step(&mut self, t0_ns: u64, dt_ns: u64, out: &mut Vec<Timed>) {
        let first = self.next_id;
        let n = self.updates_this_step();
        for i in 0..n {
            let at = t0_ns + (i + 1) * dt_ns / (n + 2);
            self.one_update(at, out);
        }
        if self.next_id == first && self.activity_milli.is_none() {
            // A liquid market's diff covers at least one id every step.
            let at = t0_ns + dt_ns * (n + 1) / (n + 2);
            self.near_add(at, out);
        }
        let walk = self.rng.range_i64(-self.walk_ticks, self.walk_ticks) * self.spec.tick;
        let lo = self.spec.start_mid - self.spec.start_mid / 5;
        let hi = self.spec.start_mid + self.spec.start_mid / 5;
        self.target_mid = (self.target_mid + walk).clamp(lo, hi);

        let changes = std::mem::take(&mut self.changes);
        let at = t0_ns + dt_ns;
        // A quiet step (no id) publishes nothing; zero quantities for absent far levels alone
        // are not a diff.
        if self.next_id > first {
            // The last id taken (futures ids skip, so not `next_id - 1` there).
            let last = self.book.last_update_id;
            let diff = Arc::new(diff_of(first, last, &changes));
            let payload = self.depth_payload_of(&diff, 0);
            out.push(Timed {
                at_ns: at,
                event: MarketEvent {
                    symbol: self.sym_index,
                    stream: self.streams.depth100,
                    kind: StreamKind::Depth,
                    payload,
                    fields: Fields::Depth(diff.clone()),
                    reference: Some(diff),
                },
            });
            self.acc_first.get_or_insert(first);
            if self.futures {
                self.acc500_first.get_or_insert(first);
                self.acc500.extend(changes.iter().map(|(k, v)| (*k, *v)));
            }
            self.acc.extend(changes);
        }
        self.steps += 1;
        // Spot's @depth is the 1000 ms stream; futures' the 250 ms one (every 200 and 300 ms in
        // turn, on the 100 ms steps), beside its @depth@500ms.
        let slow_due = if self.futures { matches!(self.steps % 5, 0 | 2) } else { self.steps % 10 == 0 };
        if slow_due {
            if let Some(first) = self.acc_first.take() {
                let acc = std::mem::take(&mut self.acc);
                let diff = Arc::new(diff_of(first, self.book.last_update_id, &acc));
                let payload = self.depth_payload_of(&diff, 1);
                out.push(Timed {
                    at_ns: at,
                    event: MarketEvent {
                        symbol: self.sym_index,
                        stream: self.streams.depth,
                        kind: StreamKind::Depth,
                        payload,
                        reference: None,
                        fields: Fields::Depth(diff),
                    },
                });
            }
        }
        if let (true, Some(stream)) = (self.futures && self.steps % 5 == 0, self.streams.depth500) {
            if let Some(first) = self.acc500_first.take() {
                let acc = std::mem::take(&mut self.acc500);
                let diff = Arc::new(diff_of(first, self.book.last_update_id, &acc));
                let payload = self.depth_payload_of(&diff, 2);
                out.push(Timed {
                    at_ns: at,
                    event: MarketEvent {
                        symbol: self.sym_index,
                        stream,
                        kind: StreamKind::Depth,
                        payload,
                        reference: None,
                        fields: Fields::Depth(diff),
                    },
                });
            }
        }
    }

    /// The payload of a diff on depth stream `chain` (0: 100 ms, 1: `@depth`, 2: 500 ms): spot's,
    /// or futures' with `T` and the stream's own `pu`.
    fn depth_payload_of(&mut self, diff: &Diff, chain: usize) -> Payload {
        if !self.futures {
            return depth_payload(&self.spec.symbol, diff);
        }
        let pu = std::mem::replace(&mut self.prev_u[chain], diff.last_id);
        let (pd, qd) = self.spec.decimals();
        futures_depth_payload(&self.spec.symbol, diff, pu, pd, qd)
    }

    fn one_update(&mut self, at: u64, out: &mut Vec<Timed>) {
        match self.rng.below(100) {
            0..=29 => self.near_add(at, out),
            30..=47 => self.near_cancel(at, out),
            48..=59 => self.improve(at, out),
            60..=75 => self.deep(at, out),
            76..=79 => self.far_modify(at, out),
            80..=83 => self.absent_far_removal(),
            _ => self.taker(at, out),
        }
    }

    // ---- kinds of internal update -------------------------------------------------------------

    fn near_add(&mut self, at: u64, out: &mut Vec<Timed>) {
        let side = self.side_toward(false);
        let tick = self.spec.tick;
        let spread = self.rng.below(30) + 1;
        let k = self.rng.below(spread) as i64;
        let price = match side {
            BID => self.best(BID).map_or(self.target_mid, |b| b - k * tick),
            _ => self.best(ASK).map_or(self.target_mid + tick, |a| a + k * tick),
        };
        if price <= 0 {
            return;
        }
        let q = self.rand_qty();
        self.set(side, price, q, at, out);
    }

    fn near_cancel(&mut self, at: u64, out: &mut Vec<Timed>) {
        let side = if self.rng.chance(1, 2) { BID } else { ASK };
        if self.side_len(side) <= MIN_LEVELS {
            return self.near_add(at, out);
        }
        let j = self.rng.below(20) as usize;
        let price = match side {
            BID => self.book.bids.keys().rev().nth(j).copied(),
            _ => self.book.asks.keys().nth(j).copied(),
        };
        if let Some(p) = price {
            self.set(side, p, 0, at, out);
        }
    }

    fn improve(&mut self, at: u64, out: &mut Vec<Timed>) {
        let tick = self.spec.tick;
        let (Some(bb), Some(ba)) = (self.best(BID), self.best(ASK)) else {
            return self.near_add(at, out);
        };
        let gap = (ba - bb) / tick;
        if gap <= 1 {
            return self.near_add(at, out);
        }
        let k = self.rng.range_i64(1, (gap - 1).min(3));
        let side = self.side_toward(true);
        let price = if side == BID { bb + k * tick } else { ba - k * tick };
        let q = self.rand_qty();
        self.set(side, price, q, at, out);
    }

    fn deep(&mut self, at: u64, out: &mut Vec<Timed>) {
        let side = if self.rng.chance(1, 2) { BID } else { ASK };
        let tick = self.spec.tick;
        let dist = self.log_dist();
        let grow = self.side_len(side) < self.target_levels;
        let Some(best) = self.best(side) else {
            return self.near_add(at, out);
        };
        let price = if side == BID { best - dist * tick } else { best + dist * tick };
        if price <= 0 {
            return;
        }
        if grow {
            let q = self.rand_qty();
            self.set(side, price, q, at, out);
        } else if self.side_len(side) > MIN_LEVELS {
            let found = match side {
                BID => self.book.bids.range(..=price).next_back().map(|(&p, _)| p),
                _ => self.book.asks.range(price..).next().map(|(&p, _)| p),
            };
            if let Some(p) = found {
                if Some(p) != self.best(side) {
                    self.set(side, p, 0, at, out);
                }
            }
        }
    }

    fn far_price(&mut self, side: u8) -> Option<i64> {
        let tick = self.spec.tick;
        let best = self.best(side)?;
        let dist = self.rng.range_i64(self.max_ticks / 2, self.max_ticks);
        let p = if side == BID { best - dist * tick } else { best + dist * tick };
        (p > 0).then_some(p)
    }

    fn far_modify(&mut self, at: u64, out: &mut Vec<Timed>) {
        let side = if self.rng.chance(1, 2) { BID } else { ASK };
        if let Some(p) = self.far_price(side) {
            let q = self.rand_qty();
            self.set(side, p, q, at, out);
        }
    }

    /// Binance sends zero quantities for far levels the client never had; so do we. No id: the
    /// book does not change.
    fn absent_far_removal(&mut self) {
        let side = if self.rng.chance(1, 2) { BID } else { ASK };
        let Some(mut p) = self.far_price(side) else {
            return;
        };
        for _ in 0..8 {
            let present = match side {
                BID => self.book.bids.contains_key(&p),
                _ => self.book.asks.contains_key(&p),
            };
            if !present {
                self.changes.insert((side, p), 0);
                return;
            }
            p += self.spec.tick;
        }
    }

    fn taker(&mut self, at: u64, out: &mut Vec<Timed>) {
        let mid = self.mid();
        let buy_pct = if self.target_mid > mid {
            65
        } else if self.target_mid < mid {
            35
        } else {
            50
        };
        let buy = self.rng.below(100) < buy_pct;
        let side = if buy { ASK } else { BID };
        let Some(first_qty) = self.best_level(side).map(|l| l.qty) else {
            return;
        };
        let mut remaining =
            if self.rng.chance(1, 4) { first_qty + self.rand_qty() } else { self.rand_qty().min(first_qty) };
        let buyer_is_maker = !buy;
        for _ in 0..3 {
            if remaining <= 0 || self.side_len(side) <= MIN_LEVELS {
                break;
            }
            let Some(level) = self.best_level(side) else {
                break;
            };
            let fill = remaining.min(level.qty);
            let k = self.rng.range_i64(1, 3).min(fill).max(1);
            let first_trade = self.next_trade;
            let mut left = level.qty;
            let mut done = 0;
            for i in 0..k {
                let part = if i == k - 1 { fill - done } else { fill / k };
                if part <= 0 {
                    continue;
                }
                done += part;
                left -= part;
                let t = self.next_trade;
                self.next_trade += 1;
                out.push(Timed { at_ns: at, event: self.trade_event(t, level.price, part, buyer_is_maker) });
                self.set(side, level.price, left, at, out);
            }
            let a = self.next_agg;
            self.next_agg += 1;
            out.push(Timed {
                at_ns: at,
                event: self.agg_event(a, level.price, fill, first_trade, self.next_trade - 1, buyer_is_maker),
            });
            remaining -= fill;
            if left > 0 {
                break;
            }
        }
    }

    // ---- helpers ------------------------------------------------------------------------------

    /// Applies one internal update: a new id, the level's final quantity recorded for the diff,
    /// and a bookTicker if the top changed.
    fn set(&mut self, side: u8, price: i64, qty: i64, at: u64, out: &mut Vec<Timed>) {
        let map = if side == BID { &mut self.book.bids } else { &mut self.book.asks };
        if qty == 0 {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
        let id = self.next_id;
        // Futures ids are not contiguous: an update takes 1 to 3 of them.
        self.next_id += if self.futures { 1 + self.rng.below(3) } else { 1 };
        self.book.last_update_id = id;
        self.changes.insert((side, price), qty);
        let top = self.book.top();
        if top != self.last_top {
            self.last_top = top;
            if let (Some(b), Some(a)) = top {
                out.push(Timed {
                    at_ns: at,
                    event: MarketEvent {
                        symbol: self.sym_index,
                        stream: self.streams.book_ticker,
                        kind: StreamKind::BookTicker,
                        payload: if self.futures {
                            futures_book_ticker_payload(&self.spec, id, b, a)
                        } else {
                            book_ticker_payload(&self.spec.symbol, id, b, a)
                        },
                        reference: None,
                        fields: Fields::BookTicker { update_id: id, bid: b, ask: a },
                    },
                });
            }
        }
    }

    fn trade_event(&self, id: u64, price: i64, qty: i64, m: bool) -> MarketEvent {
        let mut p = Payload::new();
        if self.futures {
            // {"e":"trade","E":..,"T":..,"s":..,"t":..,"p":..,"q":..,"X":"MARKET","m":..}
            let (pd, qd) = self.spec.decimals();
            p.push_str("{\"e\":\"trade\",\"E\":");
            p.push_time(0);
            p.push_str(",\"T\":");
            p.push_time(TRADE_LAG_US);
            p.push_str(",\"s\":\"");
            p.push_str(&self.spec.symbol);
            p.push_str("\",\"t\":");
            p.push_str(&id.to_string());
            p.push_str(",\"p\":\"");
            push_units_dp(&mut p.text, price, pd);
            p.push_str("\",\"q\":\"");
            push_units_dp(&mut p.text, qty, qd);
            p.push_str(if m { "\",\"X\":\"MARKET\",\"m\":true}" } else { "\",\"X\":\"MARKET\",\"m\":false}" });
            return MarketEvent {
                symbol: self.sym_index,
                stream: self.streams.trade,
                kind: StreamKind::Trade,
                payload: p,
                reference: None,
                fields: Fields::Trade { id, price, qty, buyer_is_maker: m, trade_lag_us: TRADE_LAG_US },
            };
        }
        p.push_str("{\"e\":\"trade\",\"E\":");
        p.push_time(0);
        p.push_str(",\"s\":\"");
        p.push_str(&self.spec.symbol);
        p.push_str("\",\"t\":");
        p.push_str(&id.to_string());
        p.push_str(",\"p\":\"");
        push_units(&mut p.text, price);
        p.push_str("\",\"q\":\"");
        push_units(&mut p.text, qty);
        p.push_str("\",\"T\":");
        p.push_time(TRADE_LAG_US);
        p.push_str(if m { ",\"m\":true,\"M\":true}" } else { ",\"m\":false,\"M\":true}" });
        MarketEvent {
            symbol: self.sym_index,
            stream: self.streams.trade,
            kind: StreamKind::Trade,
            payload: p,
            reference: None,
            fields: Fields::Trade { id, price, qty, buyer_is_maker: m, trade_lag_us: TRADE_LAG_US },
        }
    }

    fn agg_event(&self, id: u64, price: i64, qty: i64, first: u64, last: u64, m: bool) -> MarketEvent {
        let mut p = Payload::new();
        if self.futures {
            // {"e":"aggTrade","E":..,"s":..,"a":..,"p":..,"q":..,"f":..,"l":..,"T":..,"m":..}
            let (pd, qd) = self.spec.decimals();
            p.push_str("{\"e\":\"aggTrade\",\"E\":");
            p.push_time(0);
            p.push_str(",\"s\":\"");
            p.push_str(&self.spec.symbol);
            p.push_str("\",\"a\":");
            p.push_str(&id.to_string());
            p.push_str(",\"p\":\"");
            push_units_dp(&mut p.text, price, pd);
            p.push_str("\",\"q\":\"");
            push_units_dp(&mut p.text, qty, qd);
            p.push_str("\",\"f\":");
            p.push_str(&first.to_string());
            p.push_str(",\"l\":");
            p.push_str(&last.to_string());
            p.push_str(",\"T\":");
            p.push_time(TRADE_LAG_US);
            p.push_str(if m { ",\"m\":true}" } else { ",\"m\":false}" });
            return MarketEvent {
                symbol: self.sym_index,
                stream: self.streams.agg_trade,
                kind: StreamKind::AggTrade,
                payload: p,
                reference: None,
                fields: Fields::Opaque,
            };
        }
        p.push_str("{\"e\":\"aggTrade\",\"E\":");
        p.push_time(0);
        p.push_str(",\"s\":\"");
        p.push_str(&self.spec.symbol);
        p.push_str("\",\"a\":");
        p.push_str(&id.to_string());
        p.push_str(",\"p\":\"");
        push_units(&mut p.text, price);
        p.push_str("\",\"q\":\"");
        push_units(&mut p.text, qty);
        p.push_str("\",\"f\":");
        p.push_str(&first.to_string());
        p.push_str(",\"l\":");
        p.push_str(&last.to_string());
        p.push_str(",\"T\":");
        p.push_time(TRADE_LAG_US);
        p.push_str(if m { ",\"m\":true,\"M\":true}" } else { ",\"m\":false,\"M\":true}" });
        MarketEvent {
            symbol: self.sym_index,
            stream: self.streams.agg_trade,
            kind: StreamKind::AggTrade,
            payload: p,
            reference: None,
            fields: Fields::Opaque,
        }
    }

    fn best(&self, side: u8) -> Option<i64> {
        self.best_level(side).map(|l| l.price)
    }

    fn best_level(&self, side: u8) -> Option<Level> {
        let (b, a) = self.book.top();
        if side == BID {
            b
        } else {
            a
        }
    }

    fn side_len(&self, side: u8) -> usize {
        if side == BID {
            self.book.bids.len()
        } else {
            self.book.asks.len()
        }
    }

    fn mid(&self) -> i64 {
        match (self.best(BID), self.best(ASK)) {
            (Some(b), Some(a)) => (b + a) / 2,
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => self.target_mid,
        }
    }

    /// The side to add liquidity on. When `improving`, favour the side that moves the mid toward
    /// the target (that is the random walk); otherwise either side.
    fn side_toward(&mut self, improving: bool) -> u8 {
        if !improving {
            return if self.rng.chance(1, 2) { BID } else { ASK };
        }
        let up = self.target_mid >= self.mid();
        let favoured = if up { BID } else { ASK };
        if self.rng.chance(7, 10) {
            favoured
        } else {
            1 - favoured
        }
    }

    /// A distance in ticks, roughly log-uniform on 1..=max_ticks (integers only): dense near the
    /// touch, sparse far away, like a real book.
    fn log_dist(&mut self) -> i64 {
        let bits = 64 - (self.max_ticks as u64).leading_zeros();
        let e = self.rng.below(u64::from(bits.max(1)));
        let lo = 1i64 << e;
        self.rng.range_i64(lo, (lo * 2 - 1).min(self.max_ticks)).min(self.max_ticks)
    }

    /// A resting quantity: mostly small, sometimes large, and one time in five not a multiple of
    /// the lot step (market orders leave such remainders on real books).
    fn rand_qty(&mut self) -> i64 {
        let step = self.spec.step.max(1);
        let steps = match self.rng.below(10) {
            0..=5 => self.rng.range_i64(1, 100),
            6..=8 => self.rng.range_i64(100, 5_000),
            _ => self.rng.range_i64(5_000, 100_000),
        };
        let mut q = steps * step;
        // Futures quantities are whole steps (they are written at the step's precision).
        if step > 1 && !self.futures && self.rng.chance(1, 5) {
            q += self.rng.range_i64(1, step - 1);
        }
        q
    }
}

fn diff_of(first: u64, last: u64, changes: &BTreeMap<(u8, i64), i64>) -> Diff {
    let bids = changes
        .range((BID, i64::MIN)..=(BID, i64::MAX))
        .rev()
        .map(|(&(_, price), &qty)| Level { price, qty })
        .collect();
    let asks =
        changes.range((ASK, i64::MIN)..=(ASK, i64::MAX)).map(|(&(_, price), &qty)| Level { price, qty }).collect();
    Diff { first_id: first, last_id: last, bids, asks }
}

/// `{"e":"depthUpdate","E":..,"s":"..","U":..,"u":..,"b":[..],"a":[..]}`
pub(crate) fn depth_payload(symbol: &str, diff: &Diff) -> Payload {
    let mut p = Payload::new();
    p.push_str("{\"e\":\"depthUpdate\",\"E\":");
    p.push_time(0);
    p.push_str(",\"s\":\"");
    p.push_str(symbol);
    p.push_str("\",\"U\":");
    p.push_str(&diff.first_id.to_string());
    p.push_str(",\"u\":");
    p.push_str(&diff.last_id.to_string());
    p.push_str(",\"b\":");
    push_levels(&mut p.text, &diff.bids);
    p.push_str(",\"a\":");
    push_levels(&mut p.text, &diff.asks);
    p.push('}');
    p
}

/// USDⓈ-M futures: `{"e":"depthUpdate","E":..,"T":..,"s":"..","U":..,"u":..,"pu":..,"b":[..],"a":[..]}`,
/// prices at `pd` and quantities at `qd` fractional digits.
pub(crate) fn futures_depth_payload(symbol: &str, diff: &Diff, pu: u64, pd: usize, qd: usize) -> Payload {
    let mut p = Payload::new();
    p.push_str("{\"e\":\"depthUpdate\",\"E\":");
    p.push_time(0);
    p.push_str(",\"T\":");
    p.push_time(TRADE_LAG_US);
    p.push_str(",\"s\":\"");
    p.push_str(symbol);
    p.push_str("\",\"U\":");
    p.push_str(&diff.first_id.to_string());
    p.push_str(",\"u\":");
    p.push_str(&diff.last_id.to_string());
    p.push_str(",\"pu\":");
    p.push_str(&pu.to_string());
    p.push_str(",\"b\":");
    push_levels_dp(&mut p.text, &diff.bids, pd, qd);
    p.push_str(",\"a\":");
    push_levels_dp(&mut p.text, &diff.asks, pd, qd);
    p.push('}');
    p
}

/// USDⓈ-M futures: `{"e":"bookTicker","u":..,"E":..,"T":..,"s":"..","b":"..","B":"..","a":"..","A":".."}`
fn futures_book_ticker_payload(spec: &SymbolSpec, id: u64, bid: Level, ask: Level) -> Payload {
    let (pd, qd) = spec.decimals();
    let mut p = Payload::new();
    p.push_str("{\"e\":\"bookTicker\",\"u\":");
    p.push_str(&id.to_string());
    p.push_str(",\"E\":");
    p.push_time(0);
    p.push_str(",\"T\":");
    p.push_time(TRADE_LAG_US);
    p.push_str(",\"s\":\"");
    p.push_str(&spec.symbol);
    p.push_str("\",\"b\":\"");
    push_units_dp(&mut p.text, bid.price, pd);
    p.push_str("\",\"B\":\"");
    push_units_dp(&mut p.text, bid.qty, qd);
    p.push_str("\",\"a\":\"");
    push_units_dp(&mut p.text, ask.price, pd);
    p.push_str("\",\"A\":\"");
    push_units_dp(&mut p.text, ask.qty, qd);
    p.push_str("\"}");
    p
}

/// `{"u":..,"s":"..","b":"..","B":"..","a":"..","A":".."}`
fn book_ticker_payload(symbol: &str, id: u64, bid: Level, ask: Level) -> Payload {
    let mut p = Payload::new();
    p.push_str("{\"u\":");
    p.push_str(&id.to_string());
    p.push_str(",\"s\":\"");
    p.push_str(symbol);
    p.push_str("\",\"b\":\"");
    push_units(&mut p.text, bid.price);
    p.push_str("\",\"B\":\"");
    push_units(&mut p.text, bid.qty);
    p.push_str("\",\"a\":\"");
    push_units(&mut p.text, ask.price);
    p.push_str("\",\"A\":\"");
    push_units(&mut p.text, ask.qty);
    p.push_str("\"}");
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::History;

    fn streams() -> SynthStreams {
        SynthStreams { depth: 0, depth100: 1, trade: 2, agg_trade: 3, book_ticker: 4, depth500: None }
    }

    fn run(seed: u64, steps: u64) -> (Synth, Vec<Timed>) {
        let mut s = Synth::new(SymbolSpec::for_symbol("btcusdt"), 0, streams(), seed, 3000);
        let mut out = Vec::new();
        for i in 0..steps {
            s.step(i * 100_000_000, 100_000_000, &mut out);
        }
        (s, out)
    }

    /// A futures market: ids skip, each depth stream's `pu` is its own previous `u`, and the
    /// payloads carry `T`, `pu` and the contract's precisions.
    #[test]
    fn a_futures_market_chains_each_depth_stream_by_pu() {
        let streams = SynthStreams { depth500: Some(5), ..streams() };
        let spec = SymbolSpec::for_symbol("btcusdt").into_futures();
        let mut s = Synth::new(spec, 0, streams, 3, 500);
        let mut out = Vec::new();
        for i in 0..40 {
            s.step(i * 100_000_000, 100_000_000, &mut out);
        }
        let num = |text: &str, key: &str| -> u64 {
            let at = text.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
            text[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
        };
        let mut skipped = 0;
        for (stream, per) in [(1u32, 40usize), (0, 16), (5, 8)] {
            let diffs: Vec<&str> =
                out.iter().filter(|t| t.event.stream == stream).map(|t| t.event.payload.text.as_str()).collect();
            assert_eq!(diffs.len(), per, "stream {stream}");
            for w in diffs.windows(2) {
                assert_eq!(num(w[1], "pu"), num(w[0], "u"), "pu is the previous u of the same stream");
                assert!(num(w[1], "U") > num(w[0], "u"));
                skipped += u64::from(num(w[1], "U") > num(w[0], "u") + 1);
            }
        }
        assert!(skipped > 20, "futures ids skip between diffs: {skipped}");
        let d = &out.iter().find(|t| t.event.stream == 1).unwrap().event.payload.text;
        assert!(d.starts_with("{\"e\":\"depthUpdate\",\"E\":"), "{d}");
        assert!(d.contains(",\"T\":") && d.contains(",\"pu\":"), "{d}");
        // Prices at 2 decimals, quantities at 3: ["60000.40","54.890"].
        let level = d.split("\"b\":[[\"").nth(1).or_else(|| d.split("\"a\":[[\"").nth(1)).unwrap();
        let (price, rest) = level.split_once("\",\"").unwrap();
        let qty = rest.split('"').next().unwrap();
        assert_eq!(price.split('.').nth(1).unwrap().len(), 2, "{d}");
        assert_eq!(qty.split('.').nth(1).unwrap().len(), 3, "{d}");
        let t = &out.iter().find(|t| t.event.stream == 4).unwrap().event.payload.text;
        assert!(t.starts_with("{\"e\":\"bookTicker\",\"u\":") && t.contains(",\"T\":"), "{t}");
        let tr = &out.iter().find(|t| t.event.stream == 2).unwrap().event.payload.text;
        assert!(tr.contains("\"X\":\"MARKET\"") && !tr.contains("\"M\""), "{tr}");
    }

    #[test]
    fn deterministic_per_seed() {
        let (_, a) = run(7, 50);
        let (_, b) = run(7, 50);
        let (_, c) = run(8, 50);
        let text = |v: &Vec<Timed>| v.iter().map(|t| t.event.payload.text.clone()).collect::<Vec<_>>();
        assert_eq!(text(&a), text(&b));
        assert_ne!(text(&a), text(&c));
    }

    #[test]
    fn initial_book_is_btc_like() {
        let s = Synth::new(SymbolSpec::for_symbol("btcusdt"), 0, streams(), 1, 3000);
        let b = s.initial_book();
        assert!(b.bids.len() >= 3000 && b.asks.len() >= 3000);
        let (bb, ba) = b.top();
        let (bb, ba) = (bb.unwrap().price, ba.unwrap().price);
        assert!(bb < ba);
        assert!((bb - 60_000 * crate::decimal::SCALE).abs() < crate::decimal::SCALE * 1000);
        let deepest_bid = *b.bids.keys().next().unwrap();
        assert!(bb - deepest_bid > bb / 20, "levels reach more than 5% away");
    }

    /// The heart of the generator's contract: replaying its own diffs onto its initial book gives
    /// its internal book, ids are contiguous, books never cross, and every bookTicker shows the
    /// state of its own update id.
    #[test]
    fn diffs_tickers_and_trades_are_consistent() {
        let mut s = Synth::new(SymbolSpec::for_symbol("btcusdt"), 0, streams(), 3, 1000);
        let mut reference = History::new(s.initial_book(), 100_000);
        let mut out = Vec::new();
        let mut prev_u = s.initial_book().last_update_id;
        let (mut trades, mut far, mut tickers_checked, mut zero_absent) = (0, 0, 0, 0);
        let mut pending_tickers: Vec<(u64, Level, Level)> = Vec::new();
        for i in 0..300 {
            out.clear();
            let before = s.book.clone();
            s.step(i * 100_000_000, 100_000_000, &mut out);
            let mut last_at = 0;
            for t in &out {
                assert!(t.at_ns >= last_at, "time ordered");
                last_at = t.at_ns;
                let text = &t.event.payload.text;
                match t.event.kind {
                    StreamKind::Trade => trades += 1,
                    StreamKind::BookTicker => {
                        let u: u64 = text[5..text.find(',').unwrap()].parse().unwrap();
                        let (b, a) = parse_ticker(text);
                        pending_tickers.push((u, b, a));
                    }
                    _ => {}
                }
            }
            let d = out.iter().find_map(|t| t.event.reference.clone()).unwrap();
            assert_eq!(d.first_id, prev_u + 1, "contiguous ids");
            assert!(d.last_id >= d.first_id);
            prev_u = d.last_id;
            let (bb, _) = before.top();
            for l in d.bids.iter() {
                if bb.unwrap().price - l.price > bb.unwrap().price / 20 {
                    far += 1;
                }
                if l.qty == 0 && !before.bids.contains_key(&l.price) {
                    zero_absent += 1;
                }
            }
            reference.push(d);
            assert_eq!(reference.current(), &s.book);
            let (b, a) = s.book.top();
            assert!(b.unwrap().price < a.unwrap().price, "never crossed");
            // Tickers whose id is this diff's final id must match the book exactly.
            for (u, b, a) in pending_tickers.drain(..) {
                if u == prev_u {
                    tickers_checked += 1;
                    assert_eq!(reference.current().top(), (Some(b), Some(a)));
                }
            }
        }
        assert!(trades > 100, "trades: {trades}");
        assert!(far > 10, "far levels: {far}");
        assert!(zero_absent > 5, "zero-qty removals of absent levels: {zero_absent}");
        assert!(tickers_checked > 10, "ticker checks: {tickers_checked}");
    }

    /// A quiet market: steps without an update publish nothing, the diffs it does publish still
    /// chain id to id onto the reference, and the 1000 ms diff covers exactly the fast ones.
    #[test]
    fn quiet_markets_skip_steps_and_stay_consistent() {
        for (spec, milli) in [
            (SymbolSpec::generated(7, 1), 300),
            (SymbolSpec::generated(1999, 3), 700),
            (SymbolSpec::generated(12, 2), 2_500),
        ] {
            let mut s = Synth::new(spec, 0, streams(), 5, 100).with_activity(milli);
            let mut reference = History::new(s.initial_book(), 10_000);
            let mut prev_u = s.initial_book().last_update_id;
            let (mut quiet_steps, mut diffs, mut slow_first) = (0, 0, None::<u64>);
            let mut out = Vec::new();
            for i in 0..400 {
                out.clear();
                s.step(i * 100_000_000, 100_000_000, &mut out);
                let fast = out.iter().find_map(|t| t.event.reference.clone());
                match fast {
                    None => quiet_steps += 1,
                    Some(d) => {
                        assert_eq!(d.first_id, prev_u + 1, "contiguous ids");
                        slow_first.get_or_insert(d.first_id);
                        prev_u = d.last_id;
                        reference.push(d);
                        diffs += 1;
                    }
                }
                for t in out.iter().filter(|t| t.event.stream == streams().depth) {
                    let text = &t.event.payload.text;
                    let u = |k: &str| text[text.find(k).unwrap() + k.len()..].split(',').next().unwrap().parse::<u64>();
                    assert_eq!(
                        u("\"U\":").unwrap(),
                        slow_first.take().unwrap(),
                        "1000 ms diff starts where the fast ones did"
                    );
                    assert_eq!(u("\"u\":").unwrap(), prev_u);
                }
                assert_eq!(reference.current(), &s.book);
            }
            assert!(diffs > 20, "{milli}: {diffs} diffs");
            assert!(milli > 1000 || quiet_steps > 20, "{milli}: {quiet_steps} quiet steps");
        }
        let mut still = Synth::new(SymbolSpec::generated(3, 1), 0, streams(), 5, 100).with_activity(0);
        let mut out = Vec::new();
        for i in 0..50 {
            still.step(i * 100_000_000, 100_000_000, &mut out);
        }
        assert!(out.is_empty(), "activity 0 never moves");
    }

    /// A trade prints at the touch and the next diff carries the reduced (or removed) level.
    #[test]
    fn trades_reduce_the_level_they_print_at() {
        let mut s = Synth::new(SymbolSpec::for_symbol("btcusdt"), 0, streams(), 11, 500);
        let mut out = Vec::new();
        let mut checked = 0;
        for i in 0..100 {
            out.clear();
            s.step(i * 100_000_000, 100_000_000, &mut out);
            let d = out.iter().find_map(|t| t.event.reference.clone()).unwrap();
            for t in out.iter().filter(|t| t.event.kind == StreamKind::Trade) {
                let text = &t.event.payload.text;
                let p = field(text, "\"p\":\"");
                let price = crate::decimal::parse_units(p).unwrap();
                let maker_bid = text.contains("\"m\":true");
                let in_diff = if maker_bid { &d.bids } else { &d.asks };
                assert!(in_diff.iter().any(|l| l.price == price), "trade level is in the diff");
                checked += 1;
            }
        }
        assert!(checked > 20);
    }

    fn field<'a>(text: &'a str, key: &str) -> &'a str {
        let i = text.find(key).unwrap() + key.len();
        &text[i..i + text[i..].find('"').unwrap()]
    }

    fn parse_ticker(text: &str) -> (Level, Level) {
        let n = |k: &str| crate::decimal::parse_units(field(text, k)).unwrap();
        (Level { price: n("\"b\":\""), qty: n("\"B\":\"") }, Level { price: n("\"a\":\""), qty: n("\"A\":\"") })
    }
}
