//! `tickfeed replay --venue usdm`: USDⓈ-M futures recordings in the shared line format (the
//! `@depth@0ms`, `@trade` and `@bookTicker` streams of hftbacktest's futures collector, and
//! `/fapi/v1/depth` snapshot bodies) through the futures procedure.
//!
//! The fixtures under tests/data/usdm are written by hand from Binance's documented futures
//! payloads: ids skip between diffs and `pu` chains them; each book state in them was worked out
//! by hand, so the dumps below are independent answers, not the handler's own output.

mod util;

use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/usdm").join(name)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Replays `files` with `--venue usdm`, returning the stats and the BTCUSDT dump.
fn replay_usdm(name: &str, files: &[&Path]) -> (serde_json::Value, String) {
    let dir = util::temp_dir(name);
    let (stats, dump) = (dir.join("stats.json"), dir.join("dump"));
    let mut args: Vec<&str> = vec!["replay", "--venue", "usdm", "--output", "none"];
    let (s, d) = (stats.to_str().unwrap(), dump.to_str().unwrap());
    args.extend(["--stats", s, "--dump-book", d]);
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let done = util::run_tickfeed(&args, Duration::from_secs(60));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    (json(&stats), std::fs::read_to_string(dump.join("BTCUSDT.json")).unwrap())
}

#[test]
fn a_futures_recording_syncs_by_pu_and_its_book_tickers_agree() {
    let (st, dump) = replay_usdm("usdm-small", &[&fixture("btcusdt_usdm_small.txt")]);
    // Snapshot 1006 drops the diff 1000..1003 (u < 1006), takes 1005..1008 (U <= 1006 <= u),
    // then 1011..1015 (pu 1008) and 1016..1020 (pu 1015), though U > previous u + 1 each time.
    assert_eq!(
        dump,
        "{\"symbol\":\"BTCUSDT\",\"lastUpdateId\":1020,\
         \"bids\":[[\"64335.90000000\",\"2.00000000\"],[\"64335.50000000\",\"0.25000000\"],[\"64335.00000000\",\"4.00000000\"]],\
         \"asks\":[[\"64336.20000000\",\"0.70000000\"],[\"64337.00000000\",\"1.00000000\"]]}\n"
    );
    assert_eq!(st["gaps"], 0);
    assert_eq!(st["resyncs"], 0);
    assert_eq!(st["bad_messages"], 0);
    assert_eq!(st["depth_updates"], 4);
    assert_eq!(st["trades"], 2, "futures trades (with X) are decoded");
    assert_eq!(st["book_tickers"], 4);
    // The bookTickers at u=1015 and u=1020 meet the book at those ids (1003 comes before the
    // sync, 1018 falls inside a diff).
    assert_eq!(st["book_ticker_checks"], 2);
    assert_eq!(st["book_ticker_mismatches"], 0);
}

#[test]
fn a_pu_break_is_a_gap_and_the_next_snapshot_in_the_file_resyncs_the_book() {
    let (st, dump) = replay_usdm("usdm-break", &[&fixture("btcusdt_usdm_pu_break.txt")]);
    // After u=1020 comes pu=1024: a gap. Snapshot 1030 then drops 1026..1029 and takes
    // 1030..1031, then 1033..1035.
    assert_eq!(st["gaps"], 1);
    assert_eq!(st["resyncs"], 1);
    assert_eq!(st["symbols"]["BTCUSDT"]["synced"], true);
    assert_eq!(
        dump,
        "{\"symbol\":\"BTCUSDT\",\"lastUpdateId\":1035,\
         \"bids\":[[\"64335.90000000\",\"2.50000000\"],[\"64335.50000000\",\"0.25000000\"],[\"64335.00000000\",\"4.00000000\"]],\
         \"asks\":[[\"64336.20000000\",\"0.65000000\"],[\"64338.00000000\",\"2.00000000\"]]}\n"
    );
    assert_eq!(st["book_ticker_checks"], 4);
    assert_eq!(st["book_ticker_mismatches"], 0);
}

#[test]
fn every_futures_depth_stream_name_is_replayed() {
    let text = std::fs::read_to_string(fixture("btcusdt_usdm_small.txt")).unwrap();
    let dir = util::temp_dir("usdm-names");
    for name in ["@depth", "@depth@100ms", "@depth@500ms"] {
        let f = dir.join(format!("f{}.txt", name.replace('@', "_")));
        std::fs::write(&f, text.replace("@depth@0ms", name)).unwrap();
        let (st, _) = replay_usdm(&format!("usdm-name{}", name.replace('@', "_")), &[&f]);
        assert_eq!((st["depth_updates"].as_u64(), st["gaps"].as_u64()), (Some(4), Some(0)), "{name}");
        assert_eq!(st["book_ticker_checks"], 2, "{name}");
    }
}

