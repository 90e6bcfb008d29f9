//! Replays the real Binance recordings through the pipeline and checks every figure verified on
//! them (see ../shared/data/binance/README.md). Skips, saying so, where the recordings are absent.

mod util;

use std::process::Command;
use tickfeed::book::Side;
use tickfeed::book::SyncPoint;
use tickfeed::capture::{open_recording, split_line, RecordedLine, ReplayOptions, Replayer};
use tickfeed::output::OutputMode;
use tickfeed::pipeline::{FrameOutcome, Pipeline, PipelineConfig};

/// The verified figures follow the plain official procedure, which keeps a book synced after its
/// best price leaves the snapshot's range (BTCUSDT falls below the 1000-level snapshot's deepest
/// bid at U=50093366465): these pipelines trust levels beyond the snapshot, as it does.
fn quiet_pipeline() -> Pipeline {
    let mut cfg = PipelineConfig { output: OutputMode::TobJson, auto_symbols: true, ..PipelineConfig::default() };
    cfg.book.trust_beyond_snapshot = true;
    Pipeline::new(cfg, &[])
}

/// Feeds files line by line (single-symbol files: a snapshot goes to the file's symbol), checking
/// after every frame that a synced book is never crossed.
fn replay_checked(p: &mut Pipeline, files: &[std::path::PathBuf]) -> u64 {
    let mut checked = 0u64;
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
            match p.on_frame(recv_ns, json) {
                FrameOutcome::Snapshot => {
                    assert_eq!(p.symbols().len(), 1, "single-symbol recording");
                    p.on_snapshot(0, recv_ns, json).unwrap();
                }
                FrameOutcome::Bad(e) => panic!("bad frame {e}"),
                _ => {}
            }
            for s in p.symbols() {
                if s.book().is_synced() {
                    let (b, a) = (s.book().ladder().best_bid().unwrap(), s.book().ladder().best_ask().unwrap());
                    assert!(b.tick < a.tick, "crossed book at u={}", s.book().last_update_id());
                    checked += 1;
                }
            }
            p.output().discard();
        }
    }
    checked
}

#[test]
fn btcusdt_two_days_match_verified_figures() {
    let (Some(a), Some(b)) = (util::recording("btcusdt_20240808.gz"), util::recording("btcusdt_20240809.gz")) else {
        return;
    };
    let mut p = quiet_pipeline();
    let checked = replay_checked(&mut p, &[a, b]);
    let s = &p.symbols()[0];
    assert_eq!(s.symbol(), "BTCUSDT");
    let book = s.book();
    assert_eq!(
        book.sync_point(),
        Some(SyncPoint { snapshot_id: 50093239218, dropped: 2, first_applied: Some((50093239208, 50093239224)) })
    );
    assert!(book.is_synced());
    assert_eq!(book.counters().gaps, 0);
    assert_eq!(book.counters().resyncs, 0);
    assert_eq!(book.last_update_id(), 50093696318);
    assert_eq!(book.ladder().len(Side::Bid), 1971);
    assert_eq!(book.ladder().len(Side::Ask), 2962);
    assert_eq!(s.audit().counters().checks, 1072);
    assert_eq!(s.audit().counters().mismatches, 0);
    let st = p.stats();
    assert_eq!((st.depth_updates, st.trades, st.book_tickers, st.bad_messages), (6495, 19904, 73174, 0));
    assert_eq!(st.trade_id_gaps, 0);
    // The recorder's clock runs ~1.27 s behind Binance: negative latencies are counted, not lost.
    assert!(st.negative_latency > 0 && st.min_latency_us < -1_200_000, "{}", st.min_latency_us);
    assert!(checked > 90_000, "no-cross checked after {checked} frames");
}

