//! The whole market on one thread: `tickfeed run --symbol ALL` against a simulator of about a
//! thousand symbols (its own BTCUSDT and 1,000 generated ones, the `BREAK`/`HALT` ones not
//! trading) x depth + trade + bookTicker. Every book syncs under the default weight budget with no
//! 429 and no connection law broken. Then one shard's connection is reset, ten symbols of another
//! get a gap and a third shard gets a `serverShutdown`: only the symbols concerned resync, no
//! bookTicker check fails, and every book dumped at the end equals the simulator's reference
//! (the best 50 levels a side: the snapshots are 100 levels deep).

mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use tickfeed_sim::{ConnInfo, MarketSource, Pacing, Sim, SimConfig};
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(60);

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The uppercase symbols whose depth stream a connection carries.
fn symbols_of(c: &ConnInfo) -> BTreeSet<String> {
    c.streams.iter().filter_map(|s| s.strip_suffix("@depth@100ms")).map(str::to_uppercase).collect()
}

#[test]
fn a_thousand_symbols_sync_and_faults_resync_only_the_symbols_they_touch() {
    let sim = Sim::start(SimConfig {
        tls: false,
        pacing: Pacing::RealTime,
        source: MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 3 },
        // As deep as the generated symbols, within reach of the snapshots `auto` picks (limit 100).
        levels_per_side: 100,
        generated_symbols: 1000,
        ..SimConfig::default()
    })
    .expect("start the simulator");
    let dir = util::temp_dir("market");
    let stats = dir.join("stats.json");
    let child = RunArgs::against(&sim)
        .symbols("ALL")
        .streams("depth,trade,bookTicker")
        .flag("--depth-limit", "auto")
        .duration(16.0)
        .output("none")
        .dump_book(&dir)
        .stats(&stats)
        .spawn();
    // Every shard connected (66 symbols each), every trading symbol's snapshot answered, then a
    // moment for the books to be in flow.
    util::wait_until("the shards' connections", Duration::from_secs(20), || sim.faults().connections().len() >= 14);
    std::thread::sleep(Duration::from_millis(500));
    let mut conns = sim.faults().connections();
    let subscribed: BTreeSet<String> = conns.iter().flat_map(symbols_of).collect();
    assert!(subscribed.len() > 900, "{} symbols subscribed", subscribed.len());
    assert_eq!(conns.len(), subscribed.len().div_ceil(66), "one connection per shard of 66 symbols");
    let n = subscribed.len() as u64;
    util::wait_until("every snapshot", Duration::from_secs(30), || sim.counters().depth_requests >= n);
    std::thread::sleep(Duration::from_secs(2));
    conns.sort_by_key(|c| symbols_of(c).into_iter().next());
    // Shard 0 (the busiest symbols): a gap on ten of them. Shard 2: reset. Shard 1: serverShutdown
    // with the close 3 s later, the window Binance gives to move to a new connection.
    let gapped: Vec<String> = symbols_of(&conns[0]).into_iter().filter(|s| s.starts_with("SYN")).take(10).collect();
    let refs: Vec<&str> = gapped.iter().map(String::as_str).collect();
    assert_eq!(sim.faults().drop_next_diff_of(&refs), 10);
    let reset = symbols_of(&conns[2]);
    assert!(sim.faults().abort_connection(conns[2].id));
    assert!(sim.faults().server_shutdown_connection(conns[1].id, Duration::from_secs(3)));
    let f = util::wait_tickfeed(child, LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&stats);
    let c = sim.counters();
    // The laws, and the REST budget.
    assert_eq!(c.exchange_info_requests, 1);
    assert_eq!((c.rest_429_sent, c.rest_418_sent), (0, 0));
    assert_eq!((c.connect_attempts_refused, c.streams_refused, c.disconnects_rate_limit), (0, 0, 0));
    assert_eq!(c.slow_consumer_sim_behind, 0, "the simulator itself kept up (backlog max {})", c.ws_backlog_max);
    assert_eq!(c.disconnects_slow_consumer, 0, "the handler kept up");
    assert!(c.gaps_injected >= 10, "{c:?}");
    let symbols = s["symbols"].as_object().unwrap();
    assert_eq!(symbols.keys().cloned().collect::<BTreeSet<String>>(), subscribed, "every TRADING symbol");
    assert_eq!(s["shards"].as_u64(), Some(conns.len() as u64));
    for (name, v) in symbols {
        let first = v["synced_after_ms"].as_u64().unwrap_or_else(|| panic!("{name} never synced: {v}"));
        assert!(first < 60_000, "{name} synced after {first} ms");
        assert_eq!(v["synced"], true, "{name} is synced at the end: {v}");
        let touched = reset.contains(name) || gapped.contains(name);
        let resyncs = v["resyncs"].as_u64().unwrap();
        assert!(touched || resyncs == 0, "{name} resynced though no fault touched it: {v}");
    }
    // The reset shard's books all resynced; each gapped symbol saw its gap and resynced.
    for name in &reset {
        assert!(symbols[name.as_str()]["resyncs"].as_u64().unwrap() >= 1, "{name}: {}", symbols[name.as_str()]);
    }
    for name in &gapped {
        let v = &symbols[name.as_str()];
        assert!(v["gaps"].as_u64().unwrap() >= 1 && v["resyncs"].as_u64().unwrap() >= 1, "{name}: {v}");
    }
    // The serverShutdown was a make-before-break switch, not a resync.
    assert!(s["switches"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(s["reconnects"].as_u64(), Some(2), "the reset and the switch: {s}");
    assert_eq!(s["book_ticker_mismatches"], 0, "{s}");
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 1000, "{s}");
    // Books synced from 100-level snapshots: the best 50 levels a side are known exactly (a
    // generated book holds a little over 100 levels a side).
    for name in symbols.keys() {
        util::assert_dump_top_matches(&sim, &dir, name, 50);
    }
}
