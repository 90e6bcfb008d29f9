//! `tickfeed run --redundancy 2`: every shard over two live connections carrying the same streams.
//! Each event is taken from whichever connection delivers it first; a lag, a reset or a gap on
//! one connection costs no gap and no resync while the other is up, and the dumped books equal the
//! simulator's reference. The faults are aimed at one connection with the simulator's
//! per-connection switches. Handlers run with `--no-busy-poll` and a `--duration`, under a kill
//! timer, one test at a time.

mod util;

use std::path::Path;
use std::time::Duration;

use tickfeed_sim::{ConnInfo, SimHandle};
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);
const SYMBOLS: [&str; 3] = ["btcusdt", "ethusdt", "solusdt"];

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Waits for both connections of the one shard, and for every book's snapshot; returns the two
/// connections, oldest first.
fn two_connections_synced(sim: &SimHandle) -> Vec<ConnInfo> {
    util::wait_until("two connections", WAIT, || sim.faults().connections().len() == 2);
    util::wait_until("every snapshot", WAIT, || sim.counters().depth_requests >= SYMBOLS.len() as u64);
    // The snapshots' answers are applied and the books are in flow.
    std::thread::sleep(Duration::from_millis(800));
    sim.faults().connections()
}

fn base(sim: &SimHandle, dir: &Path, secs: f64) -> RunArgs {
    base_with(sim, dir, secs, 2)
}

fn base_with(sim: &SimHandle, dir: &Path, secs: f64, legs: usize) -> RunArgs {
    RunArgs::against(sim)
        .symbols(&SYMBOLS.join(","))
        .streams("depth,trade,bookTicker")
        .flag("--redundancy", &legs.to_string())
        .duration(secs)
        .depth_limit(5000)
        .output("none")
        .dump_book(dir)
        .stats(dir.join("stats.json"))
}