#[test]
fn ethusdt_matches_verified_figures() {
    let Some(f) = util::recording("ethusdt_20240808.gz") else { return };
    let mut p = quiet_pipeline();
    replay_checked(&mut p, &[f]);
    let s = &p.symbols()[0];
    let book = s.book();
    // U = lastUpdateId + 1 is a valid join under U <= lastUpdateId+1 <= u.
    let sp = book.sync_point().unwrap();
    assert_eq!((sp.snapshot_id, sp.dropped), (35346513512, 2));
    assert_eq!(sp.first_applied.unwrap().0, 35346513513);
    assert_eq!(book.counters().gaps, 0);
    assert_eq!(p.stats().depth_updates, 3434);
    assert_eq!(book.ladder().len(Side::Bid), 1195);
    assert_eq!(book.ladder().len(Side::Ask), 1158);
    assert_eq!((s.audit().counters().checks, s.audit().counters().mismatches), (577, 0));
    assert_eq!(p.stats().trades, 6106);
    assert_eq!(p.stats().trade_id_gaps, 0);
}

#[test]
fn replayer_routes_snapshot_and_two_files_in_order() {
    let (Some(a), Some(b)) = (util::recording("btcusdt_20240808.gz"), util::recording("btcusdt_20240809.gz")) else {
        return;
    };
    let mut p = quiet_pipeline();
    let mut r = Replayer::new(&mut p);
    r.run(&[a, b], ReplayOptions::default(), &mut |p| {
        p.output().discard();
        true
    })
    .unwrap();
    let c = r.counters();
    assert_eq!((c.lines, c.snapshots, c.malformed_lines, c.torn_lines), (41249 + 58325, 1, 0, 0));
    assert_eq!(p.symbols()[0].book().last_update_id(), 50093696318);
}

