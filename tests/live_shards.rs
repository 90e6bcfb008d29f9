//! `tickfeed run` with the symbols split over several connections (`--streams-per-conn`): every
//! shard syncs its own books, a gap or a lost connection resyncs only the symbols it carries, and
//! the dumped books equal the simulator's reference. Handlers run with `--no-busy-poll` and a
//! `--duration`, under a kill timer.

mod util;

use std::path::Path;
use std::time::Duration;

use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

const SYMBOLS: [&str; 6] = ["btcusdt", "ethusdt", "bnbusdt", "solusdt", "xrpusdt", "adausdt"];

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn six_symbols_over_three_connections_sync_and_a_gap_resyncs_only_its_symbol() {
    let _serial = util::serial();
    let sim = util::sim(false, &SYMBOLS);
    let dir = util::temp_dir("shards");
    let stats = dir.join("stats.json");
    let child = RunArgs::against(&sim)
        .symbols(&SYMBOLS.join(","))
        .streams("depth,trade")
        .flag("--streams-per-conn", "4")
        .duration(4.0)
        .depth_limit(5000)
        .output("none")
        .dump_book(&dir)
        .stats(&stats)
        .spawn();
    util::wait_until("three connections", WAIT, || sim.counters().ws_connections >= 3);
    util::wait_until("every snapshot", WAIT, || sim.counters().depth_requests >= SYMBOLS.len() as u64);
    std::thread::sleep(Duration::from_millis(1500));
    // Drops the next diff on every open connection: one symbol of each shard gets a gap.
    sim.faults().drop_next_diff();
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&stats);
    assert_eq!(s["shards"], 3, "{s}");
    assert_eq!((s["connections"].as_u64(), s["reconnects"].as_u64()), (Some(3), Some(0)), "{s}");
    assert_eq!(sim.counters().ws_connections, 3, "one connection per shard, no reconnect");
    assert_eq!((s["connect_attempts"].as_u64(), s["connect_attempts_delayed"].as_u64()), (Some(3), Some(0)), "{s}");
    // Exactly one symbol per shard lost a diff and resynced; the others never did.
    let gaps: Vec<u64> = SYMBOLS.iter().map(|x| s["symbols"][x.to_uppercase()]["gaps"].as_u64().unwrap()).collect();
    assert_eq!(gaps.iter().sum::<u64>(), 3, "{gaps:?}");
    for pair in gaps.chunks(2) {
        assert_eq!(pair.iter().sum::<u64>(), 1, "one gap per shard: {gaps:?}");
    }
    assert_eq!(s["resyncs"], 3, "{s}");
    assert!(f.stderr.contains("shard 0: connected #1") && f.stderr.contains("shard 2: connected #1"), "{}", f.stderr);
    for x in SYMBOLS {
        util::assert_dump_matches(&sim, &dir, &x.to_uppercase());
    }
}

#[test]
fn a_shard_that_reaches_its_age_switches_without_touching_the_others() {
    let _serial = util::serial();
    let sim = util::sim(false, &SYMBOLS[..4]);
    let dir = util::temp_dir("shards-age");
    let stats = dir.join("stats.json");
    let child = RunArgs::against(&sim)
        .symbols(&SYMBOLS[..4].join(","))
        .streams("depth,trade")
        .flag("--streams-per-conn", "4")
        .flag("--max-conn-age", "1.5")
        // Room for shard 0's switch (due at 1.5 s) to complete on a loaded machine.
        .duration(5.0)
        .depth_limit(5000)
        .output("none")
        .dump_book(&dir)
        .stats(&stats)
        .spawn();
    let f = util::wait_tickfeed(child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&stats);
    assert_eq!(s["shards"], 2, "{s}");
    // Both shards replaced their connection by make-before-break, at staggered times, and no book
    // lost its sync for it.
    assert!(s["switches"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!((s["gaps"].as_u64(), s["resyncs"].as_u64()), (Some(0), Some(0)), "{s}");
    let ages: Vec<&str> = f.stderr.lines().filter(|l| l.contains("reached --max-conn-age")).collect();
    assert!(ages.iter().any(|l| l.contains("shard 0:")) && ages.iter().any(|l| l.contains("shard 1:")), "{ages:?}");
    assert!(ages.iter().any(|l| l.contains("1.5s")) && ages.iter().any(|l| l.contains("1.1s")), "staggered: {ages:?}");
    for x in &SYMBOLS[..4] {
        util::assert_dump_matches(&sim, &dir, &x.to_uppercase());
    }
}

#[test]
fn many_symbols_print_a_summary_a_second_unless_print_names_them() {
    let _serial = util::serial();
    let names: Vec<String> = (0..25).map(|i| format!("s{i:02}usdt")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // One simulator per run, the first dropped before the second starts. Two runs in one minute
    // against one simulator share its REST weight count, and the second found the budget spent
    // by the first's resyncs on a loaded machine ("snapshot waits 60.0s (request weight
    // budget)"). And a simulator left alive keeps generating its 25 markets at 10x with nobody
    // reading: with two alive the machine fell behind and the second served nothing in 4.5 s.
    let sim = util::sim(false, &refs);
    // Long enough for every book to sync on a loaded machine (the suite runs tests side by side).
    let args = |sim: &tickfeed_sim::SimHandle| {
        RunArgs::against(sim).symbols(&names.join(",")).streams("depth").duration(4.5).output("tob")
    };
    // 25 symbols, no --print: only the summary, about one line a second.
    let f = args(&sim).run(LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert!((2..=5).contains(&lines.len()), "{}", f.stdout);
    assert!(lines.iter().all(|l| l.starts_with("25 symbols: ") && l.contains(" synced | ")), "{}", f.stdout);
    // --print names the symbols whose book lines are wanted: only theirs, no summary.
    drop(sim);
    let sim = util::sim(false, &refs);
    let f = args(&sim).flag("--print", "S03USDT,s07usdt").run(LIMIT);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    assert!(f.stdout.lines().all(|l| l.starts_with("S03USDT ") || l.starts_with("S07USDT ")), "{}", f.stdout);
    assert!(f.stdout.contains("S03USDT ") && f.stdout.contains("S07USDT "), "{}\nstderr:\n{}", f.stdout, f.stderr);
}
