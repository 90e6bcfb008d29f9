//! The fault soak: `tickfeed run` against the simulator for a set time while faults drawn at
//! random hit it. The faults: gaps, TCP resets, close frames, serverShutdown, fragmented
//! messages, ping floods, malformed, binary and unknown-stream frames, frames far ahead of the
//! book, a lagging network path, a paused market, REST 429s, and slow REST answers.
//!
//! At checkpoints (SIGUSR1: tickfeed writes its synced books while it runs) every book written
//! equals the simulator's reference at its update id. At the end, after a quiet spell, the run
//! must show:
//! - exit 0, no bookTicker mismatch;
//! - every book synced, and every dumped book equal to the simulator's reference;
//! - every fault recovered;
//! - RSS and open file descriptors flat after warm-up (asserted).
//!
//! The counts are printed.
//!
//! In the suite it runs 60 s. The 10-minute soak is one command:
//! `cargo test --release --test soak -- --ignored --nocapture`
//! (`TICKFEED_SOAK_SECS=N` sets another length, `TICKFEED_SOAK_SEED=N` replays a fault sequence).

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use tickfeed_sim::{Inject, RestReject};
use util::RunArgs;

const SYMBOLS: [&str; 3] = ["btcusdt", "ethusdt", "solusdt"];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident set (kB) and open file descriptors of `pid`.
fn usage(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// One checkpoint: the dumps of the last one removed, SIGUSR1 sent, and every book written (the
/// synced ones: files appear by rename, whole) compared with the reference at its update id.
/// Returns how many were compared.
fn checkpoint(sim: &tickfeed_sim::SimHandle, dir: &Path, pid: u32) -> u32 {
    for x in SYMBOLS {
        let _ = std::fs::remove_file(dir.join(format!("{}.json", x.to_uppercase())));
    }
    let ok = std::process::Command::new("kill").args(["-USR1", &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill -USR1 {pid}");
    std::thread::sleep(Duration::from_millis(700));
    let mut n = 0;
    for x in SYMBOLS {
        let sym = x.to_uppercase();
        if dir.join(format!("{sym}.json")).exists() {
            util::assert_dump_matches(sim, dir, &sym);
            n += 1;
        }
    }
    n
}

/// A small deterministic generator (the seed is printed, so a failing sequence can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The suite's soak: 60 s (`TICKFEED_SOAK_SECS` overrides).
#[test]
fn random_faults_for_a_set_time_leave_right_books_and_flat_memory() {
    soak(env_u64("TICKFEED_SOAK_SECS", 60));
}

/// The full soak, 10 minutes unless `TICKFEED_SOAK_SECS` says otherwise; not part of the suite:
/// `cargo test --release --test soak -- --ignored --nocapture`.
#[test]
#[ignore = "10 minutes: run with --ignored"]
fn ten_minute_soak() {
    soak(env_u64("TICKFEED_SOAK_SECS", 600));
}

fn soak(secs: u64) {
    let secs = secs.max(30);
    let seed = env_u64("TICKFEED_SOAK_SEED", std::process::id() as u64);
    // Seconds with no fault at the end, for the last recovery (a reconnect backoff grown by a
    // streak of losses can reach some seconds).
    let quiet = (secs / 4).max(15);
    eprintln!("soak: {secs} s, seed {seed} (TICKFEED_SOAK_SEED={seed} replays it)");
    let sim = util::sim(false, &SYMBOLS);
    let dir = util::temp_dir("soak");
    let stats = dir.join("stats.json");
    let child = RunArgs::against(&sim)
        .symbols(&SYMBOLS.join(","))
        .streams("depth,trade,bookTicker")
        .duration(secs as f64)
        // 1000 levels hold the simulator's whole 300-level books (so dumps compare level for
        // level) at a fifth of limit 5000's weight: a soak's dozens of resyncs stay in budget.
        .depth_limit(1000)
        .flag("--stale-secs", "3")
        .output("none")
        .dump_book(&dir)
        .stats(&stats)
        .spawn();
    let pid = child.id();
    let started = Instant::now();
    let faults = sim.faults();
    let mut rng = Rng(seed);
    let mut told: Vec<&'static str> = Vec::new();
    let mut samples: Vec<(f64, u64, usize)> = Vec::new();
    let fault_until = Duration::from_secs(secs - quiet);
    let mut next_sample = Instant::now();
    // Checkpoints: SIGUSR1 makes tickfeed write its synced books now; each must equal the
    // simulator's reference at its own update id, faults or not.
    let checkpoint_every = Duration::from_secs((secs / 6).clamp(8, 60));
    let mut next_checkpoint = Instant::now() + checkpoint_every;
    let (mut checkpoints, mut checked) = (0u32, 0u32);
    while started.elapsed() < fault_until {
        if Instant::now() >= next_checkpoint {
            next_checkpoint = Instant::now() + checkpoint_every;
            checkpoints += 1;
            checked += checkpoint(&sim, &dir, pid);
        }
        // One fault every 0.8..2.8 s; standing ones are undone before the next.
        std::thread::sleep(Duration::from_millis(800 + rng.below(2000)));
        faults.set_fragment(None);
        faults.set_ping(None, Duration::from_secs(60));
        faults.set_market_paused(false);
        faults.set_rest_delay(None);
        faults.lag_open_connections(Duration::ZERO);
        let what = match rng.below(13) {
            0 => {
                faults.drop_next_diff();
                "gap"
            }
            1 => {
                faults.abort_connections();
                "tcp reset"
            }
            2 => {
                faults.close_connections();
                "close 1001"
            }
            3 => {
                faults.server_shutdown_then_close(Duration::from_millis(500));
                "serverShutdown"
            }
            4 => {
                faults.set_fragment(Some(3));
                "fragments"
            }
            5 => {
                faults.set_ping(Some(Duration::from_millis(30)), Duration::from_secs(60));
                "ping flood"
            }
            6 => {
                faults.send_malformed();
                faults.send_binary();
                faults.send_unknown_stream();
                "bad frames"
            }
            7 => {
                // Diffs far ahead of every book: each is a gap, then a resync.
                for s in SYMBOLS {
                    faults.inject(Inject::Text(format!(
                        r#"{{"stream":"{s}@depth@100ms","data":{{"e":"depthUpdate","E":1,"s":"{}","U":999999999999,"u":999999999999,"b":[],"a":[]}}}}"#,
                        s.to_uppercase()
                    )));
                }
                "frames ahead of the book"
            }
            8 => {
                faults.lag_open_connections(Duration::from_millis(200));
                "lagging path"
            }
            9 => {
                faults.set_market_paused(true);
                "market paused"
            }
            10 => {
                faults.reject_rest(RestReject::TooManyRequests, 1, 1);
                faults.drop_next_diff();
                "429 on the resync"
            }
            11 => {
                faults.set_rest_delay(Some(Duration::from_millis(400)));
                faults.drop_next_diff();
                "slow REST"
            }
            _ => "nothing",
        };
        told.push(what);
        if Instant::now() >= next_sample {
            if let Some((rss, fds)) = usage(pid) {
                samples.push((started.elapsed().as_secs_f64(), rss, fds));
            }
            next_sample = Instant::now() + Duration::from_secs(1);
        }
    }
    faults.set_fragment(None);
    faults.set_ping(None, Duration::from_secs(60));
    faults.set_market_paused(false);
    faults.set_rest_delay(None);
    faults.lag_open_connections(Duration::ZERO);
    while started.elapsed() < Duration::from_secs(secs - 1) {
        if let Some((rss, fds)) = usage(pid) {
            samples.push((started.elapsed().as_secs_f64(), rss, fds));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let f = util::wait_tickfeed(child, Duration::from_secs(60));
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    eprintln!("soak: {checkpoints} checkpoints, {checked} synced books equal to the reference");
    assert!(checkpoints >= 2 && checked >= checkpoints, "too few books checked at checkpoints\nstderr:\n{}", f.stderr);
    let s = json(&stats);
    let c = sim.counters();
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for w in &told {
        match kinds.iter_mut().find(|(k, _)| k == w) {
            Some(e) => e.1 += 1,
            None => kinds.push((w, 1)),
        }
    }
    eprintln!("soak: faults {kinds:?}");
    eprintln!(
        "soak: handler events {} reconnects {} gaps {} resyncs {} bad_messages {} stale_reconnects {} \
         book_ticker_checks {} mismatches {}; sim aborts {} closes {} shutdowns {} gaps {} 429s {}",
        s["events"],
        s["reconnects"],
        s["gaps"],
        s["resyncs"],
        s["bad_messages"],
        s["stale_reconnects"],
        s["book_ticker_checks"],
        s["book_ticker_mismatches"],
        c.disconnects_abort,
        c.disconnects_close_1001,
        c.server_shutdowns_sent,
        c.gaps_injected,
        c.rest_429_sent
    );
    // Right books: never a mismatch, every book synced again and equal to the reference.
    assert_eq!(s["book_ticker_mismatches"], 0, "{s}");
    for x in SYMBOLS {
        let v = &s["symbols"][x.to_uppercase()];
        assert_eq!(v["synced"], true, "{x} recovered from every fault: {v}\nstderr:\n{}", f.stderr);
        util::assert_dump_matches(&sim, &dir, &x.to_uppercase());
    }
    // The faults really happened and were survived.
    assert!(s["reconnects"].as_u64().unwrap() >= 1 && s["resyncs"].as_u64().unwrap() >= 1, "{s}");
    // Flat after warm-up: the last third's peak within 25% (+16 MB) of the warm-up's, and no
    // descriptor leak (a reconnect or a REST worker in flight may hold a few).
    let warm = samples.len() / 3;
    assert!(samples.len() >= 10, "{samples:?}");
    let peak = |s: &[(f64, u64, usize)]| s.iter().map(|x| x.1).max().unwrap_or(0);
    let fds = |s: &[(f64, u64, usize)]| s.iter().map(|x| x.2).max().unwrap_or(0);
    let (rss_warm, rss_late) = (peak(&samples[..warm]), peak(&samples[2 * warm..]));
    let (fd_warm, fd_late) = (fds(&samples[..warm]), fds(&samples[2 * warm..]));
    eprintln!("soak: RSS warm-up peak {rss_warm} kB, last third peak {rss_late} kB; fds {fd_warm} then {fd_late}");
    assert!(rss_late <= rss_warm + rss_warm / 4 + 16_384, "RSS grew: {samples:?}");
    assert!(fd_late <= fd_warm + 4, "descriptors grew: {samples:?}");
}
