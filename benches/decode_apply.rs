//! Decode + apply cost per depth message on the real BTCUSDT recording, against a plain baseline.
//!
//! - `depth/tickfeed`: sonic-rs visitor decode into reused level buffers, then the array ladder.
//! - `depth/baseline`: serde_json into an owned value, decimals parsed, a BTreeMap per side: the
//!   shape of a straightforward handler. Same frames, same run, so the ratio is meaningful on a
//!   noisy shared machine.
//! - `pipeline/replay_0808`: the whole first recording (all streams) through `Pipeline::on_frame`
//!   per iteration, output mode `none`: the real per-message cost including envelope split,
//!   sync engine, audit and counters.
//!
//! Each depth iteration processes the next frame of the recording, cycling, so the criterion
//! time is per message. Levels per message average ~29 on this recording; `depth_levels/*`
//! reports the same work with per-level throughput.
//!
//! Needs ../shared/data/binance (or $TICKFEED_DATA); without it the benches print why and exit.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::collections::BTreeMap;
use std::hint::black_box;
use tickfeed::binance::{decode_depth, decode_snapshot, split_envelope, Envelope, LevelBuf};
use tickfeed::book::fixed::{parse_units_str, TickSize};
use tickfeed::book::{Ladder, LadderConfig, Side};
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};

struct Data {
    /// Raw `data` payloads of the depth diffs.
    depth: Vec<Vec<u8>>,
    /// The REST snapshot body.
    snapshot: Vec<u8>,
    /// Every line of the first file as (recv_ns, json).
    lines: Vec<(i64, Vec<u8>)>,
    levels: usize,
}

fn load() -> Option<Data> {
    let lines = common::btcusdt_0808("benches")?;
    let mut d = Data { depth: vec![], snapshot: vec![], lines: vec![], levels: 0 };
    let mut bufs = LevelBuf::default();
    for (recv_ns, json) in lines {
        match split_envelope(&json) {
            Ok(Envelope::Stream { stream, data }) if stream.contains("@depth") => {
                decode_depth(data, &mut bufs).ok()?;
                d.levels += bufs.bids.len() + bufs.asks.len();
                d.depth.push(data.to_vec());
            }
            Ok(Envelope::Snapshot(b)) => d.snapshot = b.to_vec(),
            _ => {}
        }
        d.lines.push((recv_ns, json));
    }
    Some(d)
}

