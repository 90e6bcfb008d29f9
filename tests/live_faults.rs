//! `tickfeed run` surviving what a real exchange does to a feed handler: sequence gaps, TCP
//! resets, close frames, protocol violations, silence, pings, fragmented/malformed/binary frames,
//! HTTP 429, several symbols on one connection, signals and stop conditions. The loopback test
//! exchange (tests/util/exchange.rs) injects each fault while the binary runs; the exit files are
//! checked against the exchange's reference book. Handlers run with `--no-busy-poll` and a
//! `--duration`, under a kill timer.

mod util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use util::exchange::{Cmd, Exchange, ExchangeConfig};

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn levels(v: &serde_json::Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| (l[0].as_str().unwrap().to_owned(), l[1].as_str().unwrap().to_owned()))
        .collect()
}

fn assert_book_matches(ex: &Exchange, dir: &Path, symbol: &str) {
    let dump = json(&dir.join(format!("{symbol}.json")));
    let id = dump["lastUpdateId"].as_u64().unwrap();
    let reference = ex.book_at(symbol, id).unwrap_or_else(|| panic!("{symbol}: no reference book at {id}"));
    let (bids, asks) = reference.levels();
    assert_eq!(levels(&dump["bids"]), bids, "{symbol} bids at {id}");
    assert_eq!(levels(&dump["asks"]), asks, "{symbol} asks at {id}");
}

/// A handler run against `ex`: its directory, stats path and the extra flags.
struct Run {
    dir: PathBuf,
    stats: PathBuf,
    child: std::process::Child,
}

fn start(ex: &Exchange, name: &str, extra: &[&str]) -> Run {
    let dir = util::temp_dir(name);
    let stats = dir.join("stats.json");
    let (ws, rest) = (ex.ws_base(), ex.rest_base());
    let mut args = vec![
        "run",
        "--ws-url",
        &ws,
        "--rest-url",
        &rest,
        "--no-busy-poll",
        "--output",
        "none",
        "--dump-book",
        dir.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let child = util::spawn_tickfeed(&args);
    Run { dir, stats, child }
}

fn finish(run: Run) -> (util::Finished, serde_json::Value, PathBuf) {
    let f = util::wait_tickfeed(run.child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&run.stats);
    (f, s, run.dir)
}

/// Waits until the handler has fetched `n` snapshots and the last one had time to apply.
fn wait_snapshots(ex: &Exchange, n: u64) {
    util::wait_until("snapshot requests", WAIT, || {
        ex.counters().depth_requests.load(std::sync::atomic::Ordering::SeqCst) >= n
    });
    std::thread::sleep(Duration::from_millis(300));
}

fn conns(ex: &Exchange) -> u64 {
    ex.counters().ws_connections.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn sequence_gap_resyncs_that_book() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "gap", &["--duration", "2.5"]);
    wait_snapshots(&ex, 1);
    ex.gap("BTCUSDT", 2);
    wait_snapshots(&ex, 2);
    let (f, s, dir) = finish(run);
    assert_eq!(s["gaps"], 1, "{}", f.stderr);
    assert_eq!(s["resyncs"], 1);
    assert_eq!(s["reconnects"], 0);
    assert!(f.stderr.contains("Gap at U="), "{}", f.stderr);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}

#[test]
fn tcp_reset_and_close_frame_reconnect_and_resync() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "reset-close", &["--duration", "3.5"]);
    wait_snapshots(&ex, 1);
    assert_eq!(ex.broadcast(Cmd::Reset), 1);
    util::wait_until("second connection", WAIT, || conns(&ex) >= 2);
    wait_snapshots(&ex, 2);
    assert_eq!(ex.broadcast(Cmd::Close), 1);
    util::wait_until("third connection", WAIT, || conns(&ex) >= 3);
    wait_snapshots(&ex, 3);
    let (f, s, dir) = finish(run);
    assert_eq!(s["reconnects"], 2, "{}", f.stderr);
    assert_eq!(s["resyncs"], 2, "{}", f.stderr);
    assert_eq!(s["gaps"], 0);
    assert!(f.stderr.contains("server closed the connection; reconnecting in"), "{}", f.stderr);
    assert!(f.stderr.contains("server sent close 1001 (going away); reconnecting in"), "{}", f.stderr);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}

