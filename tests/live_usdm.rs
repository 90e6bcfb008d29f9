//! `tickfeed run --venue usdm` against the simulator in USDⓈ-M futures mode: books kept by the
//! futures procedure (ids that skip, `pu`) equal the simulator's reference byte for byte, a `pu`
//! break is a gap and a resync after which the book is right again, the bookTicker audit agrees,
//! a reconnect resyncs, and aggTrade arrives on a `/market` connection beside the `/public` one.
//! Handlers run with `--no-busy-poll` and a `--duration`, under a kill timer.

mod util;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tickfeed_sim::SimHandle;
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(40);
const WAIT: Duration = Duration::from_secs(10);

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

struct Run {
    dir: PathBuf,
    stats: PathBuf,
    child: std::process::Child,
}

/// `args` under futures with this file's usual flags: whole books (the simulator's 300 levels
/// fit a 1000-level snapshot), no output, the books dumped and the stats written.
fn start(name: &str, args: RunArgs) -> Run {
    let dir = util::temp_dir(name);
    let stats = dir.join("stats.json");
    let child = args.flag("--venue", "usdm").depth_limit(1000).output("none").dump_book(&dir).stats(&stats).spawn();
    Run { dir, stats, child }
}

fn finish(run: Run) -> (util::Finished, serde_json::Value, PathBuf) {
    let f = util::wait_tickfeed(run.child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    (f, json(&run.stats), run.dir)
}

/// Waits until the simulator answered `n` REST requests and the last snapshot had time to apply.
fn sim_rest(sim: &SimHandle, n: u64) {
    util::wait_until("REST requests", WAIT, || sim.counters().rest_requests >= n);
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn futures_books_equal_the_reference_and_aggtrade_comes_on_a_market_connection() {
    let _one = util::serial();
    let sim = util::sim_usdm(true, &["btcusdt", "ethusdt"]);
    let dir = util::temp_dir("usdm-sync-ca");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let args =
        RunArgs::against(&sim).ca_file(&ca).symbols("btcusdt,ethusdt").streams("depth,trade,bookTicker,aggTrade");
    let run = start("usdm-sync", args.duration(3.0));
    let (f, s, dir) = finish(run);
    // One /public connection (depth, trade, bookTicker) and one /market (aggTrade).
    assert_eq!(sim.counters().ws_connections, 2, "{}", f.stderr);
    assert_eq!(sim.counters().wrong_tier_streams, 0, "every stream on its own tier");
    assert!(f.stderr.contains("1 symbols x 1 streams") || f.stderr.contains("2 symbols x 1 streams"), "{}", f.stderr);
    assert_eq!(s["reconnects"], 0);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64(), s["bad_messages"].as_u64()), (Some(0), Some(0), Some(0)));
    assert!(s["agg_trades"].as_u64().unwrap() > 0, "aggTrades arrived on the /market connection");
    assert!(s["trades"].as_u64().unwrap() > 0 && s["depth_updates"].as_u64().unwrap() > 0);
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 0, "the audit ran: {s}");
    assert_eq!(s["book_ticker_mismatches"], 0);
    // Futures REST only: exchangeInfo once, a snapshot per book.
    assert_eq!(sim.counters().exchange_info_requests, 1);
    assert_eq!(sim.counters().depth_requests, 2);
    for sym in ["BTCUSDT", "ETHUSDT"] {
        util::assert_dump_matches(&sim, &dir, sym);
    }
}

