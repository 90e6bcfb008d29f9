//! `tickfeed run` as a user runs it, against the simulator (`tickfeed_sim`): plain and TLS, a
//! dumped book compared byte for byte with the simulator's reference book at the same update id,
//! configuration errors, refused connections, `--help`, and `--record` replayed. Every run is
//! bounded by `--duration` and a kill timer, and uses `--no-busy-poll` (both ends of a loopback
//! test must not spin on a 2-core machine).

mod util;

use std::path::Path;
use std::time::Duration;

use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(20);

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn clean_run_plain_matches_the_reference_book() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("clean-plain");
    let stats = dir.join("stats.json");
    let f = RunArgs::against(&sim)
        .depth_limit(5000)
        .duration(1.5)
        .output("tob-json")
        .streams("depth,trade,aggTrade,bookTicker")
        .dump_book(&dir)
        .stats(&stats)
        .run(LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
    let s = json(&stats);
    assert!(s["depth_updates"].as_u64().unwrap() > 50, "{s}");
    assert!(s["trades"].as_u64().unwrap() > 0, "{s}");
    assert!(s["agg_trades"].as_u64().unwrap() > 0, "{s}");
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 0, "{s}");
    for zero in ["gaps", "resyncs", "reconnects", "bad_messages", "book_ticker_mismatches", "trade_id_gaps"] {
        assert_eq!(s[zero], 0, "{zero}: {s}");
    }
    // timeUnit=MICROSECOND was asked for and honoured: latencies are a few ms, not seconds off.
    assert!(s["latency_us"]["count"].as_u64().unwrap() > 0);
    assert!(s["latency_us"]["p50"].as_u64().unwrap() < 1_000_000, "{s}");
    assert_eq!(s["negative_latency"], 0, "{s}");
    assert!(s["process_ns"]["count"].as_u64().unwrap() > 0);
    assert_eq!(s["symbols"]["BTCUSDT"]["synced"], true);
    let first = f.stdout.lines().next().expect("some output");
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(v["symbol"], "BTCUSDT", "{first}");
    assert!(f.stderr.contains("run ended (duration)"), "{}", f.stderr);
}

