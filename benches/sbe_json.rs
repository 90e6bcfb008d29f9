//! SBE against JSON, per message, on the same book content: the real BTCUSDT recording (0808) and
//! the same recording converted to SBE frames by the simulator's encoder
//! (`tickfeed_sim::convert`, the `stream-sbe` endpoint's `Scale::Coarsest` decimals).
//!
//! - `depth/json` and `depth/sbe`: one depth diff per iteration, cycling over the recording's
//!   3,451 diffs: decode (sonic-rs visitor for JSON's `data`; `binance::sbe` for the binary frame)
//!   into reused level buffers, then every level set in an array ladder. The same diffs, the same
//!   ladder work: the difference is the decode.
//! - `pipeline/json_0808` and `pipeline/sbe_0808`: the whole recording per iteration through
//!   `Pipeline::on_frame` (JSON text frames, with their `{"stream":..,"data":..}` envelope) or
//!   `Pipeline::on_binary` (SBE frames; bookTickers as bestBidAsk), output `none`: decode, sync
//!   engine, ladder, audit and counters, as the live loop runs them.
//!
//! Both wires are measured side by side in one run. Needs ../shared/data/binance (or
//! $TICKFEED_DATA); without it the benches print why and exit.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tickfeed::binance::{decode_depth, decode_snapshot, sbe, split_envelope, Envelope, LevelBuf};
use tickfeed::book::fixed::TickSize;
use tickfeed::book::{Ladder, LadderConfig, Side};
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};

struct Data {
    /// The depth diffs' JSON `data` payloads, and the same diffs as SBE frames.
    json_depth: Vec<Vec<u8>>,
    sbe_depth: Vec<Vec<u8>>,
    snapshot: Vec<u8>,
    /// Every line as (recv_ns, frame, binary): the JSON recording and its SBE conversion.
    json_lines: Vec<(i64, Vec<u8>)>,
    sbe_lines: Vec<(i64, Vec<u8>, bool)>,
}

fn load() -> Option<Data> {
    let lines = common::btcusdt_0808("bench sbe_json")?;
    let mut d = Data { json_depth: vec![], sbe_depth: vec![], snapshot: vec![], json_lines: vec![], sbe_lines: vec![] };
    let (mut frame, mut line, mut bin) = (Vec::new(), Vec::new(), Vec::new());
    for (ns, json) in lines {
        let mut l = format!("{ns} ").into_bytes();
        l.extend_from_slice(&json);
        let converted = tickfeed_sim::convert::convert_line(&l, &mut frame, &mut line).ok()?;
        match split_envelope(&json) {
            Ok(Envelope::Stream { stream, data }) if stream.contains("@depth") => {
                d.json_depth.push(data.to_vec());
                d.sbe_depth.push(frame.clone());
            }
            Ok(Envelope::Snapshot(b)) => d.snapshot = b.to_vec(),
            _ => {}
        }
        match converted {
            tickfeed_sim::convert::Converted::Sbe => {
                let b64 = &line[line.iter().position(|&c| c == b'~')? + 1..];
                tickfeed::capture::base64::decode_into(b64, &mut bin).ok()?;
                d.sbe_lines.push((ns, bin.clone(), true));
            }
            tickfeed_sim::convert::Converted::Kept => d.sbe_lines.push((ns, json.clone(), false)),
        }
        d.json_lines.push((ns, json));
    }
    Some(d)
}

fn ladder(d: &Data) -> (Ladder, TickSize) {
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

#[inline]
fn apply(bufs: &LevelBuf, ladder: &mut Ladder, tick: TickSize) {
    for l in &bufs.bids {
        ladder.set(Side::Bid, tick.to_ticks(l.price).unwrap(), l.qty);
    }
    for l in &bufs.asks {
        ladder.set(Side::Ask, tick.to_ticks(l.price).unwrap(), l.qty);
    }
}

#[inline(never)]
fn json_apply(data: &[u8], bufs: &mut LevelBuf, ladder: &mut Ladder, tick: TickSize) -> u64 {
    let h = decode_depth(data, bufs).unwrap();
    apply(bufs, ladder, tick);
    h.final_id
}

#[inline(never)]
fn sbe_apply(frame: &[u8], bufs: &mut LevelBuf, ladder: &mut Ladder, tick: TickSize) -> u64 {
    let h = sbe::decode_depth_diff(frame, bufs).unwrap();
    apply(bufs, ladder, tick);
    h.final_id
}

fn benches(c: &mut Criterion) {
    let Some(d) = load() else { return };
    // Both decoders give the same levels for every diff (else the comparison is meaningless).
    let (mut a, mut b) = (LevelBuf::default(), LevelBuf::default());
    for (j, s) in d.json_depth.iter().zip(&d.sbe_depth) {
        decode_depth(j, &mut a).unwrap();
        sbe::decode_depth_diff(s, &mut b).unwrap();
        assert!(a.bids == b.bids && a.asks == b.asks, "SBE and JSON diffs differ");
    }
    let mut g = c.benchmark_group("depth");
    g.throughput(Throughput::Elements(1));
    for (name, frames, f) in [
        ("json", &d.json_depth, json_apply as fn(&[u8], &mut LevelBuf, &mut Ladder, TickSize) -> u64),
        ("sbe", &d.sbe_depth, sbe_apply),
    ] {
        let (mut l, tick) = ladder(&d);
        let mut bufs = LevelBuf::with_capacity(2048);
        let mut i = 0;
        g.bench_function(name, |bch| {
            bch.iter(|| {
                let id = f(&frames[i], &mut bufs, &mut l, tick);
                i = (i + 1) % frames.len();
                black_box(id)
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(d.json_lines.len() as u64));
    g.sample_size(10);
    let cfg = PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() };
    g.bench_function("json_0808", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(cfg, &["btcusdt"]);
            for (ns, json) in &d.json_lines {
                if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                    let _ = p.on_snapshot(0, *ns, json);
                }
            }
            black_box(p.stats().events)
        })
    });
    g.bench_function("sbe_0808", |b| {
        b.iter(|| {
            let mut p = Pipeline::new(cfg, &["btcusdt"]);
            for (ns, f, binary) in &d.sbe_lines {
                if *binary {
                    p.on_binary(*ns, f);
                } else if p.on_frame(*ns, f) == FrameOutcome::Snapshot {
                    let _ = p.on_snapshot(0, *ns, f);
                }
            }
            black_box(p.stats().events)
        })
    });
    g.finish();
}

criterion_group!(sbe_json, benches);
criterion_main!(sbe_json);