fn tickfeed_book(d: &Data) -> (Ladder, TickSize) {
    let tick = TickSize::new(1_000_000).unwrap();
    let mut ladder = Ladder::new(LadderConfig::default());
    let mut b = LevelBuf::default();
    decode_snapshot(&d.snapshot, &mut b).unwrap();
    for l in &b.bids {
        ladder.set(Side::Bid, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    for l in &b.asks {
        ladder.set(Side::Ask, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    (ladder, tick)
}

#[inline(never)]
fn tickfeed_apply(data: &[u8], bufs: &mut LevelBuf, ladder: &mut Ladder, tick: TickSize) -> u64 {
    let h = decode_depth(data, bufs).unwrap();
    for l in &bufs.bids {
        ladder.set(Side::Bid, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    for l in &bufs.asks {
        ladder.set(Side::Ask, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    h.final_id
}

/// The baseline: owned serde_json value, decimal strings parsed, BTreeMap books.
#[derive(Default)]
struct BaselineBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
}

#[inline(never)]
fn baseline_apply(data: &[u8], book: &mut BaselineBook) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(data).unwrap();
    for (key, side) in [("b", &mut book.bids), ("a", &mut book.asks)] {
        for lvl in v[key].as_array().unwrap() {
            let p = parse_units_str(lvl[0].as_str().unwrap()).unwrap();
            let q = parse_units_str(lvl[1].as_str().unwrap()).unwrap();
            if q == 0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }
    v["u"].as_u64().unwrap()
}

fn benches(c: &mut Criterion) {
    let Some(d) = load() else { return };
    let n = d.depth.len();
    eprintln!(
        "{} depth diffs, {} levels ({:.1} per diff), {} lines",
        n,
        d.levels,
        d.levels as f64 / n as f64,
        d.lines.len()
    );

    let mut g = c.benchmark_group("depth");
    g.throughput(Throughput::Elements(1));
    {
        let (mut ladder, tick) = tickfeed_book(&d);
        let mut bufs = LevelBuf::with_capacity(2048);
        let mut i = 0;
        g.bench_function(BenchmarkId::new("tickfeed", "per_message"), |b| {
            b.iter(|| {
                let f = &d.depth[i % n];
                i += 1;
                black_box(tickfeed_apply(black_box(f), &mut bufs, &mut ladder, tick))
            })
        });
    }
    {
        let mut bufs = LevelBuf::with_capacity(2048);
        let mut i = 0;
        g.bench_function(BenchmarkId::new("tickfeed_decode_only", "per_message"), |b| {
            b.iter(|| {
                let f = &d.depth[i % n];
                i += 1;
                black_box(decode_depth(black_box(f), &mut bufs).unwrap().final_id)
            })
        });
    }
    {
        let mut book = BaselineBook::default();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("baseline", "per_message"), |b| {
            b.iter(|| {
                let f = &d.depth[i % n];
                i += 1;
                black_box(baseline_apply(black_box(f), &mut book))
            })
        });
    }
    // The median-size diff of the recording, repeated (re-applying it is idempotent): the
    // "median message" figure, next to the cycling mean above.
    let mut by_size: Vec<&Vec<u8>> = d.depth.iter().collect();
    by_size.sort_by_key(|f| f.len());
    let median = by_size[by_size.len() / 2];
    {
        let mut bufs = LevelBuf::with_capacity(2048);
        decode_depth(median, &mut bufs).unwrap();
        eprintln!("median diff: {} bytes, {} levels", median.len(), bufs.bids.len() + bufs.asks.len());
        let (mut ladder, tick) = tickfeed_book(&d);
        g.bench_function(BenchmarkId::new("tickfeed", "median_message"), |b| {
            b.iter(|| black_box(tickfeed_apply(black_box(median), &mut bufs, &mut ladder, tick)))
        });
        let mut book = BaselineBook::default();
        g.bench_function(BenchmarkId::new("baseline", "median_message"), |b| {
            b.iter(|| black_box(baseline_apply(black_box(median), &mut book)))
        });
    }
    g.finish();

    // Where decode time goes: JSON structure alone (levels as borrowed strings), and the decimal
    // parses alone over the same strings.
    let mut g = c.benchmark_group("decode_parts");
    g.throughput(Throughput::Elements(1));
    {
        #[derive(serde::Deserialize)]
        struct Raw<'a> {
            #[serde(borrow, rename = "b")]
            b: Vec<(&'a str, &'a str)>,
            #[serde(borrow, rename = "a")]
            a: Vec<(&'a str, &'a str)>,
        }
        let mut i = 0;
        g.bench_function("json_only_sonic_struct", |b| {
            b.iter(|| {
                let f = &d.depth[i % n];
                i += 1;
                let r: Raw = sonic_rs::from_slice(black_box(f)).unwrap();
                black_box(r.b.len() + r.a.len())
            })
        });
        let strs: Vec<Vec<(String, String)>> = d
            .depth
            .iter()
            .map(|f| {
                let r: Raw = sonic_rs::from_slice(f).unwrap();
                r.b.iter().chain(r.a.iter()).map(|(p, q)| (p.to_string(), q.to_string())).collect()
            })
            .collect();
        let mut i = 0;
        g.bench_function("decimals_only", |b| {
            b.iter(|| {
                let lv = &strs[i % n];
                i += 1;
                let mut acc = 0i64;
                for (p, q) in lv {
                    acc = acc
                        .wrapping_add(parse_units_str(black_box(p)).unwrap() ^ parse_units_str(black_box(q)).unwrap());
                }
                black_box(acc)
            })
        });
    }
    g.finish();

    // The same work over the whole recording, reported per level.
    let mut g = c.benchmark_group("depth_levels");
    g.throughput(Throughput::Elements(d.levels as u64));
    g.sample_size(20);
    {
        let (mut ladder, tick) = tickfeed_book(&d);
        let mut bufs = LevelBuf::with_capacity(2048);
        g.bench_function("tickfeed/all_diffs", |b| {
            b.iter(|| {
                for f in &d.depth {
                    black_box(tickfeed_apply(f, &mut bufs, &mut ladder, tick));
                }
            })
        });
    }
    {
        let mut book = BaselineBook::default();
        g.bench_function("baseline/all_diffs", |b| {
            b.iter(|| {
                for f in &d.depth {
                    black_box(baseline_apply(f, &mut book));
                }
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(d.lines.len() as u64));
    g.sample_size(10);
    g.bench_function("replay_0808_all_streams", |b| {
        b.iter(|| {
            let cfg = PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() };
            let mut p = Pipeline::new(cfg, &["btcusdt"]);
            for (ns, json) in &d.lines {
                if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                    let _ = p.on_snapshot(0, *ns, json);
                }
            }
            black_box(p.stats().events)
        })
    });
    g.finish();
}

criterion_group!(decode_apply, benches);
criterion_main!(decode_apply);