#[test]
fn a_pu_break_is_a_gap_and_the_book_is_right_after_its_resync() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt"]);
    let run = start("usdm-gap", RunArgs::against(&sim).streams("depth,bookTicker").duration(3.0));
    sim_rest(&sim, 2);
    // The next diff is not sent: the one after it names the missing diff's u as its pu.
    sim.faults().drop_next_diff();
    util::wait_until("a diff dropped", WAIT, || sim.counters().gaps_injected == 1);
    sim_rest(&sim, 3);
    std::thread::sleep(Duration::from_millis(300));
    sim.faults().drop_next_diff();
    util::wait_until("a second diff dropped", WAIT, || sim.counters().gaps_injected == 2);
    sim_rest(&sim, 4);
    let (f, s, dir) = finish(run);
    assert_eq!(s["gaps"], 2, "{}", f.stderr);
    assert_eq!(s["resyncs"], 2, "{}", f.stderr);
    assert_eq!(s["reconnects"], 0);
    assert!(f.stderr.contains("sequence gap at U="), "{}", f.stderr);
    assert_eq!(s["symbols"]["BTCUSDT"]["synced"], true);
    assert_eq!(s["book_ticker_mismatches"], 0);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_reset_futures_connection_reconnects_and_resyncs() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt"]);
    let run = start("usdm-reset", RunArgs::against(&sim).streams("depth,trade,aggTrade").duration(3.5));
    sim_rest(&sim, 2);
    util::wait_until("both tiers connected", WAIT, || sim.counters().ws_connections >= 2);
    sim.faults().abort_connections();
    util::wait_until("both reconnected", WAIT, || sim.counters().ws_connections >= 4);
    sim_rest(&sim, 3);
    let (f, s, dir) = finish(run);
    assert_eq!(sim.counters().disconnects_abort, 2);
    assert_eq!(s["reconnects"], 2, "{}", f.stderr);
    // The /public connection's loss resyncs the book; the /market one's does not.
    assert_eq!(s["resyncs"], 1, "{}", f.stderr);
    assert_eq!(s["gaps"], 0);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_depth_limit_futures_does_not_take_is_one_line() {
    let f = util::run_tickfeed(&["run", "--venue", "usdm", "--depth-limit", "5000"], Duration::from_secs(20));
    assert_eq!(f.code, Some(2));
    assert_eq!(
        f.stderr.trim(),
        "tickfeed: --depth-limit 5000: USDⓈ-M futures snapshots take at most 1000 levels (limits 5, 10, 20, 50, 100, 500, 1000)"
    );
}

/// Writes tests/data/usdm/sim_btcusdt_usdm.txt.gz (a `--record` capture of the futures simulator
/// with one `pu` break, merged into one file of `<ns> <frame>` lines by receive time) and
/// sim_btcusdt_usdm.reference.json (the simulator's reference book at the recording's last
/// diff), which tests/replay_usdm.rs replays. Run by hand to regenerate:
/// `cargo test --test live_usdm -- --ignored regenerate_the_futures_recording_fixture`.
#[test]
#[ignore = "writes the committed fixture"]
fn regenerate_the_futures_recording_fixture() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt"]);
    let rec = util::temp_dir("usdm-fixture-rec");
    let args = RunArgs::against(&sim).streams("depth,trade,bookTicker").duration(3.0).record(&rec);
    let run = start("usdm-fixture", args.flag("--record-compress", "none"));
    sim_rest(&sim, 2);
    std::thread::sleep(Duration::from_millis(800));
    sim.faults().drop_next_diff();
    util::wait_until("a diff dropped", WAIT, || sim.counters().gaps_injected == 1);
    sim_rest(&sim, 3);
    let (_, s, dir) = finish(run);
    assert_eq!(s["gaps"], 1);
    let id = util::assert_dump_matches(&sim, &dir, "BTCUSDT");
    // The capture's files, merged by receive time (stable: a GET line stays before its body).
    let mut lines: Vec<(u64, usize, String)> = Vec::new();
    let mut files = Vec::new();
    for kind in ["orderbook", "trades", "bookTickers"] {
        let mut stack = vec![rec.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.parent().unwrap().ends_with(kind) {
                    files.push(p);
                }
            }
        }
    }
    for (n, f) in files.iter().enumerate() {
        for l in std::fs::read_to_string(f).unwrap().lines() {
            let ns: u64 = l.split(' ').next().unwrap().parse().unwrap();
            lines.push((ns, n, l.to_string()));
        }
    }
    lines.sort_by_key(|(ns, n, _)| (*ns, *n));
    let mut text = String::new();
    for (_, _, l) in &lines {
        text.push_str(l);
        text.push('\n');
    }
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/usdm");
    let gz = std::fs::File::create(out.join("sim_btcusdt_usdm.txt.gz")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::best());
    std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
    enc.finish().unwrap();
    let reference = sim.reference_book("BTCUSDT", id).unwrap().to_dump_json();
    std::fs::write(out.join("sim_btcusdt_usdm.reference.json"), format!("{reference}\n")).unwrap();
}

