//! Replay of recordings: the shared Binance BTCUSDT capture (skipped, saying so, when absent) and
//! small crafted recordings in both accepted layouts (a `<recv ns> <frame>` file, gzip or plain,
//! and a tickfeed capture directory). The replayed stream keeps ids, prices and quantities,
//! re-stamps E/T, and a client following the official procedure converges to the reference book.

mod util;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tickfeed_sim::{FaultPlan, MarketSource, Pacing, Sim, SimConfig, SimHandle};
use util::{parse_diff, ws, LocalBook};

fn replay_sim(paths: Vec<PathBuf>, pacing: Pacing) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        source: MarketSource::Replay { paths },
        pacing,
        faults: FaultPlan { ping_interval: None, ..FaultPlan::default() },
        ..SimConfig::default()
    })
    .unwrap()
}

/// Follows `symbol`'s depth until the replay is over and the client holds the last diff.
fn follow_to_end(sim: &SimHandle, symbol: &str, within: Duration) -> (LocalBook, Vec<Value>) {
    let lower = symbol.to_ascii_lowercase();
    let mut w = ws(sim, &format!("/stream?streams={lower}@depth@100ms/{lower}@trade"));
    w.get_ref().tcp().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut book = LocalBook::default();
    let mut trades = Vec::new();
    let deadline = Instant::now() + within;
    loop {
        assert!(Instant::now() < deadline, "replay did not finish in {within:?}");
        match w.read() {
            Ok(tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["stream"].as_str().unwrap().ends_with("@trade") {
                    trades.push(v["data"].clone());
                } else {
                    book.on_diff(sim, symbol, parse_diff(&v["data"]));
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
        if sim.market_finished() && book.synced && Some(book.id) == sim.last_update_id(symbol) {
            return (book, trades);
        }
    }
}

#[test]
fn btcusdt_recording_replays_and_converges() {
    let file = util::data_dir().join("btcusdt_20240808.gz");
    if !file.exists() {
        println!(
            "SKIPPED: {} not found (set TICKFEED_DATA to the folder holding the Binance recordings)",
            file.display()
        );
        return;
    }
    let t = Instant::now();
    let sim = replay_sim(vec![file], Pacing::Rate(60_000));
    println!("loaded in {:?}", t.elapsed());
    let (book, trades) = follow_to_end(&sim, "BTCUSDT", Duration::from_secs(40));
    println!("replayed in {:?}", t.elapsed());
    // The 0808 file ends at u=50093421584 (README figures).
    assert_eq!(book.id, 50_093_421_584);
    let reference = sim.reference_book("BTCUSDT", book.id).unwrap();
    assert_eq!(book.to_book("BTCUSDT"), reference);
    assert_eq!(sim.counters().replay_gaps, 0);
    // Ids and prices are the recording's; E/T are the simulator's clock.
    let first = trades.first().expect("trades replayed");
    assert!(first["t"].as_u64().unwrap() >= 3_735_683_259);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let e = first["E"].as_i64().unwrap();
    assert!((now_ms - e).abs() < 120_000, "E re-stamped to now: {e} vs {now_ms}");
    assert!(first["T"].as_i64().unwrap() <= e);
}

/// The two BTCUSDT files are one recording split at midnight: merged, the reference book must end
/// exactly where the data README says an independent replay ends.
#[test]
fn btcusdt_two_day_recording_matches_the_readme_figures() {
    let dir = util::data_dir();
    let files = vec![dir.join("btcusdt_20240809.gz"), dir.join("btcusdt_20240808.gz")];
    if files.iter().any(|f| !f.exists()) {
        println!("SKIPPED: BTCUSDT recordings not found under {} (set TICKFEED_DATA)", dir.display());
        return;
    }
    // Given out of order on purpose: lines are merged by receive time. No client: a rate this
    // high never sleeps.
    let sim = replay_sim(files, Pacing::Rate(u32::MAX));
    assert!(util::wait_for(Duration::from_secs(40), || sim.market_finished()));
    let book = sim.current_book("BTCUSDT").unwrap();
    assert_eq!(book.last_update_id, 50_093_696_318);
    assert_eq!((book.bids.len(), book.asks.len()), (1_971, 2_962));
    assert!(book.bids[0].price < book.asks[0].price);
    let c = sim.counters();
    assert_eq!(c.replay_gaps, 0);
    // 6,495 diffs recorded, 2 older than the snapshot.
    assert_eq!(c.diffs_published, 6_493);
}

const SNAP: &str = r#"{"lastUpdateId":105,"bids":[["100.00000000","1.00000000"],["99.00000000","2.00000000"]],"asks":[["101.00000000","1.50000000"],["102.00000000","3.00000000"]]}"#;

fn depth(u0: u64, u1: u64, bids: &str, asks: &str) -> String {
    format!(
        r#"{{"stream":"xyzusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255208,"s":"XYZUSDT","U":{u0},"u":{u1},"b":[{bids}],"a":[{asks}]}}}}"#
    )
}

fn crafted_lines() -> Vec<String> {
    let mut lines = vec![
        // Before the snapshot and fully older than it: not replayed.
        format!("1000 {}", depth(90, 100, r#"["98.00000000","5.00000000"]"#, "")),
        // Recorded before the snapshot but bridging it (U <= 106 <= u): replayed.
        format!("2000 {}", depth(101, 108, r#"["100.00000000","1.25000000"]"#, r#"["101.00000000","0.00000000"]"#)),
        format!("3000 {SNAP}"),
        r#"3500 {"stream":"xyzusdt@trade","data":{"e":"trade","E":1723161255343,"s":"XYZUSDT","t":77,"p":"102.00000000","q":"0.50000000","T":1723161255342,"m":false,"M":true}}"#.to_string(),
    ];
    let mut u = 108;
    for i in 0..30u64 {
        let p = 90 + (i % 7);
        lines.push(format!(
            "{} {}",
            4000 + i * 100,
            depth(
                u + 1,
                u + 3,
                &format!(r#"["{p}.00000000","{}.00000000"]"#, i % 3),
                r#"["102.00000000","2.50000000"]"#
            )
        ));
        u += 3;
    }
    lines
}

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickfeed-sim-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check_crafted(sim: &SimHandle) {
    let (book, trades) = follow_to_end(sim, "XYZUSDT", Duration::from_secs(20));
    assert_eq!(book.id, 108 + 90);
    let reference = sim.reference_book("XYZUSDT", book.id).unwrap();
    assert_eq!(book.to_book("XYZUSDT"), reference);
    // The bridging diff was applied to the snapshot: 100.00 became 1.25 and 101.00 left.
    let at_108 = sim.reference_book("XYZUSDT", 108).unwrap();
    assert_eq!(at_108.bids[0].qty, 125_000_000);
    assert_eq!(at_108.asks[0].price, 10_200_000_000);
    assert!(sim.reference_book("XYZUSDT", 100).is_none(), "never a reference id");
    assert!(sim.reference_book("XYZUSDT", 105).is_some(), "the snapshot is");
    let _ = trades;
}

#[test]
fn crafted_gzip_file_replays() {
    let dir = tmp_dir("gz");
    let path = dir.join("xyz.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    for l in crafted_lines() {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
    // As fast as read: the market waits for the first websocket reader, so none of these few
    // events can be published before the client connects.
    let sim = replay_sim(vec![path], Pacing::AsFastAsRead);
    check_crafted(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tickfeed_capture_directory_replays_merged_by_receive_time() {
    let dir = tmp_dir("cap");
    let take = dir.join("xyzusdt/2024-08-08/take_1");
    for kind in ["orderbook", "trades", "aggTrades"] {
        std::fs::create_dir_all(take.join(kind)).unwrap();
    }
    // Raw (unwrapped) frames as a /ws capture holds them, split by kind; the snapshot line has no
    // symbol of its own and takes the directory's.
    let mut ob = std::fs::File::create(take.join("orderbook/part-0")).unwrap();
    let mut tr = std::fs::File::create(take.join("trades/part-0")).unwrap();
    for l in crafted_lines() {
        let (ts, json) = l.split_once(' ').unwrap();
        let raw = match json.strip_prefix("{\"stream\":\"") {
            Some(rest) => {
                let data = &rest[rest.find("\"data\":").unwrap() + 7..rest.len() - 1];
                data.to_string()
            }
            None => json.to_string(),
        };
        let f = if raw.contains("\"e\":\"trade\"") { &mut tr } else { &mut ob };
        writeln!(f, "{ts} {raw}").unwrap();
    }
    drop((ob, tr));
    let sim = replay_sim(vec![dir.clone()], Pacing::AsFastAsRead);
    check_crafted(&sim);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn replay_without_snapshot_serves_streams_but_no_book() {
    let dir = tmp_dir("nosnap");
    let path = dir.join("x.txt");
    let lines: Vec<String> = crafted_lines().into_iter().filter(|l| !l.contains("lastUpdateId")).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let sim = replay_sim(vec![path.clone()], Pacing::AsFastAsRead);
    let r = util::get(&sim, "/api/v3/depth?symbol=XYZUSDT");
    assert_eq!(r.status, 503);
    assert!(sim.current_book("XYZUSDT").is_none());
    assert_eq!(util::get(&sim, "/api/v3/exchangeInfo?symbol=XYZUSDT").status, 200);
    let mut w = ws(&sim, "/stream?streams=xyzusdt@depth@100ms");
    let v: Value = serde_json::from_str(&util::next_text(&mut w, Duration::from_secs(5))).unwrap();
    assert_eq!(v["data"]["e"], "depthUpdate");
    drop(w);
    drop(sim);
    assert!(Sim::start(SimConfig {
        source: MarketSource::Replay { paths: vec![Path::new("/nonexistent").into()] },
        ..SimConfig::default()
    })
    .is_err());
    let _ = std::fs::remove_dir_all(dir);
}
