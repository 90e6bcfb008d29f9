//! What the stage breakdown costs, side by side in one run:
//!
//! - `clock/*`: one read of the stage clock (calibrated TSC) against `Instant::now()`, and one
//!   histogram record;
//! - `pipeline/*`: the whole first BTCUSDT recording through `Pipeline::on_frame` (output `tob`
//!   into the buffer, as a live run prints), with the stage clock off and on. The difference per
//!   message is what `stages_ns` costs on the hot path (the read/TLS/websocket stages add two
//!   clock reads per socket read and one pair per frame on top).
//!
//! Needs ../shared/data/binance (or $TICKFEED_DATA); without it the pipeline group is skipped.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tickfeed::net::tsc::StageClock;
use tickfeed::output::{OutputMode, Stage, Stats};
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};

fn benches(c: &mut Criterion) {
    let clock = StageClock::calibrate(Duration::from_millis(20));
    eprintln!("stage clock: {}", if clock.is_tsc() { "TSC" } else { "monotonic (no invariant TSC)" });
    let mut g = c.benchmark_group("clock");
    g.bench_function("stage_clock_now", |b| b.iter(|| black_box(clock.now())));
    g.bench_function("instant_now", |b| b.iter(|| black_box(Instant::now())));
    let mut stats = Stats::new();
    let mut v = 0u64;
    g.bench_function("stage_record", |b| {
        b.iter(|| {
            v = (v + 37) % 5000;
            stats.stages.record(Stage::Book, black_box(v));
        })
    });
    g.finish();

    let Some(lines) = common::btcusdt_0808("pipeline benches") else { return };
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);
    for (name, stages) in [("replay_0808_stages_off", None), ("replay_0808_stages_on", Some(clock))] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let cfg = PipelineConfig { output: OutputMode::Tob, auto_symbols: true, ..Default::default() };
                let mut p = Pipeline::new(cfg, &["btcusdt"]);
                p.set_stage_clock(stages);
                for (ns, json) in &lines {
                    if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                        let _ = p.on_snapshot(0, *ns, json);
                    }
                    p.output().discard();
                }
                black_box(p.stats().events)
            })
        });
    }
    g.finish();
}

criterion_group!(stages, benches);
criterion_main!(stages);
