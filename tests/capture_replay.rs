//! Capture round trip: the real Binance recordings are fed through the recorder as if live (each
//! line's receive time and frame, stream kinds mapped, snapshots recorded with a request line),
//! then `tickfeed replay` of the capture folder must give exactly the books, stats and book-change
//! lines of `tickfeed replay` of the original files. Also: pacing and the replay flags' errors.
//! Skips, saying so, where the recordings are absent.

mod util;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tickfeed::binance::{parse_stream_name, split_envelope, Envelope, StreamKind};
use tickfeed::capture::{open_recording, split_line, RecordedLine};
use tickfeed::capture::{Recorder, RecorderConfig};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickfeed-capture-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn go(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut v = Vec::new();
    go(dir, dir, &mut v);
    v.sort();
    v
}

struct Replay {
    stdout: String,
    stats: serde_json::Value,
    dumps: BTreeMap<String, String>,
}

fn replay(args: &[&str], inputs: &[PathBuf], out_dir: &Path) -> Replay {
    let _ = std::fs::remove_dir_all(out_dir);
    std::fs::create_dir_all(out_dir).unwrap();
    let stats = out_dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .arg("replay")
        .args(args)
        .arg("--dump-book")
        .arg(out_dir.join("books"))
        .arg("--stats")
        .arg(&stats)
        .args(inputs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut dumps = BTreeMap::new();
    for e in std::fs::read_dir(out_dir.join("books")).unwrap() {
        let p = e.unwrap().path();
        dumps.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap());
    }
    Replay {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stats: serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap(),
        dumps,
    }
}

/// One recorded line of an input file: (receive ns, input index, line number, text).
type Line = (i64, usize, usize, Vec<u8>);

fn read_all(inputs: &[PathBuf]) -> Vec<Line> {
    let mut all = Vec::new();
    for (i, f) in inputs.iter().enumerate() {
        let mut r = open_recording(f).unwrap();
        let mut n = 0;
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).unwrap() == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            let RecordedLine::Data { recv_ns, .. } = split_line(&line) else { panic!("{}: bad line {n}", f.display()) };
            all.push((recv_ns, i, n, line));
            n += 1;
        }
    }
    // As the live handler would have received them: by time (the files are each in time order).
    all.sort_by_key(|l| (l.0, l.1, l.2));
    all
}

