//! `tickfeed run`'s REST side against the simulator: exchangeInfo asked once for every symbol
//! (a list, or `--symbol ALL` with `--quote`), the snapshot scheduler syncing many books at once
//! under the weight budget without a 429, `--depth-limit auto`'s choice, an unknown symbol in a
//! list named in one line, and the REST figures in `--stats`. The scheduler's rules themselves are
//! unit-tested with a fake clock (`src/binance/schedule.rs`).
//!
//! The simulator answers `exchangeInfo` without a parameter (every symbol it runs) and with
//! `symbols=[...]` (Binance's -1121 for the whole list when one is unknown), with `status`,
//! `baseAsset`, `quoteAsset` and `rateLimits`, and enforces 6,000 weight per minute.

mod util;

use std::path::Path;
use std::time::Duration;

use tickfeed_sim::{MarketSource, Pacing, Sim, SimConfig, SimHandle};
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(40);

/// A plain simulator of `symbols` in real time (a diff per symbol every 100 ms: fifty books stay
/// light on two cores), 300 levels per side.
fn sim(symbols: &[String]) -> SimHandle {
    Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::RealTime,
        levels_per_side: 300,
        source: MarketSource::Synthetic { symbols: symbols.to_vec(), seed: 5 },
        ..SimConfig::default()
    })
    .expect("start the simulator")
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Runs `args` with no output and the stats in `dir`; returns the stats and stderr.
fn run(dir: &Path, args: RunArgs) -> (serde_json::Value, String) {
    let stats = dir.join("stats.json");
    let f = args.output("none").stats(&stats).run(LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    (json(&stats), f.stderr)
}

#[test]
fn fifty_books_sync_with_one_exchange_info_and_no_429() {
    let names: Vec<String> = (0..50).map(|i| format!("sym{i:02}usdt")).collect();
    let sim = sim(&names);
    let dir = util::temp_dir("snapshots-fifty");
    let (s, stderr) =
        run(&dir, RunArgs::against(&sim).symbols(&names.join(",")).flag("--depth-limit", "auto").duration(4.0));
    let c = sim.counters();
    assert_eq!(c.exchange_info_requests, 1, "one exchangeInfo for fifty symbols");
    assert_eq!(c.rest_429_sent, 0, "{stderr}");
    assert_eq!((s["rest_429"].as_u64(), s["rest_418"].as_u64()), (Some(0), Some(0)));
    // 50 x 250 is more than the minute's plan (5400 less exchangeInfo's 20), 50 x 50 is not.
    assert_eq!(s["depth_limit"], 1000, "{stderr}");
    assert!(stderr.contains("depth limit 1000 (auto: every book's first snapshot within 60.0s)"), "{stderr}");
    let sent = s["snapshots"].as_u64().unwrap();
    assert!(sent >= 50, "{s}");
    assert_eq!(sent, c.depth_requests);
    assert_eq!(s["rest_weight_spent"].as_u64(), Some(20 + 50 * sent), "exchangeInfo and every snapshot at limit 1000");
    let symbols = s["symbols"].as_object().unwrap();
    assert_eq!(symbols.len(), 50);
    for (name, v) in symbols {
        assert_eq!(v["synced"], true, "{name}: {stderr}");
        let ms = v["synced_after_ms"].as_u64().unwrap_or_else(|| panic!("{name}: no synced_after_ms in {v}"));
        assert!(ms < 4000, "{name} synced after {ms} ms");
    }
}

#[test]
fn all_symbols_with_a_quote_follow_every_trading_symbol_quoted_in_it() {
    let names: Vec<String> =
        ["btcusdt", "ethusdt", "ethbtc", "bnbusdt", "btcfdusd"].iter().map(|s| s.to_string()).collect();
    let sim = sim(&names);
    let dir = util::temp_dir("snapshots-all");
    let args = RunArgs::against(&sim).symbols("ALL").flag("--quote", "usdt").flag("--depth-limit", "auto");
    let (s, stderr) = run(&dir, args.duration(2.5).dump_book(&dir));
    assert_eq!(sim.counters().exchange_info_requests, 1);
    let mut got: Vec<&str> = s["symbols"].as_object().unwrap().keys().map(String::as_str).collect();
    got.sort_unstable();
    assert_eq!(got, ["BNBUSDT", "BTCUSDT", "ETHUSDT"], "{stderr}");
    assert!(stderr.contains("3 symbols from exchangeInfo"), "{stderr}");
    // Three books: the deepest snapshot fits easily.
    assert_eq!(s["depth_limit"], 5000);
    for sym in got {
        assert_eq!(s["symbols"][sym]["synced"], true, "{sym}");
        util::assert_dump_matches(&sim, &dir, sym);
    }
}

#[test]
fn an_unknown_symbol_in_a_list_is_one_line_naming_it() {
    let sim = util::sim(false, &["btcusdt", "ethusdt"]);
    let f = RunArgs::against(&sim).symbols("btcusdt,nosuchcoin,ethusdt").duration(5.0).run(LIMIT);
    assert_eq!(f.code, Some(2), "stderr:\n{}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.stderr);
    assert!(f.stderr.contains("unknown symbol NOSUCHCOIN"), "{}", f.stderr);
    // The list answered -1121 as a whole; every symbol was then asked for to name the unknown one.
    assert_eq!(sim.counters().exchange_info_requests, 2);
    assert_eq!(sim.counters().depth_requests, 0);
}

#[test]
fn symbol_selection_mistakes_are_one_line() {
    let sim = util::sim(false, &["btcusdt"]);
    for (args, want) in [
        (
            vec!["--symbol", "ALL", "--quote", "XYZ"],
            "--symbol ALL --quote XYZ: exchangeInfo lists no TRADING symbol quoted in XYZ",
        ),
        (vec!["--symbol", "all,btcusdt"], "--symbol ALL means every symbol"),
        (vec!["--quote", "USDT"], "--quote narrows --symbol ALL"),
    ] {
        let f = RunArgs::against(&sim).duration(5.0).args(args.iter().copied()).run(LIMIT);
        assert_eq!(f.code, Some(2), "{args:?}: {}", f.stderr);
        assert_eq!(f.stderr.lines().count(), 1, "{args:?}: {}", f.stderr);
        assert!(f.stderr.contains(want), "{args:?}: {}", f.stderr);
    }
}

/// exchangeInfo answered 429 with a Retry-After of days: the wait listens to `--duration` (and
/// signals), so the run ends on time, with exit 0 and its stats, instead of sleeping it out.
#[test]
fn an_exchange_info_retry_after_of_days_still_ends_at_the_duration() {
    let names = vec!["btcusdt".to_owned()];
    let sim = sim(&names);
    sim.faults().reject_rest(tickfeed_sim::RestReject::TooManyRequests, 1, 999_999);
    let dir = util::temp_dir("snapshots-retry-after");
    let started = std::time::Instant::now();
    let (s, stderr) = run(&dir, RunArgs::against(&sim).symbols("BTCUSDT").duration(2.0));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "ended after {took:?}: {stderr}");
    assert_eq!(sim.counters().exchange_info_requests, 1, "not asked again inside the Retry-After");
    assert_eq!(s["events"], 0, "{s}");
    assert!(stderr.contains("429"), "{stderr}");
}
