//! The fan-out records carry everything a book needs: the real BTCUSDT recording replayed
//! through a pipeline with a tap, its records fed to replicas as a subscriber would, and the
//! replicas' books and printed lines compared with the pipeline's own. Then the same with
//! records lost on the way: a replica is never wrong while it reports a book. Skips, saying so,
//! where the recordings are absent.

mod util;

use std::collections::HashMap;

use tickfeed::book::Side;
use tickfeed::capture::{open_recording, split_line, RecordedLine};
use tickfeed::output::{Output, OutputMode};
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};
use tickfeed::wire::replica::{self, Applied, Replica, ReplicaState};
use tickfeed::wire::tap::{Tap, TapConfig};
use tickfeed::wire::{self, Kind, Record};

fn lines_of(files: &[std::path::PathBuf]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    for f in files {
        let mut r = open_recording(f).unwrap();
        let mut line = Vec::new();
        while {
            line.clear();
            std::io::BufRead::read_until(&mut r, b'\n', &mut line).unwrap() > 0
        } {
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let RecordedLine::Data { recv_ns, json } = split_line(&line) else { panic!("bad line") };
            out.push((recv_ns, json.to_vec()));
        }
    }
    out
}

fn pipeline() -> Pipeline {
    let mut cfg = PipelineConfig { output: OutputMode::TobJson, auto_symbols: true, ..PipelineConfig::default() };
    // As the verified figures: the book stays synced past the snapshot's deepest level.
    cfg.book.trust_beyond_snapshot = true;
    let mut p = Pipeline::new(cfg, &[]);
    p.set_tap(Some(Tap::new(TapConfig::default(), 1 << 20)));
    p
}

fn levels(p: &Pipeline, side: Side) -> Vec<(i64, i64)> {
    p.symbols()[0].book().ladder().levels(side).into_iter().map(|l| (l.tick, l.qty)).collect()
}

/// The subscriber's side: replicas by symbol id, and the lines they print.
#[derive(Default)]
struct Sub {
    reps: HashMap<u32, (Option<String>, Replica)>,
    trades: u64,
    out: Option<Output>,
}

impl Sub {
    fn take(&mut self, buf: &[u8]) {
        let out = self.out.get_or_insert_with(|| Output::new(OutputMode::TobJson, 1 << 20));
        let mut at = 0;
        while at < buf.len() {
            let (h, r) = wire::decode(&buf[at..]).expect("the tap writes records");
            at += h.len as usize;
            let (name, rep) = self.reps.entry(h.symbol).or_default();
            if let Record::Symbol(s) = &r {
                *name = Some(s.name.to_string());
            }
            if h.kind == Kind::Trade {
                self.trades += 1;
            }
            if rep.on_record(&h, &r) == Applied::Book {
                let (b, a) = rep.best().expect("a book that changed is held");
                let recv = match r {
                    Record::Diff(d) => d.recv_ns,
                    Record::Snapshot(s) => s.recv_ns,
                    _ => 0,
                };
                replica::print_top(out, name.as_deref().unwrap(), rep.update_id(), rep.tick(), b, a, recv);
            }
        }
    }
}

#[test]
fn replicas_rebuild_the_btcusdt_books_and_print_the_same_lines() {
    let (Some(a), Some(b)) = (util::recording("btcusdt_20240808.gz"), util::recording("btcusdt_20240809.gz")) else {
        return;
    };
    let mut p = pipeline();
    let mut sub = Sub::default();
    let (mut printed, mut rebuilt) = (Vec::new(), Vec::new());
    let mut compared = 0u64;
    for (recv_ns, json) in lines_of(&[a, b]) {
        if let FrameOutcome::Snapshot = p.on_frame(recv_ns, &json) {
            p.on_snapshot(0, recv_ns, &json).unwrap();
        }
        let tap = p.tap_mut().unwrap();
        sub.take(tap.pending());
        tap.clear();
        printed.extend_from_slice(p.output().buffer());
        p.output().discard();
        if let Some(o) = sub.out.as_mut() {
            rebuilt.extend_from_slice(o.buffer());
            o.discard();
        }
        // After every frame: a synced book and its replica agree on the id, and on the top.
        let book = p.symbols()[0].book();
        if book.is_synced() {
            let (_, rep) = &sub.reps[&0];
            assert_eq!(rep.state(), ReplicaState::Synced { partial: false });
            assert_eq!(rep.update_id(), book.last_update_id());
            let top = rep.best().unwrap();
            assert_eq!(top.0.map(|l| l.0), book.ladder().best_bid().map(|l| l.tick));
            assert_eq!(top.1.map(|l| l.0), book.ladder().best_ask().map(|l| l.tick));
            compared += 1;
        }
    }
    let (_, rep) = &sub.reps[&0];
    // The verified figures: the last diff is u=50093696318, with 1,971 bids and 2,962 asks.
    assert_eq!(rep.update_id(), 50_093_696_318);
    assert_eq!(rep.bids().collect::<Vec<_>>(), levels(&p, Side::Bid));
    assert_eq!(rep.asks().collect::<Vec<_>>(), levels(&p, Side::Ask));
    assert_eq!((rep.bids().count(), rep.asks().count()), (1_971, 2_962));
    assert_eq!(rep.counters().lost, 0);
    assert_eq!(rep.counters().drops, 0);
    assert_eq!(sub.trades, 19_904, "every trade is a record");
    assert!(compared > 6_000, "{compared} frames compared");
    // Line for line, the replica prints what the pipeline printed.
    assert!(!printed.is_empty());
    assert_eq!(String::from_utf8(rebuilt).unwrap(), String::from_utf8(printed).unwrap());
}

