//! Micro benchmarks of each step a market-data frame goes through, in memory, on the real BTCUSDT
//! recording (`btcusdt_20240808.gz`): nanoseconds per frame, per message and per level.
//!
//! - `ws_decode`: `tickfeed::ws::Decoder` on server text frames (unmasked, as Binance sends them)
//!   built around each recorded line: one frame per call, cycling through them, and every frame
//!   back to back in one buffer, as a socket read delivers them.
//! - `envelope`: `split_envelope`, the `{"stream":..,"data":..}` wrapper split.
//! - `decimal`: `parse_units` (the SWAR path) on every price and quantity string of the
//!   recording's diffs, trades and bookTickers, next to the byte loop it is held equal to
//!   (`parse_units_slow`) and to `str::parse::<f64>` as a yardstick.
//! - `decode`: each message type with tickfeed's decoders: depth diff, trade, aggTrade,
//!   bookTicker, one per call cycling through the recording; the diffs and the REST snapshot again
//!   per level. The recording has no aggTrade stream, so the aggTrades are the recording's trades
//!   rewritten field for field as aggTrade events (`"a"` = `"f"` = `"l"` = the trade id); they are
//!   real prices and quantities, not real aggTrade messages.
//! - `ladder_real`: the array ladder fed the recording's decoded diff levels (set, and remove
//!   where the quantity is 0), the best bid and ask read after each message, per level. Every
//!   iteration replays all diffs from the start on the book the last one left.
//!
//! Run: `cargo bench --bench micro` (`-- --quick` for a short pass). Needs ../shared/data/binance
//! (or $TICKFEED_DATA); without it the bench prints why and exits. On a shared 2-core VM the
//! figures move by tens of percent from run to run: compare within one run.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tickfeed::binance::{
    decode_agg_trade, decode_book_ticker, decode_depth, decode_snapshot, decode_trade, split_envelope, Envelope,
    LevelBuf,
};
use tickfeed::book::fixed::{parse_units, parse_units_slow, TickSize};
use tickfeed::book::{Ladder, LadderConfig, Side};
use tickfeed::ws::{Decoder, Limits};

/// Byte strings stored back to back in one buffer, in recording order, as frames sit in a read
/// buffer: walking them streams memory instead of chasing one heap allocation per item (which,
/// measured first, made a few-ns decimal parse look like 70 ns of cache misses).
#[derive(Default)]
struct Corpus {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Corpus {
    fn push(&mut self, item: &[u8]) {
        self.spans.push((self.bytes.len(), item.len()));
        self.bytes.extend_from_slice(item);
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, i: usize) -> &[u8] {
        let (start, len) = self.spans[i];
        &self.bytes[start..start + len]
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

#[derive(Default)]
struct Data {
    /// Every websocket line (the combined-stream text frames), without the REST snapshot.
    frames: Corpus,
    depth: Corpus,
    trade: Corpus,
    agg_trade: Corpus,
    book_ticker: Corpus,
    snapshot: Vec<u8>,
    /// Every price and every quantity string, in recording order.
    prices: Corpus,
    qtys: Corpus,
}

fn load() -> Option<Data> {
    let lines = common::btcusdt_0808("benches")?;
    let mut d = Data::default();
    let s = |v: &serde_json::Value| v.as_str().expect("a decimal string").as_bytes().to_vec();
    for (_, json) in lines {
        match split_envelope(&json).expect("a recorded line") {
            Envelope::Stream { stream, data } => {
                let v: serde_json::Value = serde_json::from_slice(data).expect("recorded JSON");
                if stream.ends_with("@depth@100ms") || stream.ends_with("@depth") {
                    for side in ["b", "a"] {
                        for l in v[side].as_array().expect("levels") {
                            d.prices.push(&s(&l[0]));
                            d.qtys.push(&s(&l[1]));
                        }
                    }
                    d.depth.push(data);
                } else if stream.ends_with("@trade") {
                    d.prices.push(&s(&v["p"]));
                    d.qtys.push(&s(&v["q"]));
                    let agg = format!(
                        r#"{{"e":"aggTrade","E":{},"s":{},"a":{},"p":{},"q":{},"f":{},"l":{},"T":{},"m":{},"M":{}}}"#,
                        v["E"], v["s"], v["t"], v["p"], v["q"], v["t"], v["t"], v["T"], v["m"], v["M"]
                    );
                    d.agg_trade.push(agg.as_bytes());
                    d.trade.push(data);
                } else if stream.ends_with("@bookTicker") {
                    for k in ["b", "a"] {
                        d.prices.push(&s(&v[k]));
                    }
                    for k in ["B", "A"] {
                        d.qtys.push(&s(&v[k]));
                    }
                    d.book_ticker.push(data);
                }
                d.frames.push(&json);
            }
            Envelope::Snapshot(b) => d.snapshot = b.to_vec(),
            _ => d.frames.push(&json),
        }
    }
    if d.depth.len() == 0 || d.trade.len() == 0 || d.book_ticker.len() == 0 || d.snapshot.is_empty() {
        eprintln!("SKIP benches: btcusdt_20240808.gz lacks a stream or the snapshot");
        return None;
    }
    Some(d)
}

/// An unmasked, unfragmented server text frame around `payload` (RFC 6455 5.2).
fn server_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x81);
    let n = payload.len();
    if n < 126 {
        out.push(n as u8);
    } else if n <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Runs `f` on the next item of `items` each iteration, cycling: time per item.
fn cycling(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    items: &Corpus,
    mut f: impl FnMut(&[u8]) -> u64,
) {
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter(|| {
            let x = items.get(i % items.len());
            i += 1;
            black_box(f(black_box(x)))
        })
    });
}

