//! Make before break: `tickfeed run` replacing its connection on `serverShutdown` and on the
//! (shortened) 24-hour rule without the books ever going stale, against the simulator. A
//! `serverShutdown` whose close comes later is answered by a switch once the new connection has
//! caught up; the handler's `--max-conn-age` switches before the simulator's own age limit cuts
//! the connection; a `serverShutdown` followed at once by a close is answered by an immediate
//! reconnect that keeps the books when nothing was missed. With the simulator's lag on one
//! connection, the old connection is made slower than the new one (frames of the new one arrive
//! before their predecessors on the old one) and the other way round; in every case the book's
//! update id only moves forward, no gap or resync happens, and the final book is the reference
//! book. Handlers run with `--no-busy-poll`.

mod util;

use std::path::Path;
use std::time::Duration;

use tickfeed_sim::SimHandle;
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// From the `tob-json` lines: the update id never goes back and the book never stops moving for
/// long (the simulator moves it every 10 ms). Returns the longest pause in milliseconds.
fn assert_never_stale(stdout: &str) -> f64 {
    let mut prev: Option<(f64, u64)> = None;
    let mut longest: f64 = 0.0;
    let mut n = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts: f64 = v["ts_recv_ms"].as_f64().unwrap();
        let id = v["lastUpdateId"].as_u64().unwrap();
        if let Some((pts, pid)) = prev {
            assert!(id > pid, "update id went from {pid} to {id}");
            longest = longest.max(ts - pts);
        }
        prev = Some((ts, id));
        n += 1;
    }
    assert!(n > 100, "only {n} book lines");
    assert!(longest < 400.0, "the book stood still for {longest} ms");
    longest
}

/// A handler against `sim` printing every book change (`tob-json`), on depth, trades and aggTrades,
/// with whole books (`--depth-limit 5000`) dumped to `dir` and the stats in `dir/stats.json`.
fn switch_run(sim: &SimHandle, dir: &Path) -> RunArgs {
    RunArgs::against(sim)
        .output("tob-json")
        .streams("depth,trade,aggTrade")
        .depth_limit(5000)
        .dump_book(dir)
        .stats(dir.join("stats.json"))
}

fn depth_requests(sim: &SimHandle) -> u64 {
    sim.counters().depth_requests
}

fn assert_clean(s: &serde_json::Value, stderr: &str) {
    assert_eq!(s["gaps"], 0, "{stderr}");
    assert_eq!(s["resyncs"], 0, "{stderr}");
    assert_eq!(s["trade_id_gaps"], 0, "{stderr}");
    assert_eq!(s["symbols"]["BTCUSDT"]["synced"], true);
}