/// A channel that loses one record in `n` (seeded), and snapshots every 500 frames: the replica
/// drops its book on each loss that matters, waits for a snapshot, and whenever it reports a
/// book, that book is the pipeline's at the same id, level for level.
#[test]
fn a_lossy_channel_never_leaves_a_replica_wrong() {
    let Some(a) = util::recording("btcusdt_20240808.gz") else { return };
    let mut p = pipeline();
    let mut rep = Replica::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut equal_checks, mut lost, mut behind) = (0u64, 0u64, 0u64);
    let mut last_diff_lost = false;
    for (n, (recv_ns, json)) in lines_of(&[a]).into_iter().enumerate() {
        if let FrameOutcome::Snapshot = p.on_frame(recv_ns, &json) {
            p.on_snapshot(0, recv_ns, &json).unwrap();
        }
        if n % 500 == 499 {
            p.publish_snapshots(recv_ns);
        }
        let tap = p.tap_mut().unwrap();
        let buf = tap.pending().to_vec();
        tap.clear();
        p.output().discard();
        let mut at = 0;
        while at < buf.len() {
            let (h, r) = wire::decode(&buf[at..]).unwrap();
            at += h.len as usize;
            if next() % 40 == 0 {
                lost += 1;
                last_diff_lost |= h.kind == Kind::Diff;
                continue;
            }
            if h.kind == Kind::Diff {
                last_diff_lost = false;
            }
            rep.on_record(&h, &r);
        }
        let book = p.symbols()[0].book();
        if rep.state() == (ReplicaState::Synced { partial: false }) && rep.update_id() == book.last_update_id() {
            assert_eq!(rep.bids().collect::<Vec<_>>(), levels(&p, Side::Bid), "bids at {}", rep.update_id());
            assert_eq!(rep.asks().collect::<Vec<_>>(), levels(&p, Side::Ask), "asks at {}", rep.update_id());
            equal_checks += 1;
        } else if let ReplicaState::Synced { .. } = rep.state() {
            // Behind only when this frame's last diff was lost: nothing after it has told the
            // replica yet (the next diff or its number will).
            assert!(
                last_diff_lost,
                "the replica reports {} while the book is at {}",
                rep.update_id(),
                book.last_update_id()
            );
            behind += 1;
        }
    }
    eprintln!(
        "lossy channel: {lost} records lost, {} book drops, {equal_checks} frames equal, {behind} behind",
        rep.counters().drops
    );
    assert!(lost > 100, "{lost} records lost");
    assert!(rep.counters().drops > 5, "the losses dropped the book ({:?})", rep.counters());
    assert!(equal_checks > 500, "{equal_checks} frames with the replica synced and equal");
}

/// The SBE path feeds the records too: the 0808 recording converted to SBE by the simulator's
/// encoder, replayed through `on_binary` with a tap, rebuilds the same book, and every trade of
/// each `TradesStreamEvent` is its own record.
#[test]
fn the_sbe_path_publishes_the_same_book_and_every_trade() {
    let Some(a) = util::recording("btcusdt_20240808.gz") else { return };
    let dir = util::temp_dir("wire-sbe");
    let sbe = dir.join("0808.sbe");
    tickfeed_sim::convert::convert_file(&a, &sbe).unwrap();
    let text = std::fs::read(&sbe).unwrap();
    let mut p = pipeline();
    let mut sub = Sub::default();
    let mut frame = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match split_line(line) {
            RecordedLine::Binary { recv_ns, base64 } => {
                frame.clear();
                tickfeed::capture::base64::decode_into(base64, &mut frame).unwrap();
                p.on_binary(recv_ns, &frame);
            }
            RecordedLine::Data { recv_ns, json } => {
                if let FrameOutcome::Snapshot = p.on_frame(recv_ns, json) {
                    p.on_snapshot(0, recv_ns, json).unwrap();
                }
            }
            other => panic!("unexpected line {other:?}"),
        }
        let tap = p.tap_mut().unwrap();
        sub.take(tap.pending());
        tap.clear();
        p.output().discard();
        if let Some(o) = sub.out.as_mut() {
            o.discard();
        }
    }
    let (_, rep) = &sub.reps[&0];
    assert!(p.symbols()[0].book().is_synced());
    assert_eq!(rep.update_id(), p.symbols()[0].book().last_update_id());
    assert_eq!(rep.bids().collect::<Vec<_>>(), levels(&p, Side::Bid));
    assert_eq!(rep.asks().collect::<Vec<_>>(), levels(&p, Side::Ask));
    assert_eq!(sub.trades, p.stats().trades, "one record a trade");
    assert!(sub.trades > 5_000);
    assert_eq!(rep.counters().lost, 0);
}