/// A spot diff has no `T` and no `pu`: under `--venue usdm` the replay stops with one line naming
/// the file and the line, rather than leaving a book that never moves.
#[test]
fn a_spot_recording_under_usdm_is_refused_with_one_line() {
    let dir = util::temp_dir("usdm-spot");
    let f = dir.join("spot.txt");
    std::fs::write(
        &f,
        "1723161253937085768 {\"stream\":\"btcusdt@depth@100ms\",\"data\":{\"e\":\"depthUpdate\",\"E\":1723161255208,\
         \"s\":\"BTCUSDT\",\"U\":50093239189,\"u\":50093239202,\"b\":[[\"61737.63000000\",\"0.00000000\"]],\"a\":[]}}\n",
    )
    .unwrap();
    let done = util::run_tickfeed(
        &["replay", "--venue", "usdm", "--output", "none", "--quiet", f.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", done.stderr);
    assert!(lines[0].contains("spot.txt: line 1 is a spot depth diff"), "{}", lines[0]);
    assert!(lines[0].contains("without --venue usdm"), "{}", lines[0]);
    // The real spot recording, where present, the same way.
    if let Some(eth) = util::recording("ethusdt_20240808.gz") {
        let done = util::run_tickfeed(
            &["replay", "--venue", "usdm", "--output", "none", "--quiet", eth.to_str().unwrap()],
            Duration::from_secs(60),
        );
        assert_eq!(done.code, Some(2), "{}", done.stderr);
        assert!(done.stderr.contains("line 2 is a spot depth diff"), "{}", done.stderr);
    }
}

/// And the other way: a futures recording replayed as spot is refused too (spot's `U == id + 1`
/// would call every futures diff a gap).
#[test]
fn a_futures_recording_under_spot_is_refused_with_one_line() {
    let text = std::fs::read_to_string(fixture("btcusdt_usdm_small.txt")).unwrap();
    let dir = util::temp_dir("usdm-as-spot");
    for (name, body) in [("0ms", text.clone()), ("100ms", text.replace("@depth@0ms", "@depth@100ms"))] {
        let f = dir.join(format!("{name}.txt"));
        std::fs::write(&f, body).unwrap();
        let done = util::run_tickfeed(
            &["replay", "--output", "none", "--quiet", f.to_str().unwrap()],
            Duration::from_secs(30),
        );
        assert_eq!(done.code, Some(2), "{name}: {}", done.stderr);
        assert!(done.stderr.contains("line 1 is a USDⓈ-M futures depth diff"), "{name}: {}", done.stderr);
        assert!(done.stderr.contains("--venue usdm"), "{}", done.stderr);
    }
}

#[test]
fn an_unknown_venue_is_a_one_line_error() {
    let f = fixture("btcusdt_usdm_small.txt");
    let done = util::run_tickfeed(&["replay", "--venue", "coinm", f.to_str().unwrap()], Duration::from_secs(30));
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(done.stderr.contains("unknown venue 'coinm' (expected spot or usdm)"), "{}", done.stderr);
    assert_eq!(done.stderr.trim().lines().count(), 1, "{}", done.stderr);
}

/// A recording of the futures simulator (tests/data/usdm/sim_btcusdt_usdm.txt.gz, written by
/// `live_usdm::regenerate_the_futures_recording_fixture`): thousands of lines, ids that skip, one
/// diff dropped on the wire. Replayed, the book ends equal to the simulator's own reference book
/// (saved beside it when it was recorded), after one gap and one resync from the recorded
/// snapshot.
#[test]
fn a_recording_of_the_futures_simulator_replays_to_its_reference_book() {
    let (st, dump) = replay_usdm("usdm-sim", &[&fixture("sim_btcusdt_usdm.txt.gz")]);
    let want = std::fs::read_to_string(fixture("sim_btcusdt_usdm.reference.json")).unwrap();
    assert!(dump == want, "the replayed book differs from the simulator's reference");
    assert_eq!(st["gaps"], 1);
    assert_eq!(st["resyncs"], 1);
    assert_eq!(st["bad_messages"], 0);
    assert!(st["depth_updates"].as_u64().unwrap() > 200, "{st}");
    assert!(st["trades"].as_u64().unwrap() > 1000, "{st}");
    assert!(st["book_ticker_checks"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["book_ticker_mismatches"], 0);
}