#[test]
fn server_shutdown_switches_connections_with_zero_stale_time() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("switch-shutdown");
    let child = switch_run(&sim, &dir).duration(3.0).spawn();
    util::wait_until("first snapshot", WAIT, || depth_requests(&sim) >= 1);
    std::thread::sleep(Duration::from_millis(300));
    // The old connection falls 150 ms behind: the new one will deliver diffs before the old one
    // has delivered their predecessors.
    assert_eq!(sim.faults().lag_open_connections(Duration::from_millis(150)), 1);
    std::thread::sleep(Duration::from_millis(300));
    sim.faults().server_shutdown_then_close(Duration::from_millis(1500));
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_clean(&s, &f.stderr);
    assert_eq!(s["switches"], 1, "{}", f.stderr);
    assert_eq!(s["reconnects"], 1);
    assert_eq!(s["server_shutdowns"], 1);
    assert!(s["held_back"].as_u64().unwrap() > 0, "nothing was held back: the test did not overlap");
    assert_eq!(depth_requests(&sim), 1, "a snapshot was fetched again");
    assert!(f.stderr.contains("serverShutdown on connection #1"), "{}", f.stderr);
    assert!(f.stderr.contains("switched #1 -> #2 (the old connection caught up with it)"), "{}", f.stderr);
    let c = sim.counters();
    assert!(c.server_shutdowns_sent == 1 && c.lagged_messages > 0, "{c:?}");
    let longest = assert_never_stale(&f.stdout);
    eprintln!("longest pause of the book: {longest:.1} ms");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn max_conn_age_switches_before_the_old_connection_is_cut() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("switch-age");
    let child = switch_run(&sim, &dir).duration(3.0).flag("--max-conn-age", "0.8").spawn();
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_clean(&s, &f.stderr);
    let switches = s["switches"].as_u64().unwrap();
    assert!(switches >= 2, "{}", f.stderr);
    assert_eq!(s["reconnects"].as_u64().unwrap(), switches);
    assert_eq!(depth_requests(&sim), 1, "a snapshot was fetched again");
    assert!(f.stderr.contains("reached --max-conn-age 0.8s"), "{}", f.stderr);
    assert_never_stale(&f.stdout);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_new_connection_behind_the_old_one_is_waited_for_then_switched_to_without_loss() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("switch-behind");
    let child =
        switch_run(&sim, &dir).duration(2.5).flag("--max-conn-age", "1").flag("--switch-timeout", "0.5").spawn();
    util::wait_until("first snapshot", WAIT, || depth_requests(&sim) >= 1);
    // Connections opened from now on are 300 ms late: the new one repeats what the old one had.
    sim.faults().lag_new_connections(Duration::from_millis(300));
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_clean(&s, &f.stderr);
    assert!(s["switches"].as_u64().unwrap() >= 1);
    assert!(s["duplicates"].as_u64().unwrap() > 0, "the new connection repeated nothing: no overlap tested");
    assert_eq!(depth_requests(&sim), 1, "a snapshot was fetched again");
    // It never catches up (it is 300 ms late for good): the switch waits --switch-timeout, then
    // takes it anyway, losing nothing (it repeats what the book has, then continues it).
    assert!(f.stderr.contains("(switch timeout)"), "{}", f.stderr);
    assert!(sim.counters().lagged_messages > 0);
    assert_never_stale(&f.stdout);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn sim_max_conn_age_switches_before_the_server_cuts_the_connection() {
    let sim = util::sim(false, &["btcusdt"]);
    // The simulator cuts connections at 2 s (its 24-hour rule, shortened); the handler moves at 1 s.
    sim.faults().set_max_connection_age(Some(Duration::from_secs(2)));
    let dir = util::temp_dir("sim-age");
    let child = switch_run(&sim, &dir).duration(3.8).flag("--max-conn-age", "1").spawn();
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_clean(&s, &f.stderr);
    assert!(s["switches"].as_u64().unwrap() >= 2, "{}", f.stderr);
    let c = sim.counters();
    assert_eq!(c.disconnects_max_age, 0, "the simulator had to cut a connection: {c:?}\n{}", f.stderr);
    assert_eq!(c.rest_requests, 2, "exchangeInfo and one snapshot only: {c:?}");
    assert_never_stale(&f.stdout);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn sim_server_shutdown_then_close_reconnects_at_once() {
    // The simulator closes right after serverShutdown, so there is no overlap: the handler
    // reconnects immediately (no backoff) and keeps its books if the new connection's first diffs
    // are contiguous; otherwise the sync engine sees the gap and resyncs. At real-time pacing (a
    // diff every 100 ms) the reconnect nearly always beats the next diff.
    let cfg = tickfeed_sim::SimConfig { tls: false, levels_per_side: 300, ..Default::default() };
    let sim = tickfeed_sim::Sim::start(cfg).unwrap();
    let dir = util::temp_dir("sim-shutdown");
    let child = switch_run(&sim, &dir).duration(3.0).spawn();
    util::wait_until("snapshot", WAIT, || sim.counters().rest_requests >= 2);
    std::thread::sleep(Duration::from_millis(500));
    sim.faults().server_shutdown();
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_eq!(sim.counters().server_shutdowns_sent, 1);
    assert_eq!(s["server_shutdowns"], 1);
    assert_eq!(s["reconnects"], 1);
    assert!(f.stderr.contains("reconnecting now"), "{}", f.stderr);
    let (gaps, resyncs) = (s["gaps"].as_u64().unwrap(), s["resyncs"].as_u64().unwrap());
    eprintln!("gaps {gaps} resyncs {resyncs}");
    assert!((gaps, resyncs) == (0, 0) || (gaps, resyncs) == (1, 1), "{s}");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn held_frames_at_their_bound_switch_at_once() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("switch-held-full");
    let child = RunArgs::against(&sim)
        .output("none")
        .streams("depth")
        .stats(dir.join("stats.json"))
        .duration(5.0)
        .flag("--max-conn-age", "1")
        .flag("--switch-timeout", "30")
        .spawn();
    util::wait_until("first snapshot", WAIT, || depth_requests(&sim) >= 1);
    // The old connection falls 3 s behind: everything the new one delivers is ahead of the book
    // and held back.
    assert_eq!(sim.faults().lag_open_connections(Duration::from_secs(3)), 1);
    util::wait_until("a standby", WAIT, || sim.faults().connections().len() >= 2);
    let standby = sim.faults().connections().last().unwrap().clone();
    let stream = standby.streams.iter().find(|s| s.contains("@depth")).unwrap().clone();
    // A flood of big diffs far ahead of the book on the new connection: 80 x 0.9 MB.
    let pad = "x".repeat(900_000);
    for i in 0..80u64 {
        let id = 1_000_000_000_000 + i;
        let frame = format!(
            r#"{{"stream":"{stream}","data":{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{id},"u":{id},"b":[],"a":[],"pad":"{pad}"}}}}"#
        );
        assert!(sim.faults().inject_connection(standby.id, tickfeed_sim::Inject::Text(frame)));
    }
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&dir.join("stats.json"));
    assert_eq!(s["held_overflows"], 1, "{}", f.stderr);
    assert!(f.stderr.contains("(held-back frames reached "), "{}", f.stderr);
    assert!(s["switches"].as_u64().unwrap() >= 1);
}