#[test]
fn tls_with_ca_file_matches_the_reference_book_and_without_it_is_refused() {
    let sim = util::sim(true, &["btcusdt"]);
    let dir = util::temp_dir("clean-tls");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let (ws, rest) = (sim.ws_base(), sim.rest_base());
    assert!(ws.starts_with("wss://") && rest.starts_with("https://"));
    let stats = dir.join("stats.json");
    let f = RunArgs::against(&sim)
        .depth_limit(5000)
        .duration(1.5)
        .output("tob")
        .ca_file(&ca)
        .dump_book(&dir)
        .stats(&stats)
        .run(LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
    assert!(f.stderr.contains("connected #1 wss://"), "{}", f.stderr);
    // The stage breakdown, on by default: every stage timed, TLS included.
    let s = json(&stats);
    for stage in ["read", "tls", "websocket", "json", "book", "output"] {
        let h = &s["stages_ns"][stage];
        assert!(h["count"].as_u64().unwrap_or(0) > 0 && h["p50"].as_u64().unwrap() > 0, "{stage}: {s}");
    }
    // Every socket read is timed once; every market message once.
    assert_eq!(s["stages_ns"]["read"]["count"], s["stages_ns"]["tls"]["count"], "{s}");
    assert_eq!(s["stages_ns"]["json"]["count"], s["events"], "{s}");
    // And off when asked.
    let f = RunArgs::against(&sim)
        .duration(1.0)
        .output("none")
        .ca_file(&ca)
        .stats(&stats)
        .arg("--no-stage-times")
        .run(LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&stats);
    assert!(s.get("stages_ns").is_none() && s["events"].as_u64().unwrap() > 0, "{s}");

    // Without the CA the certificate is unknown: a one-line TLS error, retried, never fatal.
    let f = RunArgs::against(&sim).duration(1.0).run(LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let line = f.stderr.lines().find(|l| l.contains("UnknownIssuer")).unwrap_or_else(|| panic!("{}", f.stderr));
    assert!(line.contains(&rest) && line.contains("retrying in"), "{line}");
}

#[test]
fn configuration_errors_are_one_line_and_exit_2() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("config-errors");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--symbol", "NOSUCHCOIN"], "unknown symbol NOSUCHCOIN"),
        (vec!["--ca-file", "/nonexistent/ca.pem"], "--ca-file /nonexistent/ca.pem"),
        (vec!["--ca-file", junk.to_str().unwrap()], "no PEM certificate"),
        (vec!["--core", "4096"], "--core 4096: no such core"),
        (vec!["--depth-limit", "0"], "--depth-limit: 0 is outside 1..5000"),
        (vec!["--streams", "depth,kline"], "unknown stream 'kline'"),
        (vec!["--bogus"], "unknown flag --bogus"),
        (vec!["--record", "/proc/tickfeed-capture"], "--record"),
    ];
    for (extra, want) in cases {
        let f = RunArgs::against(&sim).duration(5.0).args(extra.iter().copied()).run(LIMIT);
        assert_eq!(f.code, Some(2), "{extra:?}: stderr:\n{}", f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{extra:?}: {}", f.stderr);
        assert!(f.stderr.contains(want), "{extra:?}: {}", f.stderr);
    }
    let f = RunArgs::new().ws_url("wss://stream.binance.com:9443/ws").run(LIMIT);
    assert_eq!(f.code, Some(2));
    assert!(f.stderr.contains("--ws-url") && f.stderr.lines().count() == 1, "{}", f.stderr);
}

#[test]
fn refused_connection_is_retried_with_a_clear_line() {
    // A port nobody listens on (bound then closed) for the websocket; REST is up.
    let sim = util::sim(false, &["btcusdt"]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let f = RunArgs::against(&sim).ws_url(&format!("ws://{dead}")).duration(1.2).run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let retries: Vec<&str> = f.stderr.lines().filter(|l| l.contains(&format!("connect {dead}"))).collect();
    assert!(retries.len() >= 3, "{}", f.stderr);
    assert!(retries[0].contains("Connection refused") && retries[0].contains("retrying in 0."), "{}", retries[0]);
}

#[test]
fn help_documents_every_run_flag() {
    let f = RunArgs::new().arg("--help").run(LIMIT);
    assert_eq!(f.code, Some(0));
    for flag in [
        "--symbol",
        "--streams",
        "--ws-url",
        "--rest-url",
        "--ca-file",
        "--depth-limit",
        "--core",
        "--no-busy-poll",
        "--output",
        "--record",
        "--max-events",
        "--duration",
        "--dump-book",
        "--stats",
        "--hist",
        "--stale-secs",
        "--max-conn-age",
        "--max-message",
        "--weight-budget",
        "--switch-timeout",
    ] {
        assert!(f.stdout.contains(flag), "{flag} missing from:\n{}", f.stdout);
    }
}

#[test]
fn recording_replays_to_the_same_book() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("record");
    let rec = dir.join("rec");
    let live = dir.join("live");
    let stats = dir.join("stats.json");
    let f = RunArgs::against(&sim)
        .duration(1.5)
        .output("none")
        .depth_limit(5000)
        .streams("depth,trade,aggTrade,bookTicker")
        .record(&rec)
        .dump_book(&live)
        .stats(&stats)
        .run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert!(f.stderr.contains("recording to "), "{}", f.stderr);
    let s = json(&stats);
    assert!(s["recorded_lines"].as_u64().unwrap() > 100, "{s}");
    assert_eq!(s["record_errors"], 0);
    // DIR/btcusdt/{date}/take_1/{orderbook,trades,aggTrades,bookTickers}/{hour}.log.gz
    let day = std::fs::read_dir(rec.join("btcusdt")).unwrap().next().unwrap().unwrap().path();
    let take = day.join("take_1");
    for kind in ["orderbook", "trades", "aggTrades", "bookTickers"] {
        let files: Vec<_> = std::fs::read_dir(take.join(kind)).unwrap().flatten().collect();
        assert!(!files.is_empty(), "no {kind} file");
    }
    // The capture replayed through the same pipeline ends with the live run's book, byte for byte.
    let replayed = dir.join("replayed");
    let r = util::run_tickfeed(
        &["replay", rec.to_str().unwrap(), "--output", "none", "--quiet", "--dump-book", replayed.to_str().unwrap()],
        LIMIT,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let a = std::fs::read_to_string(live.join("BTCUSDT.json")).unwrap();
    let b = std::fs::read_to_string(replayed.join("BTCUSDT.json")).unwrap();
    assert_eq!(a, b, "replay of the capture ends with a different book");
    util::assert_dump_matches(&sim, &live, "BTCUSDT");
}
