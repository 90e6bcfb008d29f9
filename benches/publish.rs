//! What publishing costs the feed's thread, per event, on the real BTCUSDT recording (all 41,249
//! lines of `btcusdt_20240808.gz`), side by side in one run (issue 13's target: under 100 ns an
//! event on the hot thread):
//!
//! - `publish/pipeline_only`: `Pipeline::on_frame` for every line, output `none`, no tap.
//! - `publish/pipeline_and_tap`: the same with the tap writing every record (symbol, diff, top,
//!   trade, status, snapshot) into its buffer, cleared after each frame as the driver does.
//! - `publish/pipeline_tap_iceoryx2`: the same, each frame's records sent as one iceoryx2 sample
//!   (a subscriber is connected, so the sample is delivered to a queue).
//! - `publish/pipeline_tap_nats_ring`: the same, each frame's records copied into the SPSC ring of
//!   the NATS publisher (a consumer thread drains it; no server is needed for the hot side, so
//!   the consumer here only empties the ring).
//!
//! Each iteration replays the whole file into a fresh pipeline (made outside the timed part);
//! time per iteration / events is the cost per event, and the difference to `pipeline_only` is
//! what publishing adds. Needs ../shared/data/binance (or $TICKFEED_DATA).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};
use tickfeed::publish::ice::{IcePublisher, IceSubscriber};
use tickfeed::wire::tap::{Tap, TapConfig};

fn pipeline(tap: bool) -> Pipeline {
    let cfg = PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() };
    let mut p = Pipeline::new(cfg, &["btcusdt"]);
    if tap {
        p.set_tap(Some(Tap::new(TapConfig::default(), 1 << 20)));
    }
    p
}

fn timed(iters: u64, tap: bool, mut sink: impl FnMut(&[u8]), lines: &[(i64, Vec<u8>)]) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut p = pipeline(tap);
        let t = Instant::now();
        for (ns, json) in lines {
            if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                let _ = p.on_snapshot(0, *ns, json);
            }
            if let Some(tap) = p.tap_mut() {
                if !tap.pending().is_empty() {
                    sink(tap.pending());
                    tap.clear();
                }
            }
        }
        total += t.elapsed();
        black_box(p.stats().events);
    }
    total
}

fn benches(c: &mut Criterion) {
    let Some(lines) = common::btcusdt_0808("bench publish") else { return };
    let events = {
        let mut p = pipeline(false);
        timed(1, false, |_| {}, &lines);
        for (ns, json) in &lines {
            if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                let _ = p.on_snapshot(0, *ns, json);
            }
        }
        p.stats().events
    };
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(events));
    g.sample_size(20);
    g.bench_function("pipeline_only", |b| b.iter_custom(|iters| timed(iters, false, |_| {}, &lines)));
    g.bench_function("pipeline_and_tap", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                true,
                |r| {
                    black_box(r.len());
                },
                &lines,
            )
        })
    });

    let service = format!("tickfeed/benchpub{}/records", std::process::id());
    let mut publisher = IcePublisher::open(&service).expect("iceoryx2 publisher");
    let mut subscriber = IceSubscriber::open(&service).expect("iceoryx2 subscriber");
    // The subscriber is seen, as the live loop would see it.
    let until = Instant::now() + Duration::from_secs(5);
    while !publisher.wants_snapshots() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    g.bench_function("pipeline_tap_iceoryx2", |b| {
        b.iter_custom(|iters| {
            let d = timed(iters, true, |r| publisher.send(r), &lines);
            // Emptied between iterations (untimed): its queue overwrites the oldest anyway.
            let _ = subscriber.poll(|s| {
                black_box(s.len());
            });
            d
        })
    });
    assert_eq!(publisher.counters.dropped, 0, "every sample was loaned and sent");

    let (mut prod, mut cons) = rtrb::RingBuffer::<u8>::new(8 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let drain = std::thread::spawn(move || {
        let mut dropped_reads = 0u64;
        while !s2.load(Ordering::Relaxed) {
            let n = cons.slots();
            if n == 0 {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            if let Ok(c) = cons.read_chunk(n) {
                dropped_reads += c.len() as u64;
                c.commit_all();
            }
        }
        dropped_reads
    });
    let mut full = 0u64;
    g.bench_function("pipeline_tap_nats_ring", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                true,
                |r| {
                    if prod.push_entire_slice(r).is_err() {
                        full += 1;
                    }
                },
                &lines,
            )
        })
    });
    g.finish();
    stop.store(true, Ordering::Relaxed);
    let bytes = drain.join().unwrap_or(0);
    eprintln!("publish: {events} events a replay; nats ring: {bytes} bytes drained, {full} frames found the ring full");
}

criterion_group!(publish, benches);
criterion_main!(publish);