#[test]
fn capture_of_the_real_recordings_replays_to_the_same_books() {
    let Some(btc0808) = util::recording("btcusdt_20240808.gz") else { return };
    // The other two make it a capture across a real midnight with two symbols; used when present.
    let mut inputs = vec![btc0808];
    inputs.extend(util::recording("btcusdt_20240809.gz"));
    inputs.extend(util::recording("ethusdt_20240808.gz"));
    let symbol_of = |i: usize| {
        let name = inputs[i].file_name().unwrap().to_string_lossy().into_owned();
        name[..name.find('_').unwrap()].to_ascii_uppercase()
    };
    let dir = tmp("real");
    let cap = dir.join("cap");

    // "Live": every line in receive order, recorder ticked after each, as the event loop would.
    let lines = read_all(&inputs);
    let t0 = lines[0].0;
    let cfg = RecorderConfig { rotate_ns: 60_000_000_000, compress: true, ..RecorderConfig::new(&cap) };
    let mut rec = Recorder::new(cfg, &[], t0).unwrap();
    let (mut frames, mut snapshots) = (0u64, 0u64);
    for (recv_ns, file, _, line) in &lines {
        let RecordedLine::Data { json, .. } = split_line(line) else { unreachable!() };
        match split_envelope(json).unwrap() {
            Envelope::Stream { stream, .. } => {
                let name = parse_stream_name(stream).unwrap();
                let sym = rec.add_symbol(name.symbol).unwrap();
                rec.record(*recv_ns, name.kind, sym, json);
                frames += 1;
            }
            Envelope::Snapshot(_) => {
                let symbol = symbol_of(*file);
                let sym = rec.add_symbol(&symbol).unwrap();
                rec.record_snapshot(*recv_ns, sym, &format!("GET /api/v3/depth?symbol={symbol}&limit=1000"), json);
                snapshots += 1;
            }
            other => panic!("unexpected frame {other:?}"),
        }
        rec.tick(*recv_ns);
    }
    let c = rec.finish();
    assert_eq!((c.write_errors, c.dropped_lines, c.compress_errors), (0, 0, 0));
    assert_eq!(c.lines, frames + 2 * snapshots);
    assert_eq!(c.compressed_files, c.files, "every file gzipped on rotation or at the end");
    eprintln!(
        "captured {} lines, {} bytes into {} files in {} takes (run {})",
        c.lines,
        c.bytes,
        c.files,
        c.takes,
        rec.run_id()
    );

    // The layout: lowercase symbol, UTC date, take_1, kind folders, 60 s files, all gzipped.
    let tree = files(&cap);
    assert!(tree.iter().all(|f| f.ends_with(".log.gz") || f.ends_with("/.run")), "{tree:?}");
    assert!(tree.contains(&"btcusdt/2024-08-08/take_1/.run".to_owned()));
    assert!(tree.contains(&"btcusdt/2024-08-08/take_1/orderbook/2024-08-08T235900.log.gz".to_owned()), "{tree:?}");
    assert!(tree.contains(&"btcusdt/2024-08-08/take_1/bookTickers/2024-08-08T235900.log.gz".to_owned()));
    assert!(tree.contains(&"btcusdt/2024-08-08/take_1/trades/2024-08-08T235400.log.gz".to_owned()));
    if inputs.len() == 3 {
        assert!(tree.contains(&"btcusdt/2024-08-09/take_1/orderbook/2024-08-09T000000.log.gz".to_owned()));
        assert!(tree.contains(&"ethusdt/2024-08-08/take_1/orderbook/2024-08-08T235400.log.gz".to_owned()));
        // ethusdt's recording ends before midnight, but a live run goes on: its take in the new
        // date is opened at midnight and, nothing arriving, holds only the run marker.
        assert_eq!(c.takes, 4);
        assert!(!tree.iter().any(|f| f.starts_with("ethusdt/2024-08-09/") && !f.ends_with(".run")), "{tree:?}");
    }
    // The snapshot's request line is just before its body.
    let first_ob = cap.join("btcusdt/2024-08-08/take_1/orderbook/2024-08-08T235400.log.gz");
    let ob: Vec<String> = open_recording(&first_ob).unwrap().lines().map(Result::unwrap).collect();
    let body = ob.iter().position(|l| l.contains("{\"lastUpdateId\":50093239218")).unwrap();
    assert!(ob[body - 1].ends_with(" GET /api/v3/depth?symbol=BTCUSDT&limit=1000"), "{}", ob[body - 1]);

    // Replay both ways: the capture root must match the original files exactly.
    // Trusting levels beyond the one snapshot keeps BTCUSDT synced to the end (see replay_real),
    // so whole books are compared.
    let args = ["--quiet", "--output", "tob-json", "--trust-beyond-snapshot"];
    let orig = replay(&args, &inputs, &dir.join("orig"));
    let capt = replay(&args, std::slice::from_ref(&cap), &dir.join("capt"));
    assert_eq!(orig.dumps.keys().collect::<Vec<_>>(), capt.dumps.keys().collect::<Vec<_>>());
    for (k, v) in &orig.dumps {
        assert!(capt.dumps[k] == *v, "{k}: dumped books differ");
    }
    let btc: serde_json::Value = serde_json::from_str(&capt.dumps["BTCUSDT.json"]).unwrap();
    let want_id = if inputs.len() == 3 { 50093696318u64 } else { btc["lastUpdateId"].as_u64().unwrap() };
    assert_eq!(btc["lastUpdateId"], want_id);
    let (mut a, mut b) = (orig.stats.clone(), capt.stats.clone());
    for v in [&mut a, &mut b] {
        let m = v.as_object_mut().unwrap();
        m.remove("process_ns"); // wall-clock timing
        m.remove("lines"); // the capture adds one request line per snapshot
    }
    assert_eq!(a, b, "stats differ");
    assert_eq!(capt.stats["lines"].as_u64().unwrap(), orig.stats["lines"].as_u64().unwrap() + snapshots);
    assert_eq!((capt.stats["gaps"].as_u64(), capt.stats["book_ticker_mismatches"].as_u64()), (Some(0), Some(0)));
    assert_eq!(capt.stats["runs"], 1);
    // Every book change line is the same (order differs only between symbols: the originals
    // were given one file after another, the capture is merged by time).
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.lines().collect();
        v.sort_unstable();
        v.join("\n")
    };
    assert_eq!(orig.stdout.lines().count(), capt.stdout.lines().count());
    assert!(sorted(&orig.stdout) == sorted(&capt.stdout), "book-change lines differ");
    let per_symbol = |s: &str, sym: &str| s.lines().filter(|l| l.contains(sym)).collect::<Vec<_>>().join("\n");
    assert!(per_symbol(&orig.stdout, "\"BTCUSDT\"") == per_symbol(&capt.stdout, "\"BTCUSDT\""), "BTCUSDT order");

    // The symbol folder and the first take alone are right too (the take ends at midnight).
    let sym = replay(&args, &[cap.join("btcusdt")], &dir.join("sym"));
    assert!(sym.dumps["BTCUSDT.json"] == orig.dumps["BTCUSDT.json"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tiny_capture(root: &Path, t0: i64, step_ns: i64, n: u64) {
    let snap = r#"{"lastUpdateId":100,"bids":[["100.00000000","1.00000000"]],"asks":[["101.00000000","1.00000000"]]}"#;
    let mut rec = Recorder::new(RecorderConfig { ..RecorderConfig::new(root) }, &["xyzusdt"], t0).unwrap();
    rec.record_snapshot(t0, 0, "/api/v3/depth?symbol=XYZUSDT&limit=5", snap.as_bytes());
    for i in 0..n {
        let u = 101 + i;
        let t = t0 + (i as i64 + 1) * step_ns;
        let d = format!(
            r#"{{"stream":"xyzusdt@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"XYZUSDT","U":{u},"u":{u},"b":[["100.00000000","{}.00000000"]],"a":[]}}}}"#,
            i + 2
        );
        rec.record(t, StreamKind::Depth, 0, d.as_bytes());
        rec.tick(t);
    }
    rec.finish();
}

#[test]
fn replay_paces_at_the_recorded_speed() {
    let dir = tmp("pace");
    let cap = dir.join("cap");
    // 8 diffs 100 ms apart: 800 ms recorded.
    tiny_capture(&cap, 1_723_161_600_000_000_000, 100_000_000, 8);
    let run = |extra: &[&str]| {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
            .args(["replay", "--quiet", "--output", "tob"])
            .args(extra)
            .arg(&cap)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (t.elapsed(), String::from_utf8(out.stdout).unwrap())
    };
    let (paced, out) = run(&["--pace", "recorded", "--speed", "4"]);
    assert!(paced >= Duration::from_millis(200), "800 ms at x4 took {paced:?}");
    assert_eq!(out.lines().count(), 1 + 8, "the snapshot join and every diff");
    assert!(out.lines().last().unwrap().contains(" u 108"), "{out}");
    let (_, fast) = run(&[]);
    assert_eq!(fast, out, "pacing changes when, not what");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_flag_errors_are_one_line() {
    let bin = env!("CARGO_BIN_EXE_tickfeed");
    let dir = tmp("errs");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let empty = dir.join("empty").to_string_lossy().into_owned();
    for (args, want) in [
        (vec!["replay", "--pace", "slow", "x"], "--pace: unknown mode 'slow'"),
        (vec!["replay", "--speed", "0", "x"], "--speed: '0' is not a positive number"),
        (vec!["replay", "--pace", "fast", "--speed", "2", "x"], "--speed needs --pace recorded"),
        (vec!["replay", &empty], "no recording files in this folder"),
    ] {
        let out = Command::new(bin).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