fn benches(c: &mut Criterion) {
    let Some(d) = load() else { return };
    let mut bufs = LevelBuf::with_capacity(2048);
    let depth_levels: usize = d
        .depth
        .iter()
        .map(|f| {
            decode_depth(f, &mut bufs).unwrap();
            bufs.bids.len() + bufs.asks.len()
        })
        .sum();
    decode_snapshot(&d.snapshot, &mut bufs).unwrap();
    let snapshot_levels = bufs.bids.len() + bufs.asks.len();
    let frame_bytes = d.frames.bytes.len();
    eprintln!(
        "{} frames ({} bytes, {:.0} per frame): {} depth diffs ({} levels, {:.1} per diff), {} trades, {} bookTickers; \
         snapshot {} bytes, {} levels; {} prices, {} quantities",
        d.frames.len(),
        frame_bytes,
        frame_bytes as f64 / d.frames.len() as f64,
        d.depth.len(),
        depth_levels,
        depth_levels as f64 / d.depth.len() as f64,
        d.trade.len(),
        d.book_ticker.len(),
        d.snapshot.len(),
        snapshot_levels,
        d.prices.len(),
        d.qtys.len()
    );

    // Websocket frames.
    let mut framed = Corpus::default();
    let mut f = Vec::new();
    for p in d.frames.iter() {
        f.clear();
        server_frame(p, &mut f);
        framed.push(&f);
    }
    let stream = &framed.bytes;
    let mut g = c.benchmark_group("ws_decode");
    g.throughput(Throughput::Elements(1));
    let mut dec = Decoder::new(Limits::default());
    cycling(&mut g, "per_frame", &framed, |f| {
        let out = dec.decode(f).unwrap();
        match out.event {
            Some(tickfeed::ws::Event::Text(t)) => t.len() as u64 + out.consumed as u64,
            _ => unreachable!("one text frame"),
        }
    });
    g.throughput(Throughput::Elements(framed.len() as u64));
    g.bench_function("all_frames_one_buffer", |b| {
        let mut dec = Decoder::new(Limits::default());
        b.iter(|| {
            let mut pos = 0;
            let mut sum = 0u64;
            loop {
                let out = dec.decode(&stream[pos..]).unwrap();
                pos += out.consumed;
                match out.event {
                    Some(tickfeed::ws::Event::Text(t)) => sum += t.len() as u64,
                    Some(_) => unreachable!("text frames only"),
                    None => break,
                }
            }
            black_box(sum)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(d.frames.len() as u64));
    g.bench_function("split_envelope/all_frames", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            for f in d.frames.iter() {
                if let Ok(Envelope::Stream { data, .. }) = split_envelope(black_box(f)) {
                    sum += data.len();
                }
            }
            black_box(sum)
        })
    });
    g.finish();

    // Decimals: every string of a kind per iteration, reported per string.
    let mut g = c.benchmark_group("decimal");
    for (kind, strs) in [("price", &d.prices), ("qty", &d.qtys)] {
        g.throughput(Throughput::Elements(strs.len() as u64));
        let sum = |f: fn(&[u8]) -> i64| {
            move || {
                let mut acc = 0i64;
                for s in strs.iter() {
                    acc = acc.wrapping_add(f(black_box(s)));
                }
                acc
            }
        };
        let fast = sum(|s| parse_units(s).unwrap());
        g.bench_function(format!("parse_units/{kind}"), |b| b.iter(fast));
        let slow = sum(|s| parse_units_slow(s).unwrap());
        g.bench_function(format!("parse_units_slow/{kind}"), |b| b.iter(slow));
        let float = sum(|s| {
            let t = std::str::from_utf8(s).unwrap();
            t.parse::<f64>().unwrap().to_bits() as i64
        });
        g.bench_function(format!("f64_parse/{kind}"), |b| b.iter(float));
    }
    g.finish();

    // One message per call, by type.
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let mut bufs = LevelBuf::with_capacity(2048);
    cycling(&mut g, "depth/per_message", &d.depth, |f| decode_depth(f, &mut bufs).unwrap().final_id);
    cycling(&mut g, "trade/per_message", &d.trade, |f| decode_trade(f).unwrap().trade_id);
    cycling(&mut g, "aggTrade/per_message", &d.agg_trade, |f| decode_agg_trade(f).unwrap().agg_id);
    cycling(&mut g, "bookTicker/per_message", &d.book_ticker, |f| decode_book_ticker(f).unwrap().update_id);
    g.bench_function("snapshot/per_message", |b| {
        b.iter(|| black_box(decode_snapshot(black_box(&d.snapshot), &mut bufs).unwrap()))
    });
    g.finish();

    // The same, per level.
    let mut g = c.benchmark_group("decode_levels");
    g.throughput(Throughput::Elements(depth_levels as u64));
    g.bench_function("depth/all_diffs", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for f in d.depth.iter() {
                sum = sum.wrapping_add(decode_depth(black_box(f), &mut bufs).unwrap().final_id);
            }
            black_box(sum)
        })
    });
    g.throughput(Throughput::Elements(snapshot_levels as u64));
    g.bench_function("snapshot", |b| b.iter(|| black_box(decode_snapshot(black_box(&d.snapshot), &mut bufs).unwrap())));
    g.finish();

    // The ladder on the real levels, decoded beforehand.
    let tick = TickSize::new(1_000_000).unwrap();
    let ticks = |side: Side, l: &tickfeed::binance::RawLevel| (side, tick.to_ticks(l.price).unwrap(), l.qty);
    let diffs: Vec<Vec<(Side, i64, i64)>> = d
        .depth
        .iter()
        .map(|f| {
            decode_depth(f, &mut bufs).unwrap();
            bufs.bids.iter().map(|l| ticks(Side::Bid, l)).chain(bufs.asks.iter().map(|l| ticks(Side::Ask, l))).collect()
        })
        .collect();
    let removes = diffs.iter().flatten().filter(|u| u.2 == 0).count();
    eprintln!("ladder_real: {} updates, {} of them removes", depth_levels, removes);
    let mut ladder = Ladder::new(LadderConfig::default());
    decode_snapshot(&d.snapshot, &mut bufs).unwrap();
    for l in &bufs.bids {
        ladder.set(Side::Bid, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    for l in &bufs.asks {
        ladder.set(Side::Ask, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    let mut g = c.benchmark_group("ladder_real");
    g.throughput(Throughput::Elements(depth_levels as u64));
    g.bench_function("set_and_best/all_diffs", |b| {
        b.iter(|| {
            let mut acc = 0i64;
            for m in &diffs {
                for &(side, t, q) in m {
                    ladder.set(side, t, q);
                }
                let bid = ladder.best_bid().map_or(0, |l| l.tick);
                let ask = ladder.best_ask().map_or(0, |l| l.tick);
                acc = acc.wrapping_add(bid ^ ask);
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(micro, benches);
criterion_main!(micro);
