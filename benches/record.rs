//! What recording costs the feed's thread, per line, on the real BTCUSDT recording (all 41,249
//! lines of `btcusdt_20240808.gz`: diffs, trades, bookTickers, one snapshot), in one run so the
//! figures compare on a noisy shared machine:
//!
//! - `record/pipeline_only`: `Pipeline::on_frame` for every line, output `none`: not recording.
//! - `record/pipeline_and_record`: the same plus what the live loop adds for `--record`:
//!   `Recorder::record` with the kind and symbol `on_frame` returned, and `Recorder::tick`.
//! - `record/record_only`: `record` + `tick` alone.
//! - `record/record_memory_only`: the same with buffers large enough (and already faulted in)
//!   that nothing is written inside the timed part: the in-memory cost of `record`, without the
//!   write syscalls.
//! - `record/copy_floor`: appending each line's bytes to a buffer, cleared when full: the floor
//!   any in-memory recorder pays.
//!
//! Each iteration replays the whole file into a fresh pipeline / recorder (made and, with its
//! files, removed outside the timed part); criterion's time per iteration divided by 41,249 is the
//! cost per line. Writes go to the page cache of the temp folder and are timed (they happen in
//! `tick` and, on overflow, `record`); compression is off (it runs on another thread at rotation,
//! and the whole file is one hourly period). Needs ../shared/data/binance (or $TICKFEED_DATA).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tickfeed::binance::{parse_stream_name, split_envelope, Envelope, StreamKind};
use tickfeed::capture::{Recorder, RecorderConfig};
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};

/// One line: receive ns, the stream kind (`None` for the REST snapshot), the frame.
type Line = (i64, Option<StreamKind>, Vec<u8>);

fn load() -> Option<Vec<Line>> {
    let lines = common::btcusdt_0808("benches")?;
    let mut out = Vec::with_capacity(lines.len());
    for (recv_ns, json) in lines {
        let kind = match split_envelope(&json).ok()? {
            Envelope::Stream { stream, .. } => Some(parse_stream_name(stream)?.kind),
            _ => None,
        };
        out.push((recv_ns, kind, json));
    }
    Some(out)
}

const REQUEST: &str = "GET /api/v3/depth?symbol=BTCUSDT&limit=1000";

fn pipeline() -> Pipeline {
    let cfg = PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() };
    Pipeline::new(cfg, &["btcusdt"])
}

fn recorder(dir: &PathBuf, t0: i64) -> Recorder {
    recorder_with(dir, t0, RecorderConfig { compress: false, ..RecorderConfig::new(dir) })
}

fn recorder_with(dir: &PathBuf, t0: i64, cfg: RecorderConfig) -> Recorder {
    let _ = std::fs::remove_dir_all(dir);
    let mut r = Recorder::new(cfg, &["btcusdt"], t0).unwrap();
    r.prepare(t0).unwrap();
    r
}

/// Times `body` once per iteration over a fresh `setup()`, excluding setup and teardown.
fn timed<S>(
    iters: u64,
    mut setup: impl FnMut() -> S,
    mut body: impl FnMut(&mut S),
    mut teardown: impl FnMut(S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut s = setup();
        let t = Instant::now();
        body(&mut s);
        total += t.elapsed();
        teardown(s);
    }
    total
}

fn benches(c: &mut Criterion) {
    let Some(lines) = load() else { return };
    let t0 = lines[0].0;
    let dir = std::env::temp_dir().join(format!("tickfeed-bench-record-{}", std::process::id()));
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.sample_size(10);

    g.bench_function("pipeline_only", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                pipeline,
                |p| {
                    for (ns, _, json) in &lines {
                        if p.on_frame(*ns, json) == FrameOutcome::Snapshot {
                            let _ = p.on_snapshot(0, *ns, json);
                        }
                    }
                },
                |p| {
                    black_box(p.stats().events);
                },
            )
        })
    });

    g.bench_function("pipeline_and_record", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                || (pipeline(), recorder(&dir, t0)),
                |(p, rec)| {
                    for (ns, _, json) in &lines {
                        match p.on_frame(*ns, json) {
                            FrameOutcome::Market { symbol, kind, .. } => rec.record(*ns, kind, symbol, json),
                            FrameOutcome::Snapshot => {
                                let _ = p.on_snapshot(0, *ns, json);
                                rec.record_snapshot(*ns, 0, REQUEST, json);
                            }
                            _ => {}
                        }
                        rec.tick(*ns);
                    }
                },
                |(p, mut rec)| {
                    black_box(p.stats().events);
                    assert_eq!(rec.finish().lines, lines.len() as u64 + 1);
                },
            )
        })
    });

    g.bench_function("record_only", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                || recorder(&dir, t0),
                |rec| {
                    for (ns, kind, json) in &lines {
                        match kind {
                            Some(k) => rec.record(*ns, *k, 0, json),
                            None => rec.record_snapshot(*ns, 0, REQUEST, json),
                        }
                        rec.tick(*ns);
                    }
                },
                |mut rec| {
                    assert_eq!(rec.finish().lines, lines.len() as u64 + 1);
                },
            )
        })
    });

    g.bench_function("record_memory_only", |b| {
        let big = RecorderConfig {
            compress: false,
            buffer_bytes: 64 << 20,
            flush_bytes: 64 << 20,
            flush_interval_ns: i64::MAX / 2,
            ..RecorderConfig::new(&dir)
        };
        let record_all = |rec: &mut Recorder| {
            for (ns, kind, json) in &lines {
                match kind {
                    Some(k) => rec.record(*ns, *k, 0, json),
                    None => rec.record_snapshot(*ns, 0, REQUEST, json),
                }
                rec.tick(*ns);
            }
        };
        b.iter_custom(|iters| {
            timed(
                iters,
                || {
                    // Warm up untimed: fault the buffers' pages in (as a long run has), then
                    // write them out by moving to a later period; the timed lines are earlier
                    // than that period, so they stay in its file, in memory.
                    let mut rec = recorder_with(&dir, t0, big.clone());
                    record_all(&mut rec);
                    rec.tick(t0 + 2 * 86_400_000_000_000);
                    rec
                },
                |rec| record_all(rec),
                |mut rec| {
                    let c = rec.finish();
                    assert_eq!(c.lines, 2 * (lines.len() as u64 + 1));
                    assert_eq!(c.flushes, 6, "written at the warm-up's rotation and at finish, not while timed");
                },
            )
        })
    });

    g.bench_function("copy_floor", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                || Vec::<u8>::with_capacity(256 * 1024),
                |buf| {
                    for (ns, _, json) in &lines {
                        if buf.len() + json.len() + 21 > buf.capacity() {
                            black_box(&buf[..]);
                            buf.clear();
                        }
                        tickfeed::book::fixed::push_u64(buf, *ns as u64);
                        buf.push(b' ');
                        buf.extend_from_slice(json);
                        buf.push(b'\n');
                    }
                },
                |buf| {
                    black_box(buf.len());
                },
            )
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(record, benches);
criterion_main!(record);
