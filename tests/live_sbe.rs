//! `tickfeed run --feed sbe` against the simulator: one market served as JSON on its first
//! listener and as SBE on its second (`SimConfig::sbe_listen`, Binance's stream-sbe host), the
//! API key in a file. Books must equal the simulator's reference over SBE through a gap, a TCP
//! reset and a serverShutdown; the bestBidAsk and depth20 audits must check and never disagree;
//! aggTrade comes from the JSON listener alongside; a refused key ends the run with one line; and
//! the key is nowhere in what the handler writes. Handlers run with `--no-busy-poll`.

mod util;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tickfeed_sim::{MarketSource, Pacing, Sim, SimConfig, SimHandle};
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);
/// A key no other string in a run contains by chance.
const KEY: &str = "SbeTestKey7f3c9a1e5d2b8046ZZqq";

fn sim(keys: &[&str]) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::Speed(10.0),
        levels_per_side: 300,
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 11 },
        sbe_listen: Some("127.0.0.1:0".parse().unwrap()),
        sbe_keys: keys.iter().map(|k| k.to_string()).collect(),
        ..SimConfig::default()
    })
    .expect("start the simulator")
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `run --feed sbe` against `sim`'s SBE listener (aggTrade from its JSON one), the key in a file
/// in `dir`, whole books, books dumped and stats written in `dir`.
fn sbe_run(sim: &SimHandle, dir: &Path, streams: &str) -> RunArgs {
    let key = dir.join("api-key");
    std::fs::write(&key, format!("{KEY}\n")).unwrap();
    RunArgs::new()
        .ws_url(&sim.sbe_ws_base().unwrap())
        .rest_url(&sim.rest_base())
        .arg("--no-busy-poll")
        .flag("--feed", "sbe")
        .flag("--api-key-file", key.to_str().unwrap())
        .flag("--json-ws-url", &sim.ws_base())
        .streams(streams)
        .depth_limit(5000)
        .dump_book(dir)
        .stats(dir.join("stats.json"))
}

fn finish(child: std::process::Child, dir: &Path) -> (util::Finished, serde_json::Value) {
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    (f, json(&dir.join("stats.json")))
}

/// The simulator's id of the handler's SBE connection (the one carrying `@depth`).
fn sbe_conn(sim: &SimHandle) -> u64 {
    util::wait_until("the SBE connection", WAIT, || {
        sim.faults().connections().iter().any(|c| c.streams.iter().any(|s| s.ends_with("@depth")))
    });
    let conns = sim.faults().connections();
    conns.iter().find(|c| c.streams.iter().any(|s| s.ends_with("@depth"))).unwrap().id
}