fn assert_no_gap_no_resync(s: &serde_json::Value) {
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{s}");
    assert_eq!(s["trade_id_gaps"], 0, "{s}");
    assert_eq!(s["book_ticker_mismatches"], 0, "{s}");
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn one_connection_lagging_and_the_other_reset_costs_no_gap_and_no_resync() {
    let _serial = util::serial();
    let sim = util::sim(false, &SYMBOLS);
    let dir = util::temp_dir("redundancy-reset");
    let child = base(&sim, &dir, 5.0).spawn();
    let conns = two_connections_synced(&sim);
    // The second connection runs 50 ms behind; then the first, the fast one, is reset.
    assert!(sim.faults().lag_connection(conns[1].id, Duration::from_millis(50)));
    std::thread::sleep(Duration::from_millis(1200));
    assert!(sim.faults().abort_connection(conns[0].id));
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_no_gap_no_resync(&s);
    assert_eq!((s["redundancy"].as_u64(), s["shards"].as_u64()), (Some(2), Some(1)), "{s}");
    assert_eq!(s["reconnects"], 1, "the reset connection came back: {s}");
    assert!(f.stderr.contains("books kept: connection"), "{}", f.stderr);
    // Per connection: both delivered, and the lagging one's copies came about 50 ms late.
    let links = s["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{s}");
    for l in links {
        assert!(l["frames"].as_u64().unwrap() > 100 && l["first"].as_u64().unwrap() > 0, "{l}");
    }
    let lagging: Vec<&serde_json::Value> =
        links.iter().filter(|l| l["lag_us_p50"].as_u64().unwrap() >= 45_000).collect();
    assert_eq!(lagging.len(), 1, "exactly one connection lags: {s}");
    assert!(lagging[0]["lag_us_p50"].as_u64().unwrap() < 200_000, "{s}");
    assert_eq!(lagging[0]["connections"], 1, "the lagging connection was not the one reset: {s}");
    for x in SYMBOLS {
        util::assert_dump_matches(&sim, &dir, &x.to_uppercase());
    }
}

#[test]
fn a_gap_on_one_copy_is_filled_from_the_other_and_two_hosts_are_used() {
    let _serial = util::serial();
    let sim = util::sim(false, &SYMBOLS);
    let dir = util::temp_dir("redundancy-gap");
    // A second --ws-url (after the simulator's own, which `against` gives) names the same
    // simulator by another name: connection B goes there.
    let other = sim.ws_base().replace("127.0.0.1", "localhost");
    let child = base(&sim, &dir, 4.0).flag("--ws-url", &other).spawn();
    let conns = two_connections_synced(&sim);
    let before = sim.counters().gaps_injected;
    // A gap in every symbol on one connection, later one on the other: never the same diff.
    assert_eq!(sim.faults().drop_next_diff_on(conns[0].id, &SYMBOLS), 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sim.faults().drop_next_diff_on(conns[1].id, &SYMBOLS[..1]), 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sim.faults().drop_next_diff_on(conns[0].id, &SYMBOLS[1..]), 2);
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    assert_eq!(sim.counters().gaps_injected - before, 6, "every gap was really made");
    let s = json(&dir.join("stats.json"));
    assert_no_gap_no_resync(&s);
    assert_eq!(s["reconnects"], 0, "{s}");
    let links = s["links"].as_array().unwrap();
    let urls: Vec<&str> = links.iter().map(|l| l["url"].as_str().unwrap()).collect();
    assert!(urls[0].contains("127.0.0.1") && urls[1].contains("localhost"), "{urls:?}");
    for x in SYMBOLS {
        util::assert_dump_matches(&sim, &dir, &x.to_uppercase());
    }
}

#[test]
fn when_both_connections_are_lost_the_books_resync() {
    let _serial = util::serial();
    let sim = util::sim(false, &SYMBOLS);
    let dir = util::temp_dir("redundancy-both");
    let child = base(&sim, &dir, 4.5).spawn();
    let conns = two_connections_synced(&sim);
    // Nothing carries the books while both are down: whatever was missed, they must resync.
    sim.faults().abort_connections();
    util::wait_until("both back", WAIT, || {
        let now = sim.faults().connections();
        now.len() == 2 && now.iter().all(|c| conns.iter().all(|o| o.id != c.id))
    });
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_eq!(s["reconnects"], 2, "{s}");
    for x in SYMBOLS {
        let sym = &s["symbols"][x.to_uppercase()];
        assert!(sym["resyncs"].as_u64().unwrap() >= 1, "{x} resynced after losing both connections: {s}");
        util::assert_dump_matches(&sim, &dir, &x.to_uppercase());
    }
    assert_eq!(s["book_ticker_mismatches"], 0, "{s}");
}

/// Not a test of behaviour but the measurement behind the README's redundancy figures, run by
/// hand: `cargo test --release --test live_redundancy -- --ignored --nocapture`. Three runs of
/// 20 s side by side against one simulator: one healthy connection alone; `--redundancy 2` with
/// connection B 50 ms behind; and the same with A reset at 10 s.
#[test]
#[ignore]
fn measure_latency_alone_lagging_pair_and_reset() {
    let _serial = util::serial();
    let secs = 20.0;
    for (name, legs, reset) in [("alone", 1, false), ("pair, B +50 ms", 2, false), ("pair, B +50 ms, A reset", 2, true)]
    {
        let sim = util::sim(false, &SYMBOLS);
        let dir = util::temp_dir("redundancy-measure");
        let child = base_with(&sim, &dir, secs, legs).spawn();
        util::wait_until("connections", WAIT, || sim.faults().connections().len() == legs);
        let conns = sim.faults().connections();
        if legs == 2 {
            assert!(sim.faults().lag_connection(conns[1].id, Duration::from_millis(50)));
        }
        if reset {
            std::thread::sleep(Duration::from_secs_f64(secs / 2.0));
            assert!(sim.faults().abort_connection(conns[0].id));
        }
        let f = util::wait_tickfeed(child, LIMIT);
        assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
        let s = json(&dir.join("stats.json"));
        let l = &s["latency_us"];
        println!(
            "{name}: events {} latency_us p50 {} p99 {} p999 {} | gaps {} resyncs {} reconnects {} held_ahead {}",
            s["events"], l["p50"], l["p99"], l["p999"], s["gaps"], s["resyncs"], s["reconnects"], s["held_ahead"]
        );
        if let Some(links) = s["links"].as_array() {
            for k in links {
                println!(
                    "    {}: frames {} first {} duplicates {} held {} lag_us p50 {} p99 {} (n={})",
                    k["leg"].as_str().unwrap_or("?"),
                    k["frames"],
                    k["first"],
                    k["duplicates"],
                    k["held"],
                    k["lag_us_p50"],
                    k["lag_us_p99"],
                    k["lag_samples"]
                );
            }
        }
    }
}
