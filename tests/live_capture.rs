//! Capture proof: `tickfeed run --record` against the simulator, with a sequence gap and a TCP reset
//! injected mid-run, then `tickfeed replay` of the capture. The replay must go through the same book
//! states as the live run, id for id (every `tob-json` line), and end with the same book, which is
//! also the simulator's reference book at that id.

mod util;

use std::time::Duration;

use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn recorded_run_with_gap_and_reconnect_replays_id_for_id() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("live-capture");
    let (rec, live, replayed) = (dir.join("rec"), dir.join("live"), dir.join("replayed"));
    let stats = dir.join("stats.json");
    let child = RunArgs::against(&sim)
        .duration(4.0)
        .output("tob-json")
        .depth_limit(5000)
        .streams("depth,trade,bookTicker")
        .record(&rec)
        .dump_book(&live)
        .stats(&stats)
        .spawn();
    // Synced (exchangeInfo + first snapshot), then a gap, then a resync, then a TCP reset.
    util::wait_until("first snapshot", WAIT, || sim.counters().rest_requests >= 2);
    std::thread::sleep(Duration::from_millis(400));
    sim.faults().drop_next_diff();
    util::wait_until("gap injected", WAIT, || sim.counters().gaps_injected == 1);
    util::wait_until("resync snapshot", WAIT, || sim.counters().rest_requests >= 3);
    std::thread::sleep(Duration::from_millis(400));
    sim.faults().abort_connections();
    util::wait_until("reconnect", WAIT, || sim.counters().ws_connections >= 2);
    util::wait_until("snapshot after reconnect", WAIT, || sim.counters().rest_requests >= 4);
    let f = util::wait_tickfeed(child, LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&stats);
    assert_eq!((s["gaps"].as_u64(), s["reconnects"].as_u64()), (Some(1), Some(1)), "{}", f.stderr);
    assert_eq!(s["record_errors"], 0);
    assert_eq!(s["book_ticker_mismatches"], 0);
    let live_id = util::assert_dump_matches(&sim, &live, "BTCUSDT");

    let r = util::run_tickfeed(
        &[
            "replay",
            rec.to_str().unwrap(),
            "--output",
            "tob-json",
            "--quiet",
            "--dump-book",
            replayed.to_str().unwrap(),
            "--stats",
            dir.join("replay-stats.json").to_str().unwrap(),
        ],
        LIMIT,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    // The book states, id for id: every book change line, receive time included (the capture
    // stores the receive time the live run stamped).
    let live_lines: Vec<&str> = f.stdout.lines().collect();
    let replay_lines: Vec<&str> = r.stdout.lines().collect();
    assert!(live_lines.len() > 50, "{} live book lines", live_lines.len());
    assert_eq!(live_lines.len(), replay_lines.len(), "number of book states");
    for (i, (a, b)) in live_lines.iter().zip(&replay_lines).enumerate() {
        assert_eq!(a, b, "book state {i} differs");
    }
    let a = std::fs::read_to_string(live.join("BTCUSDT.json")).unwrap();
    let b = std::fs::read_to_string(replayed.join("BTCUSDT.json")).unwrap();
    assert_eq!(a, b, "final books differ");
    // The replay saw the same discontinuities (the reconnect shows up as a gap in the recording)
    // and resynced from the recorded snapshots.
    let rs = json(&dir.join("replay-stats.json"));
    assert_eq!(rs["symbols"]["BTCUSDT"]["lastUpdateId"].as_u64(), Some(live_id));
    assert!(rs["resyncs"].as_u64().unwrap() >= 2, "{rs}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A disk error in the middle of a recorded run (here: files past a size limit fail with EFBIG, as
/// a full disk fails with ENOSPC) is reported once and stops the recording; the live book and the
/// stdout output go on, and the book stays exact.
#[test]
fn a_recording_write_error_leaves_the_live_run_going() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("live-capture-efbig");
    let (rec, live, stats) = (dir.join("rec"), dir.join("live"), dir.join("stats.json"));
    // sh: ignore SIGXFSZ (so a write past the limit fails with EFBIG instead of killing the
    // process; an ignored signal stays ignored across exec), limit files to 256 x 512 bytes, exec.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 256; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tickfeed"))
        .args(
            RunArgs::against(&sim)
                .duration(5.0)
                .output("tob-json")
                .streams("depth,trade,bookTicker")
                .record(&rec)
                .dump_book(&live)
                .stats(&stats)
                .to_vec(),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let f = util::wait_tickfeed(child, LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&stats);
    assert_eq!(s["record_errors"], 1, "{}", f.stderr);
    assert!(s["recorded_lines"].as_u64().unwrap() > 0);
    let reported: Vec<&str> = f.stderr.lines().filter(|l| l.contains("File too large")).collect();
    assert_eq!(reported.len(), 1, "reported once:\n{}", f.stderr);
    // The feed went on after the failure: book lines kept coming until the end of the run, and
    // the final book is the exchange's.
    let lines: Vec<serde_json::Value> = f.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 100, "{} book lines", lines.len());
    util::assert_dump_matches(&sim, &live, "BTCUSDT");
    let recorded_until = s["recorded_lines"].as_u64().unwrap();
    assert!(s["events"].as_u64().unwrap() > recorded_until, "events kept flowing after recording stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--record-compress none` keeps the capture as plain `.log` files (gzip is the default), and
/// they replay to the live run's book; a bad value is a one-line error.
#[test]
fn plain_capture_files_when_compression_is_off() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("live-capture-plain");
    let (rec, live, replayed) = (dir.join("rec"), dir.join("live"), dir.join("replayed"));
    let f = RunArgs::against(&sim)
        .duration(1.5)
        .output("none")
        .record(&rec)
        .flag("--record-compress", "none")
        .dump_book(&live)
        .run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let mut files = Vec::new();
    let mut stack = vec![rec.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    for p in &files {
        assert_eq!(p.extension().and_then(|e| e.to_str()), Some("log"), "{}", p.display());
    }
    let r = util::run_tickfeed(
        &["replay", rec.to_str().unwrap(), "--output", "none", "--quiet", "--dump-book", replayed.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let a = std::fs::read_to_string(live.join("BTCUSDT.json")).unwrap();
    let b = std::fs::read_to_string(replayed.join("BTCUSDT.json")).unwrap();
    assert_eq!(a, b);

    let bad = RunArgs::new().record("x").flag("--record-compress", "zip").run(LIMIT);
    assert_eq!(bad.code, Some(2));
    assert_eq!(bad.stderr.trim(), "tickfeed: --record-compress: 'zip' is not gzip or none");
    let _ = std::fs::remove_dir_all(&dir);
}