#[test]
fn protocol_violation_ends_the_connection_not_the_process() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "violation", &["--duration", "2.5"]);
    wait_snapshots(&ex, 1);
    // A frame with RSV1 set (no extension negotiated), then one with a reserved opcode.
    assert_eq!(ex.broadcast(Cmd::Raw(vec![0xC1, 0x02, b'{', b'}'])), 1);
    util::wait_until("second connection", WAIT, || conns(&ex) >= 2);
    wait_snapshots(&ex, 2);
    assert_eq!(ex.broadcast(Cmd::Raw(vec![0x83, 0x00])), 1);
    util::wait_until("third connection", WAIT, || conns(&ex) >= 3);
    wait_snapshots(&ex, 3);
    let (f, s, dir) = finish(run);
    assert!(f.stderr.contains("websocket protocol violation: reserved bits"), "{}", f.stderr);
    assert!(f.stderr.contains("websocket protocol violation: unknown opcode 0x3"), "{}", f.stderr);
    assert_eq!(s["reconnects"], 2);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "pings", &["--duration", "1.5"]);
    wait_snapshots(&ex, 1);
    let payloads: Vec<Vec<u8>> = vec![b"1770123456789".to_vec(), Vec::new(), vec![0xAB; 125]];
    for p in &payloads {
        assert_eq!(ex.broadcast(Cmd::Ping(p.clone())), 1);
    }
    util::wait_until("pongs", WAIT, || ex.pongs().len() >= payloads.len());
    let (_, s, _) = finish(run);
    assert_eq!(ex.pongs(), payloads);
    assert_eq!(s["pings"], 3);
    assert_eq!(s["pongs"], 3);
    assert_eq!(s["reconnects"], 0);
}

