//! The recorder's hot path allocates nothing after warm-up: every frame of the real BTCUSDT
//! recording, recorded and ticked as the live loop would (buffer writes included), makes zero
//! heap allocations on the feed's thread once each stream's file and buffer exist. A counting
//! global allocator proves it. (The gzip thread allocates; it is another thread.)

mod util;

use std::io::BufRead;
use tickfeed::binance::{parse_stream_name, split_envelope, Envelope};
use tickfeed::capture::{open_recording, split_line, RecordedLine};
use tickfeed::capture::{Recorder, RecorderConfig};

#[global_allocator]
static A: util::alloc::Counting = util::alloc::Counting;

fn allocs() -> u64 {
    util::alloc::this_thread()
}

#[test]
fn record_and_tick_allocate_nothing_after_warm_up() {
    util::alloc::count_this_thread(true);
    let Some(f) = util::recording("btcusdt_20240808.gz") else { return };
    let mut r = open_recording(&f).unwrap();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut line = Vec::new();
    while r.read_until(b'\n', &mut line).unwrap() > 0 {
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        lines.push(std::mem::take(&mut line));
    }
    let dir = std::env::temp_dir().join(format!("tickfeed-record-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first_ns = match split_line(&lines[0]) {
        RecordedLine::Data { recv_ns, .. } => recv_ns,
        _ => panic!("bad first line"),
    };
    // Hourly files: the whole recording (23:54..23:59 UTC) falls in one period, so after warm-up
    // no file is opened or closed; buffers are written many times over.
    let cfg = RecorderConfig { ..RecorderConfig::new(&dir) };
    let mut rec = Recorder::new(cfg, &["btcusdt"], first_ns).unwrap();
    rec.prepare(first_ns).unwrap();
    let warm_up = 2000;
    let mut before = 0;
    let mut flushes_before = 0;
    for (i, l) in lines.iter().enumerate() {
        if i == warm_up {
            before = allocs();
            flushes_before = rec.counters().flushes;
        }
        let RecordedLine::Data { recv_ns, json } = split_line(l) else { panic!("bad line {i}") };
        match split_envelope(json).unwrap() {
            Envelope::Stream { stream, .. } => {
                let kind = parse_stream_name(stream).unwrap().kind;
                rec.record(recv_ns, kind, 0, json);
            }
            Envelope::Snapshot(_) => {
                rec.record_snapshot(recv_ns, 0, "GET /api/v3/depth?symbol=BTCUSDT&limit=1000", json)
            }
            other => panic!("unexpected {other:?}"),
        }
        rec.tick(recv_ns);
    }
    let after = allocs();
    let c = rec.counters();
    assert!(c.flushes - flushes_before > 50, "buffers were written during the measured part: {c:?}");
    assert_eq!(after - before, 0, "allocations in {} recorded lines after warm-up", lines.len() - warm_up);
    let c = rec.finish();
    assert_eq!((c.lines, c.write_errors, c.dropped_lines), (lines.len() as u64 + 1, 0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}
