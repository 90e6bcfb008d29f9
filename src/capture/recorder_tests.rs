//! Recorder tests with a fake clock: every time is passed in, so hours and midnight pass at once.

use super::*;
use crate::capture::layout::{create_take, highest_take, HOUR_NS, SECOND_NS};
use crate::capture::{open_recording, ReplayCounters, ReplayOptions, Replayer};
use crate::output::OutputMode;
use crate::pipeline::{Pipeline, PipelineConfig};
use std::collections::BTreeSet;
use std::io::BufRead;

/// 2024-08-09 00:00:00 UTC.
const MIDNIGHT: i64 = 1_723_161_600_000_000_000;
const MS: i64 = 1_000_000;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickfeed-rec-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cfg(root: &Path, compress: bool) -> RecorderConfig {
    RecorderConfig { compress, ..RecorderConfig::new(root) }
}

/// Every file under `dir`, relative, sorted (dot files included).
fn tree(dir: &Path) -> Vec<String> {
    fn go(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut v = Vec::new();
    go(dir, dir, &mut v);
    v.sort();
    v
}

fn read_lines(path: &Path) -> Vec<String> {
    open_recording(path).unwrap().lines().map(Result::unwrap).collect()
}

// A tiny market: snapshot id 100, then diff i has U = u = 101 + i and sets the 100.00 bid to i+2;
// a bookTicker after each diff shows exactly that book; a trade every other diff.
fn snapshot(id: u64, bid_qty: u64) -> String {
    format!(
        r#"{{"lastUpdateId":{id},"bids":[["100.00000000","{bid_qty}.00000000"]],"asks":[["101.00000000","1.00000000"]]}}"#
    )
}
fn diff(i: u64) -> String {
    let u = 101 + i;
    format!(
        r#"{{"stream":"xyzusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161599000,"s":"XYZUSDT","U":{u},"u":{u},"b":[["100.00000000","{}.00000000"]],"a":[]}}}}"#,
        i + 2
    )
}
fn ticker(i: u64) -> String {
    format!(
        r#"{{"stream":"xyzusdt@bookTicker","data":{{"u":{},"s":"XYZUSDT","b":"100.00000000","B":"{}.00000000","a":"101.00000000","A":"1.00000000"}}}}"#,
        101 + i,
        i + 2
    )
}
fn trade(i: u64) -> String {
    format!(
        r#"{{"stream":"xyzusdt@trade","data":{{"e":"trade","E":1723161599000,"s":"XYZUSDT","t":{},"p":"100.00000000","q":"0.10000000","T":1723161599000,"m":true,"M":true}}}}"#,
        500 + i
    )
}

const REQ: &str = "GET /api/v3/depth?symbol=XYZUSDT&limit=1000";

/// Records the tiny market from `t0`, one diff every `step_ns`, as the live loop would (tick
/// after every frame). Also returns the same lines as one plain recording, in order.
fn record_market(rec: &mut Recorder, t0: i64, step_ns: i64, n: u64, checkpoint: bool) -> Vec<String> {
    let mut plain = Vec::new();
    rec.record_snapshot(t0, 0, REQ, snapshot(100, 1).as_bytes());
    plain.push(format!("{t0} {REQ}"));
    plain.push(format!("{t0} {}", snapshot(100, 1)));
    for i in 0..n {
        let t = t0 + (i as i64 + 1) * step_ns;
        rec.record(t, StreamKind::Depth, 0, diff(i).as_bytes());
        plain.push(format!("{t} {}", diff(i)));
        if i % 2 == 0 {
            rec.record(t, StreamKind::Trade, 0, trade(i).as_bytes());
            plain.push(format!("{t} {}", trade(i)));
        }
        rec.record(t + 1, StreamKind::BookTicker, 0, ticker(i).as_bytes());
        plain.push(format!("{} {}", t + 1, ticker(i)));
        rec.tick(t + 1);
        while let Some(sym) = rec.poll_snapshot_wanted() {
            // The live loop would fetch a fresh snapshot now; the book after diff i is this one.
            if checkpoint {
                rec.record_snapshot(t + 2, sym, REQ, snapshot(101 + i, i + 2).as_bytes());
                plain.push(format!("{} {REQ}", t + 2));
                plain.push(format!("{} {}", t + 2, snapshot(101 + i, i + 2)));
            }
        }
    }
    plain
}

struct Replayed {
    dump: Option<String>,
    last_id: u64,
    checks: u64,
    mismatches: u64,
    trades: u64,
    counters: ReplayCounters,
}

fn replay(inputs: &[PathBuf]) -> Replayed {
    let mut p =
        Pipeline::new(PipelineConfig { output: OutputMode::None, auto_symbols: true, ..Default::default() }, &[]);
    let counters = {
        let mut r = Replayer::new(&mut p);
        r.run(inputs, ReplayOptions::default(), &mut |p| {
            p.output().discard();
            true
        })
        .unwrap();
        r.counters()
    };
    let s = &p.symbols()[0];
    Replayed {
        dump: p.dump_book_json(0),
        last_id: s.book().last_update_id(),
        checks: s.audit().counters().checks,
        mismatches: s.audit().counters().mismatches,
        trades: p.stats().trades,
        counters,
    }
}

#[test]
fn take_numbers_are_one_past_the_highest_and_never_shared() {
    let d = tmp("takes");
    let date = d.join("btcusdt/2024-08-08");
    assert_eq!(highest_take(&date).unwrap(), 0, "a missing folder has no takes");
    assert_eq!(create_take(&date).unwrap().0, 1);
    assert_eq!(create_take(&date).unwrap().0, 2);
    assert_eq!(create_take(&date).unwrap().0, 3, "existing takes 1, 2 -> 3");
    // A gap (take 2 deleted) is not refilled: numbers stay chronological.
    std::fs::remove_dir(date.join("take_2")).unwrap();
    std::fs::create_dir(date.join("take_x")).unwrap();
    std::fs::write(date.join("notes.txt"), "x").unwrap();
    assert_eq!(create_take(&date).unwrap().0, 4);
    std::fs::create_dir(date.join("take_10")).unwrap();
    assert_eq!(create_take(&date).unwrap().0, 11);
    // Racing recorders: 8 threads each take 6 numbers at once; none is given twice.
    let race = d.join("ethusdt/2024-08-08");
    let got: Vec<u32> = std::thread::scope(|s| {
        let hs: Vec<_> =
            (0..8).map(|_| s.spawn(|| (0..6).map(|_| create_take(&race).unwrap().0).collect::<Vec<_>>())).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let set: BTreeSet<u32> = got.iter().copied().collect();
    assert_eq!(set.len(), got.len(), "a take number given twice: {got:?}");
    assert_eq!(set, (1..=48).collect(), "numbers are dense under a race with no deletions");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn recorder_takes_the_next_take_and_marks_the_run() {
    let d = tmp("runs");
    let t = MIDNIGHT - 10 * SECOND_NS;
    for expect in 1..=2 {
        let mut rec = Recorder::new(cfg(&d, false), &["BTCUSDT", "ethusdt"], t).unwrap();
        rec.prepare(t).unwrap();
        let take = rec.take_dir(0).unwrap().to_path_buf();
        assert_eq!(take, d.join(format!("btcusdt/2024-08-08/take_{expect}")));
        assert_eq!(rec.take_dir(1).unwrap(), d.join(format!("ethusdt/2024-08-08/take_{expect}")));
        assert_eq!(std::fs::read_to_string(take.join(".run")).unwrap().trim(), rec.run_id());
        rec.finish();
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn lines_are_buffered_until_tick_and_written_whole() {
    let d = tmp("flush");
    let c = RecorderConfig { buffer_bytes: 4096, flush_bytes: 1024, ..cfg(&d, false) };
    let t0 = MIDNIGHT + 5 * HOUR_NS;
    let mut rec = Recorder::new(c, &["xyzusdt"], t0).unwrap();
    let line = diff(0);
    for k in 0..3 {
        rec.record(t0 + k, StreamKind::Depth, 0, line.as_bytes());
    }
    let file = d.join("xyzusdt/2024-08-09/take_1/orderbook/2024-08-09T05.log");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "recording is memory only");
    rec.tick(t0 + SECOND_NS / 2);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "nothing due before a second");
    rec.tick(t0 + SECOND_NS);
    assert_eq!(read_lines(&file).len(), 3, "written at most a second after");
    assert_eq!(rec.counters().flushes, 1);
    // A buffer over flush_bytes is written at the next tick, not inside record.
    let t1 = t0 + 2 * SECOND_NS;
    let n = 1024 / line.len() + 1;
    for k in 0..n {
        rec.record(t1 + k as i64, StreamKind::Depth, 0, line.as_bytes());
    }
    assert_eq!(read_lines(&file).len(), 3);
    rec.tick(t1 + n as i64);
    assert_eq!(read_lines(&file).len(), 3 + n);
    // Without ticks, a full buffer is written by record itself rather than grown.
    let t2 = t1 + 10 * SECOND_NS;
    let m = 4096 / (line.len() + 20) + 2;
    for k in 0..m {
        rec.record(t2 + k as i64, StreamKind::Depth, 0, line.as_bytes());
    }
    assert!(read_lines(&file).len() > 3 + n, "overflow written without a tick");
    // A line longer than the buffer is written whole, on its own.
    let big = format!(r#"{{"lastUpdateId":1,"bids":[{}],"asks":[]}}"#, vec![r#"["1.0","1.0"]"#; 800].join(","));
    assert!(big.len() > 4096);
    rec.record_snapshot(t2 + 100, 0, "/api/v3/depth?symbol=XYZUSDT&limit=5000", big.as_bytes());
    // A newline inside a payload (legal JSON, never sent by Binance) must not split the line.
    rec.record(t2 + 101, StreamKind::Depth, 0, b"{\"a\":\n1}\n");
    let c = rec.finish();
    let lines = read_lines(&file);
    assert_eq!(lines.len() as u64, c.lines);
    assert_eq!(c.lines, 3 + n as u64 + m as u64 + 3);
    assert_eq!(lines[lines.len() - 3], format!("{} GET /api/v3/depth?symbol=XYZUSDT&limit=5000", t2 + 100));
    assert_eq!(lines[lines.len() - 2], format!("{} {big}", t2 + 100));
    assert_eq!(lines[lines.len() - 1], format!("{} {{\"a\": 1}} ", t2 + 101));
    assert_eq!(c.newlines_replaced, 1);
    assert!(lines[..3 + n].iter().all(|l| l.ends_with(&line)), "every line whole");
    assert_eq!((c.write_errors, c.dropped_lines, c.files, c.takes), (0, 0, 1, 1));
    assert_eq!(c.bytes, std::fs::metadata(&file).unwrap().len());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn hourly_rotation_gzips_closed_files_in_the_background() {
    let d = tmp("rotate");
    let t0 = MIDNIGHT + 10 * HOUR_NS - SECOND_NS; // 09:59:59
    let mut rec = Recorder::new(cfg(&d, true), &["xyzusdt"], t0).unwrap();
    let plain = record_market(&mut rec, t0, 20 * MS, 60, false); // to 10:00:00.2
    let take = d.join("xyzusdt/2024-08-09/take_1");
    // The live loop ticks on: two hours later the 09 and 10 files are closed.
    rec.tick(t0 + 2 * HOUR_NS);
    let mut waited = 0;
    while rec.counters().compressed_files < 6 && waited < 500 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    // 09 and 10 of orderbook, trades and bookTickers: gzipped before finish, off this thread.
    assert_eq!(rec.counters().compressed_files, 6, "{:?}", tree(&take));
    // The 11 files opened at 11:00 are still empty at the end: removed, not kept or gzipped.
    let c = rec.finish();
    assert_eq!((c.files, c.compressed_files, c.compress_errors, c.write_errors), (6, 6, 0, 0));
    assert_eq!(
        tree(&take),
        [
            ".run",
            "bookTickers/2024-08-09T09.log.gz",
            "bookTickers/2024-08-09T10.log.gz",
            "orderbook/2024-08-09T09.log.gz",
            "orderbook/2024-08-09T10.log.gz",
            "trades/2024-08-09T09.log.gz",
            "trades/2024-08-09T10.log.gz",
        ]
        .map(|s| s.replace('/', std::path::MAIN_SEPARATOR_STR))
    );
    // Each is one valid gzip member (read with a single-member decoder) holding whole lines.
    let gz = take.join("orderbook/2024-08-09T09.log.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(File::open(&gz).unwrap()).read_to_string(&mut text).unwrap();
    assert!(text.starts_with(&format!("{t0} {REQ}\n")), "{}", &text[..80]);
    let lines: usize = tree(&take)[1..].iter().map(|f| read_lines(&take.join(f)).len()).sum();
    assert_eq!(lines as u64, c.lines);
    assert_eq!(c.lines, plain.len() as u64);
    // And replay reads the compressed capture to the same book as the plain recording.
    let one = d.join("one.log");
    std::fs::write(&one, plain.join("\n") + "\n").unwrap();
    let (a, b) = (replay(&[take]), replay(&[one]));
    assert!(a.dump.is_some());
    assert_eq!(
        (a.dump, a.last_id, a.checks, a.mismatches, a.trades),
        (b.dump, b.last_id, b.checks, b.mismatches, b.trades)
    );
    assert_eq!(a.checks, 60);
    let _ = std::fs::remove_dir_all(&d);
}

use std::io::Read;

#[test]
fn a_run_across_midnight_continues_in_the_new_date_and_replays_as_one() {
    let base = tmp("midnight");
    let d = base.join("cap");
    // Another run already holds take 1 of the new date: the crossing run takes the next number.
    std::fs::create_dir_all(d.join("xyzusdt/2024-08-09/take_1")).unwrap();
    let t0 = MIDNIGHT - SECOND_NS; // 23:59:59 -> 00:00:01
    let mut rec = Recorder::new(cfg(&d, true), &["xyzusdt"], t0).unwrap();
    let plain = record_market(&mut rec, t0, 100 * MS, 20, true);
    let c = rec.finish();
    assert_eq!((c.takes, c.write_errors, c.dropped_lines), (2, 0, 0));
    let (day1, day2) = (d.join("xyzusdt/2024-08-08/take_1"), d.join("xyzusdt/2024-08-09/take_2"));
    let id = rec.run_id().to_owned();
    for t in [&day1, &day2] {
        assert_eq!(std::fs::read_to_string(t.join(".run")).unwrap().trim(), id);
    }
    assert!(tree(&day1).contains(&"orderbook/2024-08-08T23.log.gz".replace('/', std::path::MAIN_SEPARATOR_STR)));
    assert!(tree(&day2).contains(&"orderbook/2024-08-09T00.log.gz".replace('/', std::path::MAIN_SEPARATOR_STR)));
    // Lines before midnight in the old date, from midnight on in the new one.
    let ob1 = read_lines(&day1.join("orderbook/2024-08-08T23.log.gz"));
    let ob2 = read_lines(&day2.join("orderbook/2024-08-09T00.log.gz"));
    assert!(ob1.iter().all(|l| l[..19].parse::<i64>().unwrap() < MIDNIGHT));
    assert!(ob2.iter().all(|l| l[..19].parse::<i64>().unwrap() >= MIDNIGHT));
    assert!(ob2.iter().any(|l| l.contains("lastUpdateId")), "the checkpoint snapshot is in the new date");

    let one = base.join("one.log");
    std::fs::write(&one, plain.join("\n") + "\n").unwrap();
    let reference = replay(&[one]);
    assert_eq!(reference.last_id, 120);
    assert_eq!((reference.checks, reference.mismatches), (20, 0));
    // The symbol folder (both dates, one run, plus an unrelated empty take), the two takes named
    // one by one, or the whole capture: the same book as the single file.
    for inputs in [vec![d.join("xyzusdt")], vec![day1.clone(), day2.clone()], vec![d.clone()]] {
        let r = replay(&inputs);
        assert_eq!(r.counters.runs, 1, "{inputs:?}");
        assert_eq!(
            (&r.dump, r.last_id, r.checks, r.mismatches, r.trades),
            (&reference.dump, reference.last_id, reference.checks, reference.mismatches, reference.trades),
            "{inputs:?}"
        );
    }
    // The new date alone syncs from the checkpoint snapshot and ends at the same book.
    let r = replay(&[d.join("xyzusdt/2024-08-09")]);
    assert_eq!((&r.dump, r.last_id), (&reference.dump, reference.last_id));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_torn_last_line_is_counted_and_replay_goes_on() {
    let d = tmp("torn");
    let t0 = MIDNIGHT + HOUR_NS;
    let mut rec = Recorder::new(cfg(&d, false), &["xyzusdt"], t0).unwrap();
    record_market(&mut rec, t0, 10 * MS, 10, false);
    rec.finish();
    // A kill mid-write: the last diff is cut in half.
    let ob = d.join("xyzusdt/2024-08-09/take_1/orderbook/2024-08-09T01.log");
    let text = std::fs::read(&ob).unwrap();
    let last_start = text[..text.len() - 1].iter().rposition(|&c| c == b'\n').unwrap() + 1;
    let cut = last_start + (text.len() - last_start) / 2;
    std::fs::OpenOptions::new().write(true).open(&ob).unwrap().set_len(cut as u64).unwrap();
    let r = replay(&[d.join("xyzusdt")]);
    assert_eq!(r.counters.torn_lines, 1);
    assert_eq!(r.counters.malformed_lines, 0);
    assert_eq!(r.last_id, 101 + 8, "every diff but the torn one applied");
    assert!(r.dump.is_some());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_folder_that_cannot_be_made_stops_recording_once_and_the_caller_goes_on() {
    let d = tmp("afile");
    // A path under a regular file: create_dir fails even for root (chmod would not stop root).
    std::fs::write(d.join("afile"), "not a folder").unwrap();
    let root = d.join("afile/sub");
    let t0 = MIDNIGHT;
    let mut rec = Recorder::new(cfg(&root, true), &["xyzusdt"], t0).unwrap();
    for i in 0..1000 {
        rec.record(t0 + i, StreamKind::Depth, 0, diff(0).as_bytes());
        rec.tick(t0 + i);
    }
    rec.record_snapshot(t0 + 1000, 0, REQ, snapshot(1, 1).as_bytes());
    assert!(!rec.is_active());
    let e = rec.error().unwrap().clone();
    assert!(e.path.starts_with(d.join("afile")), "{e}");
    assert!(e.to_string().starts_with("cannot create a take folder in "), "{e}");
    let c = rec.finish();
    assert_eq!((c.write_errors, c.lines, c.dropped_lines, c.files), (1, 0, 1002, 0));
    // prepare() is the startup check: the same failure, returned instead of printed.
    let mut rec = Recorder::new(cfg(&root, false), &["xyzusdt"], t0).unwrap();
    let e = rec.prepare(t0).unwrap_err();
    assert_eq!(e.kind, io::ErrorKind::NotADirectory, "{e}");
    assert_eq!(rec.counters().write_errors, 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_full_disk_keeps_whole_lines_and_counts_what_was_lost() {
    let d = tmp("full");
    let t0 = MIDNIGHT;
    let mut rec = Recorder::new(cfg(&d, false), &["xyzusdt"], t0).unwrap();
    for i in 0..5 {
        rec.record(t0 + i, StreamKind::Depth, 0, diff(i as u64).as_bytes());
    }
    rec.tick(t0 + SECOND_NS);
    for i in 5..8 {
        rec.record(t0 + SECOND_NS + i, StreamKind::Depth, 0, diff(i as u64).as_bytes());
        rec.record(t0 + SECOND_NS + i, StreamKind::Trade, 0, trade(i as u64).as_bytes());
    }
    rec.inject_write_error(io::Error::from_raw_os_error(28));
    rec.tick(t0 + 3 * SECOND_NS);
    for i in 8..10 {
        rec.record(t0 + 3 * SECOND_NS + i, StreamKind::Depth, 0, diff(i as u64).as_bytes());
        rec.tick(t0 + 3 * SECOND_NS + i);
    }
    let e = rec.error().unwrap();
    assert_eq!(e.op, "write");
    assert!(e.message.contains("No space left on device") || e.message.contains("os error 28"), "{e}");
    let c = rec.finish();
    assert_eq!(c.write_errors, 1);
    assert_eq!(c.lines, 5);
    assert_eq!(c.dropped_lines, 3 + 3 + 2, "both buffers at the failure, and every line after");
    let lines = read_lines(&d.join("xyzusdt/2024-08-09/take_1/orderbook/2024-08-09T00.log"));
    assert_eq!(lines.len(), 5);
    assert!(lines.iter().all(|l| l.ends_with(r#""a":[]}}"#)));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn time_going_back_stays_in_the_current_file_and_bad_input_is_counted() {
    let d = tmp("back");
    let t0 = MIDNIGHT + 11 * HOUR_NS;
    let mut rec = Recorder::new(cfg(&d, false), &["xyzusdt"], t0).unwrap();
    rec.record(t0 + 1, StreamKind::Depth, 0, diff(0).as_bytes());
    rec.record(t0 - 1, StreamKind::Depth, 0, diff(1).as_bytes()); // 10:59:59.999999999
    rec.record(t0 + 2, StreamKind::Trade, 7, trade(0).as_bytes()); // no symbol 7
    rec.record(t0 + 2, StreamKind::Trade, usize::MAX / 4 + 1, trade(0).as_bytes()); // *4 wraps to 0
    rec.record_snapshot(t0 + 2, 1, REQ, snapshot(1, 1).as_bytes());
    assert_eq!(rec.poll_snapshot_wanted(), None);
    let c = rec.finish();
    assert_eq!((c.files, c.lines, c.dropped_lines), (1, 2, 4));
    rec.record(t0 + 3, StreamKind::Depth, 0, diff(2).as_bytes()); // after finish
    assert_eq!(rec.counters().dropped_lines, 5);
    assert_eq!(tree(&d.join("xyzusdt/2024-08-09/take_1")).len(), 2);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_configurations_are_refused_before_touching_the_disk() {
    let root = std::env::temp_dir().join(format!("tickfeed-rec-{}-never", std::process::id()));
    let bad = |c: RecorderConfig| Recorder::new(c, &["btcusdt"], 0).err().unwrap();
    let base = || RecorderConfig { ..RecorderConfig::new(&root) };
    assert_eq!(bad(RecorderConfig { rotate_ns: 7 * SECOND_NS, ..base() }), ConfigError::Rotation(7 * SECOND_NS));
    assert_eq!(bad(RecorderConfig { rotate_ns: 1500 * MS, ..base() }), ConfigError::Rotation(1500 * MS));
    assert_eq!(bad(RecorderConfig { rotate_ns: 0, ..base() }), ConfigError::Rotation(0));
    assert_eq!(bad(RecorderConfig { flush_bytes: 1 << 20, ..base() }), ConfigError::Buffering);
    assert_eq!(bad(RecorderConfig { gzip_level: 10, ..base() }), ConfigError::GzipLevel(10));
    let e = Recorder::new(base(), &["../etc"], 0).err().unwrap();
    assert_eq!(e, ConfigError::Symbol("../etc".into()));
    assert!(Recorder::new(RecorderConfig { rotate_ns: 2 * HOUR_NS, ..base() }, &["a1"], 0).is_ok());
    assert!(!root.exists());
}