#[test]
fn fragmented_malformed_and_binary_frames_are_survived() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "frames", &["--duration", "2", "--streams", "depth,trade,bookTicker"]);
    wait_snapshots(&ex, 1);
    // Half the market frames arrive in three fragments from now on.
    ex.fragment(true);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ex.broadcast(Cmd::Text("{not json".into())), 1);
    assert_eq!(ex.broadcast(Cmd::Binary(vec![1, 2, 3])), 1);
    assert_eq!(ex.broadcast(Cmd::Text(r#"{"stream":"dogeusdt@trade","data":{}}"#.into())), 1);
    assert_eq!(ex.broadcast(Cmd::Fragmented(r#"{"result":null,"id":7}"#.into(), 4)), 1);
    let (f, s, dir) = finish(run);
    assert_eq!(s["bad_messages"], 3, "{}", f.stderr);
    assert_eq!(s["binary_frames"], 1);
    assert_eq!(s["control_replies"], 1);
    assert_eq!(s["reconnects"], 0);
    assert_eq!(s["gaps"], 0);
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 10, "{s}");
    assert_eq!(s["book_ticker_mismatches"], 0);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}

#[test]
fn http_429_retry_after_is_honoured() {
    let ex = Exchange::start(ExchangeConfig::default());
    ex.reject_depth(&[(429, 2)]);
    let run = start(&ex, "429", &["--duration", "3.5"]);
    wait_snapshots(&ex, 2);
    let (f, s, dir) = finish(run);
    let t = ex.depth_times();
    assert_eq!(t.len(), 2, "{}", f.stderr);
    let waited = t[1].duration_since(t[0]);
    assert!(waited >= Duration::from_millis(1950), "asked again after {waited:?}");
    assert_eq!(s["rest_rate_limited"], 1);
    assert!(f.stderr.contains("HTTP 429 (rate limited), not asking again for 2s"), "{}", f.stderr);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}

#[test]
fn silent_stream_is_detected_and_reconnected() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "stale", &["--duration", "3", "--stale-secs", "0.5"]);
    wait_snapshots(&ex, 1);
    ex.pause(true);
    util::wait_until("reconnect after silence", WAIT, || conns(&ex) >= 2);
    ex.pause(false);
    wait_snapshots(&ex, 2);
    let (f, s, dir) = finish(run);
    assert!(s["stale_reconnects"].as_u64().unwrap() >= 1, "{}", f.stderr);
    assert!(f.stderr.contains("(--stale-secs)"), "{}", f.stderr);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}

#[test]
fn several_symbols_share_one_connection_and_a_gap_resyncs_only_its_book() {
    let cfg = ExchangeConfig { symbols: vec!["btcusdt".into(), "ethusdt".into()], ..ExchangeConfig::default() };
    let ex = Exchange::start(cfg);
    let run = start(&ex, "multi", &["--duration", "2.5", "--symbol", "BTCUSDT,ethusdt"]);
    wait_snapshots(&ex, 2);
    ex.gap("ETHUSDT", 3);
    wait_snapshots(&ex, 3);
    let (f, s, dir) = finish(run);
    assert_eq!(conns(&ex), 1);
    assert_eq!(s["symbols"]["BTCUSDT"]["gaps"], 0, "{}", f.stderr);
    assert_eq!(s["symbols"]["BTCUSDT"]["resyncs"], 0);
    assert_eq!(s["symbols"]["ETHUSDT"]["gaps"], 1);
    assert_eq!(s["symbols"]["ETHUSDT"]["resyncs"], 1);
    assert_book_matches(&ex, &dir, "BTCUSDT");
    assert_book_matches(&ex, &dir, "ETHUSDT");
}

#[test]
fn sigterm_and_sigint_end_the_run_with_files_written() {
    let ex = Exchange::start(ExchangeConfig::default());
    for (sig, name) in [(15, "sigterm"), (2, "sigint")] {
        let dir = util::temp_dir(name);
        let hist = dir.join("latency.hist");
        let run = start(&ex, name, &["--hist", hist.to_str().unwrap()]);
        let before = ex.counters().depth_requests.load(std::sync::atomic::Ordering::SeqCst);
        wait_snapshots(&ex, before + 1);
        util::signal(run.child.id(), sig);
        let t = Instant::now();
        let (f, s, dir) = finish(run);
        assert!(t.elapsed() < Duration::from_secs(2), "slow to stop: {:?}", t.elapsed());
        assert!(f.stderr.contains("run ended (signal)"), "{}", f.stderr);
        assert!(s["events"].as_u64().unwrap() > 0);
        assert_book_matches(&ex, &dir, "BTCUSDT");
        let h = std::fs::read_to_string(&hist).unwrap();
        assert!(h.contains("Value") && h.lines().count() > 3, "{h}");
        assert!(dir.join("latency.hist.process").exists());
    }
}

#[test]
fn max_events_stops_at_exactly_n() {
    let ex = Exchange::start(ExchangeConfig::default());
    let run = start(&ex, "max-events", &["--max-events", "120", "--duration", "20"]);
    let (f, s, _) = finish(run);
    assert_eq!(s["events"], 120, "{}", f.stderr);
    assert!(f.stderr.contains("run ended (max-events)"), "{}", f.stderr);
}

#[test]
fn closed_stdout_stops_output_not_the_run() {
    let ex = Exchange::start(ExchangeConfig::default());
    let dir = util::temp_dir("stdout-closed");
    let stats = dir.join("stats.json");
    let (ws, rest) = (ex.ws_base(), ex.rest_base());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(["run", "--ws-url", &ws, "--rest-url", &rest, "--no-busy-poll", "--duration", "1.5", "--quiet"])
        .args(["--output", "tob", "--stats", stats.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < LIMIT, "did not finish");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    let s = json(&stats);
    assert_eq!(s["stdout_closed"], 1);
    assert!(s["depth_updates"].as_u64().unwrap() > 50, "{s}");
}

#[test]
fn busy_poll_briefly() {
    // Only the handler spins (the test exchange sleeps between steps), for half a second.
    let ex = Exchange::start(ExchangeConfig::default());
    let dir = util::temp_dir("busy");
    let (ws, rest) = (ex.ws_base(), ex.rest_base());
    let f = util::run_tickfeed(
        &["run", "--ws-url", &ws, "--rest-url", &rest, "--duration", "0.7", "--output", "none", "--dump-book"],
        LIMIT,
    );
    // --dump-book without a value is a usage error; then the real run.
    assert_eq!(f.code, Some(2));
    let d = dir.to_str().unwrap();
    let f = util::run_tickfeed(
        &["run", "--ws-url", &ws, "--rest-url", &rest, "--duration", "0.7", "--output", "none", "--dump-book", d],
        LIMIT,
    );
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert_book_matches(&ex, &dir, "BTCUSDT");
}