/// Make before break on futures: the old connection lags 150 ms, so the new one delivers diffs
/// before the old one has delivered their predecessors; those are held (placed by `pu`), the
/// switch waits for the old connection to catch up, and the held diffs continue the book. No
/// gap, no resync, no second snapshot.
#[test]
fn a_futures_switch_waits_for_the_old_connection_by_pu_and_loses_nothing() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt"]);
    let args = RunArgs::against(&sim).streams("depth,trade").duration(3.0).flag("--switch-timeout", "5");
    let run = start("usdm-switch", args);
    sim_rest(&sim, 2);
    assert_eq!(sim.faults().lag_open_connections(Duration::from_millis(150)), 1);
    std::thread::sleep(Duration::from_millis(300));
    sim.faults().server_shutdown_then_close(Duration::from_millis(1500));
    let (f, s, dir) = finish(run);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{}", f.stderr);
    assert_eq!(s["switches"], 1, "{}", f.stderr);
    assert!(s["held_back"].as_u64().unwrap() > 0, "nothing was held back: the test did not overlap");
    assert!(f.stderr.contains("switched #1 -> #2 (the old connection caught up with it)"), "{}", f.stderr);
    assert_eq!(sim.counters().depth_requests, 1, "a snapshot was fetched again");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

/// `--redundancy 2` on futures: a diff dropped on one connection (a `pu` break there) is taken
/// from the other, which is how a frame ahead of its stream is recognised by `pu`. No gap, no
/// resync; the book equals the reference.
#[test]
fn with_redundancy_a_pu_break_on_one_copy_is_filled_from_the_other() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt", "ethusdt"]);
    let args = RunArgs::against(&sim).symbols("btcusdt,ethusdt").streams("depth,bookTicker");
    let run = start("usdm-redundancy", args.flag("--redundancy", "2").duration(3.5));
    util::wait_until("two connections", WAIT, || sim.faults().connections().len() == 2);
    util::wait_until("both snapshots", WAIT, || sim.counters().depth_requests >= 2);
    std::thread::sleep(Duration::from_millis(800));
    let conns = sim.faults().connections();
    assert_eq!(sim.faults().drop_next_diff_on(conns[0].id, &["btcusdt", "ethusdt"]), 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sim.faults().drop_next_diff_on(conns[1].id, &["btcusdt"]), 1);
    util::wait_until("three diffs dropped", WAIT, || sim.counters().gaps_injected == 3);
    let (f, s, dir) = finish(run);
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{}", f.stderr);
    assert_eq!(s["reconnects"], 0);
    assert_eq!(s["book_ticker_mismatches"], 0);
    for sym in ["BTCUSDT", "ETHUSDT"] {
        util::assert_dump_matches(&sim, &dir, sym);
    }
}

/// `--symbol ALL` on futures: every TRADING PERPETUAL contract of `/fapi/v1/exchangeInfo` (asked
/// once, weight 1), and book lines printed at the contract's pricePrecision ("60000.40", not
/// the tick's one decimal).
#[test]
fn symbol_all_takes_the_perpetual_contracts_and_prints_at_their_precision() {
    let _one = util::serial();
    let sim = util::sim_usdm(false, &["btcusdt", "ethusdt"]);
    let dir = util::temp_dir("usdm-all");
    let stats = dir.join("stats.json");
    let f = RunArgs::against(&sim)
        .flag("--venue", "usdm")
        .symbols("ALL")
        .streams("depth")
        .depth_limit(100)
        .duration(2.0)
        .output("tob-json")
        .stats(&stats)
        .run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let s = json(&stats);
    let syms: Vec<&String> = s["symbols"].as_object().unwrap().keys().collect();
    assert_eq!(syms, ["BTCUSDT", "ETHUSDT"]);
    assert_eq!(sim.counters().exchange_info_requests, 1);
    let line = f.stdout.lines().find(|l| l.contains("\"BTCUSDT\"")).expect("a BTCUSDT book line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let bid = v["bid"].as_str().unwrap();
    assert_eq!(bid.split('.').nth(1).map(str::len), Some(2), "pricePrecision 2: {line}");
}