#[test]
fn cli_replay_times_frames_only_when_asked() {
    let Some(a) = util::recording("btcusdt_20240808.gz") else { return };
    let dir = std::env::temp_dir().join(format!("tickfeed-cli-measure-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--measure", "--max-events", "2000", "--stats"])
        .arg(&stats)
        .arg(&a)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(v["process_ns"]["count"].as_u64().unwrap() >= 2000, "{}", v["process_ns"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_replay_writes_stats_and_book_dump() {
    let (Some(a), Some(b)) = (util::recording("btcusdt_20240808.gz"), util::recording("btcusdt_20240809.gz")) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tickfeed-cli-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "tob", "--quiet", "--trust-beyond-snapshot", "--dump-book"])
        .arg(dir.join("books"))
        .arg("--stats")
        .arg(&stats)
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    // One line per book change: the snapshot join plus every diff applied after it.
    assert_eq!(stdout.lines().count(), 1 + 6492, "tob lines");
    assert!(stdout.lines().next().unwrap().starts_with("BTCUSDT"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(v["depth_updates"], 6495);
    assert_eq!(v["trades"], 19904);
    assert_eq!(v["gaps"], 0);
    assert_eq!(v["book_ticker_checks"], 1072);
    assert_eq!(v["book_ticker_mismatches"], 0);
    assert_eq!(v["symbols"]["BTCUSDT"]["lastUpdateId"], 50093696318u64);
    assert_eq!(v["symbols"]["BTCUSDT"]["bids"], 1971);
    assert_eq!(v["symbols"]["BTCUSDT"]["asks"], 2962);
    assert_eq!(v["symbols"]["BTCUSDT"]["synced"], true);
    assert_eq!(v["process_ns"]["count"], 0, "a replay reads no clock unless --measure");
    let dump: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("books/BTCUSDT.json")).unwrap()).unwrap();
    assert_eq!(dump["symbol"], "BTCUSDT");
    assert_eq!(dump["lastUpdateId"], 50093696318u64);
    let px = |side: &str| -> Vec<i64> {
        dump[side]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| tickfeed::book::fixed::parse_units_str(l[0].as_str().unwrap()).unwrap())
            .collect()
    };
    let (bids, asks) = (px("bids"), px("asks"));
    assert_eq!((bids.len(), asks.len()), (1971, 2962));
    assert!(bids.windows(2).all(|w| w[0] > w[1]), "bids best first");
    assert!(asks.windows(2).all(|w| w[0] < w[1]), "asks best first");
    assert!(bids[0] < asks[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_errors_are_one_line_and_nonzero() {
    let bin = env!("CARGO_BIN_EXE_tickfeed");
    for args in [
        &["replay"][..],
        &["replay", "/nonexistent/file.gz"],
        &["replay", "--output", "fancy", "x"],
        &["replay", "--bogus"],
        &["frobnicate"],
    ] {
        let out = Command::new(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("tickfeed: "), "{err}");
    }
}

/// By default a book whose best price leaves its snapshot's range stops calling itself synced
/// (Binance: a book is authoritative only inside the snapshot's range) and asks for a snapshot;
/// the recording has no second one, so BTCUSDT ends resyncing. Everything before that point is
/// as verified: no gap, no crossed book, no bookTicker mismatch.
#[test]
fn a_best_price_past_the_snapshot_range_is_not_trusted_by_default() {
    let (Some(a), Some(b)) = (util::recording("btcusdt_20240808.gz"), util::recording("btcusdt_20240809.gz")) else {
        return;
    };
    let mut p = Pipeline::new(
        PipelineConfig { output: OutputMode::None, auto_symbols: true, ..PipelineConfig::default() },
        &[],
    );
    replay_checked(&mut p, &[a, b]);
    let book = p.symbols()[0].book();
    assert!(!book.is_synced());
    let c = book.counters();
    assert_eq!((c.beyond_snapshot, c.gaps, c.snapshots), (1, 0, 1), "{c:?}");
    // It left at the diff that took the best bid below the snapshot's deepest bid (61631.55).
    assert_eq!(book.last_update_id(), 50093366464);
    let audit = p.symbols()[0].audit().counters();
    assert_eq!((audit.checks, audit.mismatches), (423, 0), "{audit:?}");
}

/// A recording cut short (a truncated gzip) ends the replay with a one-line error naming the file
/// and a non-zero exit, but after the exit files: the stats of what was replayed are written.
#[test]
fn a_truncated_gzip_still_leaves_its_stats() {
    let Some(eth) = util::recording("ethusdt_20240808.gz") else { return };
    let dir = util::temp_dir("replay-truncated");
    let cut = dir.join("cut.gz");
    let bytes = std::fs::read(&eth).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let stats = dir.join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--stats"])
        .arg(&stats)
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cut.gz"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(v["events"].as_u64().unwrap() > 1000, "{v}");
}

/// A recording piped in (`cat f.gz | tickfeed replay /dev/stdin`) is read once: a pipe cannot be
/// opened a second time to start over.
#[test]
fn a_recording_on_standard_input_replays() {
    let Some(eth) = util::recording("ethusdt_20240808.gz") else { return };
    let stats = util::temp_dir("replay-stdin").join("stats.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--stats"])
        .arg(&stats)
        .arg("/dev/stdin")
        .stdin(std::fs::File::open(&eth).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!((v["depth_updates"].as_u64(), v["trades"].as_u64()), (Some(3434), Some(6106)), "{v}");
}

/// SIGTERM during a paced replay ends it within moments, like the end of its input: exit 0, the
/// summary on stderr, the stats written.
#[test]
fn sigterm_during_a_paced_replay_ends_it_with_its_summary() {
    let Some(eth) = util::recording("ethusdt_20240808.gz") else { return };
    let stats = util::temp_dir("replay-sigterm").join("stats.json");
    let child = Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--pace", "recorded", "--output", "none", "--stats"])
        .arg(&stats)
        .arg(&eth)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = std::time::Instant::now();
    util::signal(child.id(), 15);
    let f = util::wait_tickfeed(child, std::time::Duration::from_secs(10));
    assert!(sent.elapsed() < std::time::Duration::from_secs(3), "took {:?}", sent.elapsed());
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(f.stderr.contains("ETHUSDT synced"), "{}", f.stderr);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert!(v["events"].as_u64().unwrap() > 0, "{v}");
}