fn wait_synced(sim: &SimHandle) {
    util::wait_until("the first snapshot", WAIT, || sim.counters().depth_requests >= 1);
    std::thread::sleep(Duration::from_millis(400));
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn sbe_books_match_the_reference_with_both_audits_clean_and_agg_trades_alongside() {
    let sim = sim(&[KEY]);
    let dir = util::temp_dir("sbe-clean");
    let rec = dir.join("rec");
    let child = sbe_run(&sim, &dir, "depth,trade,bestBidAsk,depth20,aggTrade")
        .duration(3.0)
        .output("ndjson")
        .record(&rec)
        .flag("--record-compress", "none")
        .spawn();
    let (f, s) = finish(child, &dir);
    for k in ["depth_updates", "trades", "book_tickers", "agg_trades", "sbe_frames", "depth20"] {
        assert!(s[k].as_u64().unwrap() > 0, "{k}: {s}");
    }
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 0, "bestBidAsk audited: {s}");
    assert_eq!(s["book_ticker_mismatches"], 0);
    assert!(s["depth20_checks"].as_u64().unwrap() > 0, "depth20 audited: {s}");
    assert_eq!(s["depth20_mismatches"], 0);
    for k in ["gaps", "resyncs", "bad_messages", "trade_id_gaps", "reconnects"] {
        assert_eq!(s[k], 0, "{k}: {}", f.stderr);
    }
    assert_eq!(s["symbols"]["BTCUSDT"]["synced"], true);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
    // ndjson: the SBE events rendered as JSON, aggTrades as received.
    let mut streams = std::collections::HashSet::new();
    for l in f.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        streams.insert(v["stream"].as_str().unwrap().to_string());
    }
    for want in ["btcusdt@depth", "btcusdt@trade", "btcusdt@bestBidAsk", "btcusdt@depth20", "btcusdt@aggTrade"] {
        assert!(streams.contains(want), "{want} not in the output: {streams:?}");
    }
    // The recording holds the binary frames as ~base64 lines, and JSON aggTrades.
    let all = files(&rec);
    let text: String = all.iter().map(|p| std::fs::read_to_string(p).unwrap_or_default()).collect();
    assert!(text.lines().any(|l| l.split_once(' ').is_some_and(|(_, r)| r.starts_with('~'))), "no binary line");
    assert!(text.contains("\"e\":\"aggTrade\""));
    // The capture replays through the binary path to a synced book equal to the reference.
    let rdir = dir.join("replayed");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["replay", "--output", "none", "--quiet", "--dump-book"])
        .arg(&rdir)
        .arg("--stats")
        .arg(dir.join("replay-stats.json"))
        .arg(&rec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&dir.join("replay-stats.json"));
    assert!(r["sbe_frames"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(
        (r["bad_messages"].as_u64(), r["bad_base64_lines"].as_u64(), r["gaps"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(r["symbols"]["BTCUSDT"]["synced"], true, "{r}");
    assert!(r["agg_trades"].as_u64().unwrap() > 0);
    util::assert_dump_matches(&sim, &rdir, "BTCUSDT");
    // The key is in none of what the handler wrote.
    assert!(!f.stdout.contains(KEY) && !f.stderr.contains(KEY));
    assert!(!std::fs::read_to_string(dir.join("stats.json")).unwrap().contains(KEY));
    for p in all.iter().chain(files(&dir).iter().filter(|p| !p.ends_with("api-key"))) {
        let bytes = std::fs::read(p).unwrap();
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the key is in {}", p.display());
    }
}

#[test]
fn a_gap_over_sbe_resyncs() {
    let sim = sim(&[]);
    let dir = util::temp_dir("sbe-gap");
    let child = sbe_run(&sim, &dir, "depth,trade,bestBidAsk").duration(3.0).output("none").spawn();
    let id = sbe_conn(&sim);
    wait_synced(&sim);
    assert_eq!(sim.faults().drop_next_diff_on(id, &["btcusdt"]), 1);
    util::wait_until("a gap injected", WAIT, || sim.counters().gaps_injected == 1);
    util::wait_until("the resync's snapshot", WAIT, || sim.counters().depth_requests >= 2);
    std::thread::sleep(Duration::from_millis(400));
    let (f, s) = finish(child, &dir);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(1), Some(1)), "{}", f.stderr);
    assert!(f.stderr.contains("sequence gap at U="), "{}", f.stderr);
    assert_eq!(s["book_ticker_mismatches"], 0);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_reset_over_sbe_reconnects_and_resyncs() {
    let sim = sim(&[]);
    let dir = util::temp_dir("sbe-reset");
    let child = sbe_run(&sim, &dir, "depth,trade,bestBidAsk").duration(3.5).output("none").spawn();
    let id = sbe_conn(&sim);
    wait_synced(&sim);
    assert!(sim.faults().abort_connection(id));
    util::wait_until("the resync's snapshot", WAIT, || sim.counters().depth_requests >= 2);
    std::thread::sleep(Duration::from_millis(400));
    let (f, s) = finish(child, &dir);
    assert_eq!(s["reconnects"], 1, "{}", f.stderr);
    assert!(s["resyncs"].as_u64().unwrap() >= 1, "{}", f.stderr);
    assert_eq!(s["book_ticker_mismatches"], 0);
    assert_eq!(s["symbols"]["BTCUSDT"]["synced"], true);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn losing_the_json_agg_trade_connection_keeps_the_sbe_books() {
    let sim = sim(&[]);
    let dir = util::temp_dir("sbe-agg-reset");
    let child = sbe_run(&sim, &dir, "depth,trade,aggTrade").duration(3.0).output("none").spawn();
    wait_synced(&sim);
    util::wait_until("the aggTrade connection", WAIT, || {
        sim.faults().connections().iter().any(|c| c.streams.iter().any(|s| s.ends_with("@aggTrade")))
    });
    let conns = sim.faults().connections();
    let agg = conns.iter().find(|c| c.streams.iter().all(|s| s.ends_with("@aggTrade"))).unwrap().id;
    assert!(sim.faults().abort_connection(agg));
    let (f, s) = finish(child, &dir);
    assert_eq!(s["reconnects"], 1, "{}", f.stderr);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{}", f.stderr);
    assert!(f.stderr.contains("aggTrade ids reset"), "{}", f.stderr);
    assert!(s["agg_trades"].as_u64().unwrap() > 0);
    assert_eq!(sim.counters().depth_requests, 1, "no snapshot fetched again");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_server_shutdown_over_sbe_moves_to_a_new_connection_without_a_resync() {
    let sim = sim(&[]);
    let dir = util::temp_dir("sbe-shutdown");
    let child = sbe_run(&sim, &dir, "depth,trade,bestBidAsk").duration(3.0).output("none").spawn();
    let id = sbe_conn(&sim);
    wait_synced(&sim);
    assert!(sim.faults().server_shutdown_connection(id, Duration::from_millis(1500)));
    let (f, s) = finish(child, &dir);
    assert_eq!(s["server_shutdowns"], 1, "{}", f.stderr);
    assert_eq!(s["switches"], 1, "{}", f.stderr);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{}", f.stderr);
    assert_eq!(s["trade_id_gaps"], 0);
    assert_eq!(sim.counters().depth_requests, 1, "no snapshot fetched again");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_refused_key_is_one_line_and_a_non_zero_exit_without_retrying() {
    let sim = sim(&["the-only-key-it-knows"]);
    let dir = util::temp_dir("sbe-401");
    let f = sbe_run(&sim, &dir, "depth,trade").duration(5.0).output("none").run(LIMIT);
    assert_eq!(f.code, Some(2), "{}", f.stderr);
    let last = f.stderr.lines().last().unwrap_or_default();
    assert!(last.contains("refused the API key (HTTP 401") && last.contains("-2015"), "{}", f.stderr);
    assert_eq!(sim.counters().ws_connections, 0, "nothing opened");
    assert!(!f.stderr.contains(KEY) && !f.stdout.contains(KEY));
    // No key at all: refused before connecting.
    let f = util::run_tickfeed(&["run", "--feed", "sbe", "--ws-url", &sim.sbe_ws_base().unwrap()], LIMIT);
    if std::env::var_os("BINANCE_API_KEY").is_none() {
        assert_eq!(f.code, Some(2), "{}", f.stderr);
        assert_eq!(f.stderr.trim().lines().count(), 1, "{}", f.stderr);
        assert!(f.stderr.contains("--api-key-file"), "{}", f.stderr);
    }
    let f = util::run_tickfeed(&["run", "--help"], LIMIT);
    assert!(f.stdout.contains("--api-key-file") && !f.stdout.contains(KEY));
}

#[test]
fn redundant_sbe_connections_fill_each_others_gap() {
    let _one = util::serial();
    let sim = sim(&[]);
    let dir = util::temp_dir("sbe-redundancy");
    let child = sbe_run(&sim, &dir, "depth,trade,bestBidAsk,depth20")
        .flag("--redundancy", "2")
        .duration(3.5)
        .output("none")
        .spawn();
    util::wait_until("two SBE connections", WAIT, || sim.faults().connections().len() == 2);
    wait_synced(&sim);
    let conns = sim.faults().connections();
    // One copy of the stream loses a diff; the other still carries it.
    assert_eq!(sim.faults().drop_next_diff_on(conns[0].id, &["btcusdt"]), 1);
    util::wait_until("a gap injected", WAIT, || sim.counters().gaps_injected == 1);
    let (f, s) = finish(child, &dir);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{}", f.stderr);
    assert!(s["duplicates"].as_u64().unwrap() > 0, "both copies arrived: {s}");
    assert_eq!((s["trade_id_gaps"].as_u64(), s["book_ticker_mismatches"].as_u64()), (Some(0), Some(0)));
    assert_eq!(s["depth20_mismatches"], 0);
    assert_eq!(sim.counters().depth_requests, 1, "no snapshot fetched again");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}
