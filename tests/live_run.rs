//! `tickfeed run` against the loopback test exchange (tests/util/exchange.rs): the binary as a
//! user runs it, plain and TLS, with its exit files checked against the exchange's reference book.
//! Every run is bounded by `--duration` and a kill timer, and uses `--no-busy-poll` (both ends of
//! a loopback test must not spin on a 2-core machine).

mod util;

use std::path::Path;
use std::time::Duration;
use util::exchange::{Exchange, ExchangeConfig};

const LIMIT: Duration = Duration::from_secs(20);

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

/// The dumped book of `symbol` equals the exchange's book at the dumped lastUpdateId.
fn assert_book_matches(ex: &Exchange, dir: &Path, symbol: &str) -> u64 {
    let dump = json(&dir.join(format!("{symbol}.json")));
    let id = dump["lastUpdateId"].as_u64().unwrap();
    let reference = ex.book_at(symbol, id).unwrap_or_else(|| panic!("{symbol}: no reference book at {id}"));
    let (bids, asks) = reference.levels();
    assert_eq!(levels(&dump["bids"]), bids, "{symbol} bids at {id}");
    assert_eq!(levels(&dump["asks"]), asks, "{symbol} asks at {id}");
    id
}

fn base_args<'a>(ex: &'a Exchange, ws: &'a str, rest: &'a str, dir: &'a str) -> Vec<&'a str> {
    let _ = ex;
    vec!["run", "--ws-url", ws, "--rest-url", rest, "--no-busy-poll", "--dump-book", dir]
}

#[test]
fn clean_run_plain_matches_the_reference_book() {
    let ex = Exchange::start(ExchangeConfig::default());
    let dir = util::temp_dir("clean-plain");
    let stats = dir.join("stats.json");
    let (ws, rest) = (ex.ws_base(), ex.rest_base());
    let d = dir.to_str().unwrap();
    let mut args = base_args(&ex, &ws, &rest, d);
    args.extend(["--duration", "1.5", "--output", "tob-json", "--stats", stats.to_str().unwrap()]);
    let f = util::run_tickfeed(&args, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    assert_book_matches(&ex, &dir, "BTCUSDT");
    let s = json(&stats);
    assert!(s["depth_updates"].as_u64().unwrap() > 50, "{s}");
    assert!(s["trades"].as_u64().unwrap() > 50, "{s}");
    assert_eq!(s["gaps"], 0);
    assert_eq!(s["resyncs"], 0);
    assert_eq!(s["reconnects"], 0);
    assert_eq!(s["bad_messages"], 0);
    assert!(s["latency_us"]["count"].as_u64().unwrap() > 0);
    assert!(s["process_ns"]["count"].as_u64().unwrap() > 0);
    assert_eq!(s["symbols"]["BTCUSDT"]["synced"], true);
    // Output: one JSON object per book change.
    let first = f.stdout.lines().next().expect("some output");
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(v["symbol"], "BTCUSDT", "{first}");
    assert!(f.stderr.contains("run ended (duration)"), "{}", f.stderr);
}
