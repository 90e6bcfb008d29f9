//! `tickfeed run` surviving what a real exchange does to a feed handler: sequence gaps, TCP
//! resets, close frames, protocol violations, silence, pings, fragmented/malformed/binary frames,
//! HTTP 429, several symbols on one connection, signals and stop conditions. The simulator
//! (`tickfeed_sim`) injects each fault while the binary runs and its counters prove the fault
//! happened; the dumped books are compared byte for byte with its reference book. Handlers run
//! with `--no-busy-poll` and a `--duration`, under a kill timer.

mod util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tickfeed_sim::{Inject, RestReject, SimHandle};
use util::RunArgs;

const LIMIT: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(10);

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A handler running against a websocket/REST pair.
struct Run {
    dir: PathBuf,
    stats: PathBuf,
    child: std::process::Child,
}

/// Starts `args` with this file's usual flags on top: whole books (`--depth-limit 5000`), no
/// output, the books dumped and the stats written in a fresh directory named `name`.
fn start(name: &str, args: RunArgs) -> Run {
    let dir = util::temp_dir(name);
    let stats = dir.join("stats.json");
    let child = args.depth_limit(5000).output("none").dump_book(&dir).stats(&stats).spawn();
    Run { dir, stats, child }
}

fn finish(run: Run) -> (util::Finished, serde_json::Value, PathBuf) {
    let f = util::wait_tickfeed(run.child, LIMIT);
    eprintln!("{}", f.stderr);
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let s = json(&run.stats);
    (f, s, run.dir)
}

/// Waits until the simulator has answered `n` REST requests (exchangeInfo, asked once for every
/// symbol, and the depth snapshots) and the last snapshot had time to apply.
fn sim_rest(sim: &SimHandle, n: u64) {
    util::wait_until("REST requests", WAIT, || sim.counters().rest_requests >= n);
    std::thread::sleep(Duration::from_millis(300));
}

fn sim_conns(sim: &SimHandle) -> u64 {
    sim.counters().ws_connections
}

// ---- Against the simulator ----

#[test]
fn sequence_gap_resyncs_that_book() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("gap", RunArgs::against(&sim).duration(2.5));
    sim_rest(&sim, 2);
    sim.faults().drop_next_diff();
    util::wait_until("a gap injected", WAIT, || sim.counters().gaps_injected == 1);
    sim_rest(&sim, 3);
    let (f, s, dir) = finish(run);
    assert_eq!(s["gaps"], 1, "{}", f.stderr);
    assert_eq!(s["resyncs"], 1);
    assert_eq!(s["reconnects"], 0);
    assert!(f.stderr.contains("sequence gap at U="), "{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn tcp_reset_and_close_frame_reconnect_and_resync() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("reset-close", RunArgs::against(&sim).duration(3.5));
    sim_rest(&sim, 2);
    sim.faults().abort_connections();
    util::wait_until("second connection", WAIT, || sim_conns(&sim) >= 2);
    sim_rest(&sim, 3);
    sim.faults().close_connections();
    util::wait_until("third connection", WAIT, || sim_conns(&sim) >= 3);
    sim_rest(&sim, 4);
    let (f, s, dir) = finish(run);
    let c = sim.counters();
    assert_eq!((c.disconnects_abort, c.disconnects_close_1001), (1, 1));
    // The close frame was answered (the simulator saw the client's close reply or the socket end).
    assert_eq!(s["reconnects"], 2, "{}", f.stderr);
    assert_eq!(s["resyncs"], 2, "{}", f.stderr);
    assert_eq!(s["gaps"], 0);
    assert!(f.stderr.contains("Connection reset by peer") || f.stderr.contains("server closed the connection"));
    assert!(f.stderr.contains("server sent close 1001"), "{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn a_ping_flood_never_makes_the_handler_break_the_5_messages_a_second_law() {
    let sim = util::sim(false, &["btcusdt"]);
    // The server enforces Binance's law on what it receives, and pings every 20 ms.
    sim.faults().set_max_incoming_per_sec(Some(5));
    sim.faults().set_ping(Some(Duration::from_millis(20)), Duration::from_secs(60));
    let run = start("ping-flood", RunArgs::against(&sim).duration(2.5));
    let (_, s, dir) = finish(run);
    let c = sim.counters();
    assert!(c.pings_sent >= 100, "{c:?}");
    assert_eq!(c.disconnects_rate_limit, 0, "the handler sent more than 5 messages in a second: {c:?}");
    assert_eq!(s["reconnects"], 0);
    let (pings, pongs) = (s["pings"].as_u64().unwrap(), s["pongs"].as_u64().unwrap());
    assert!((8..=4 * 3).contains(&pongs), "{pongs} pongs for {pings} pings in 2.5 s: at most 4 a second");
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn pings_are_answered_with_the_same_payload() {
    let sim = util::sim(false, &["btcusdt"]);
    // Ping every 300 ms (a client may answer at most 4 pings a second and keep Binance's
    // 5-messages-a-second law); a missing or wrong pong within 1 s closes the connection.
    sim.faults().set_ping(Some(Duration::from_millis(300)), Duration::from_secs(1));
    let run = start("pings", RunArgs::against(&sim).duration(3.0));
    let (_, s, dir) = finish(run);
    let c = sim.counters();
    assert!(c.pings_sent >= 8, "{c:?}");
    assert_eq!(c.pongs_matched, c.pongs_received);
    assert!(c.pongs_matched + 1 >= c.pings_sent, "{c:?}");
    assert_eq!((c.disconnects_pong_timeout, c.disconnects_pong_mismatch), (0, 0));
    assert_eq!(s["pings"], s["pongs"]);
    assert!(s["pings"].as_u64().unwrap() >= 8);
    assert_eq!(s["reconnects"], 0);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn fragmented_malformed_binary_and_unknown_frames_are_survived() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("frames", RunArgs::against(&sim).duration(2.0).streams("depth,trade,bookTicker"));
    sim_rest(&sim, 2);
    // Every message in three frames from now on, and one of each bad kind.
    sim.faults().set_fragment(Some(3));
    std::thread::sleep(Duration::from_millis(200));
    sim.faults().send_malformed();
    sim.faults().send_binary();
    sim.faults().send_unknown_stream();
    util::wait_until("bad frames sent", WAIT, || {
        let c = sim.counters();
        c.malformed_sent + c.binary_sent + c.unknown_stream_sent == 3
    });
    let (f, s, dir) = finish(run);
    assert!(sim.counters().fragmented_messages > 50);
    assert_eq!(s["bad_messages"], 3, "{}", f.stderr);
    assert_eq!(s["binary_frames"], 1);
    assert_eq!(s["reconnects"], 0);
    assert_eq!(s["gaps"], 0);
    assert!(s["book_ticker_checks"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["book_ticker_mismatches"], 0);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn http_429_retry_after_is_honoured() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("429", RunArgs::against(&sim).duration(4.5));
    sim_rest(&sim, 2);
    // The next REST request (the resync snapshot after a gap) gets 429, Retry-After: 2.
    sim.faults().reject_rest(RestReject::TooManyRequests, 1, 2);
    sim.faults().drop_next_diff();
    util::wait_until("the 429", WAIT, || sim.counters().rest_429_sent == 1);
    let after_429 = sim.counters().rest_requests;
    std::thread::sleep(Duration::from_millis(1700));
    assert_eq!(sim.counters().rest_requests, after_429, "asked again before Retry-After expired");
    util::wait_until("the retried snapshot", WAIT, || sim.counters().rest_requests > after_429);
    std::thread::sleep(Duration::from_millis(300));
    let (f, s, dir) = finish(run);
    assert_eq!(s["rest_rate_limited"], 1);
    assert_eq!(s["resyncs"], 1);
    assert!(f.stderr.contains("HTTP 429 (rate limited), not asking again for 2s"), "{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn several_symbols_share_one_connection_and_a_gap_resyncs_only_its_book() {
    let sim = util::sim(false, &["btcusdt", "ethusdt"]);
    let run = start("multi", RunArgs::against(&sim).duration(2.5).symbols("BTCUSDT,ethusdt"));
    sim_snapshots(&sim, 2);
    sim.faults().drop_next_diff();
    util::wait_until("a gap injected", WAIT, || sim.counters().gaps_injected == 1);
    sim_snapshots(&sim, 3);
    let (f, s, dir) = finish(run);
    assert_eq!(sim_conns(&sim), 1);
    let gaps =
        |sym: &str| (s["symbols"][sym]["gaps"].as_u64().unwrap(), s["symbols"][sym]["resyncs"].as_u64().unwrap());
    let (btc, eth) = (gaps("BTCUSDT"), gaps("ETHUSDT"));
    assert!(
        (btc, eth) == ((1, 1), (0, 0)) || (btc, eth) == ((0, 0), (1, 1)),
        "one book resynced, the other untouched: {btc:?} {eth:?}\n{}",
        f.stderr
    );
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
    util::assert_dump_matches(&sim, &dir, "ETHUSDT");
}

#[test]
fn sigterm_and_sigint_end_the_run_with_files_written() {
    let sim = util::sim(false, &["btcusdt"]);
    for (sig, name) in [(15, "sigterm"), (2, "sigint")] {
        let dir = util::temp_dir(name);
        let hist = dir.join("latency.hist");
        let before = sim.counters().rest_requests;
        let run = start(name, RunArgs::against(&sim).hist(&hist));
        sim_rest(&sim, before + 2);
        util::signal(run.child.id(), sig);
        let t = Instant::now();
        let (f, s, dir) = finish(run);
        assert!(t.elapsed() < Duration::from_secs(2), "slow to stop: {:?}", t.elapsed());
        assert!(f.stderr.contains("run ended (signal)"), "{}", f.stderr);
        assert!(s["events"].as_u64().unwrap() > 0);
        util::assert_dump_matches(&sim, &dir, "BTCUSDT");
        let h = std::fs::read_to_string(&hist).unwrap();
        assert!(h.contains("Value") && h.lines().count() > 3, "{h}");
        assert!(dir.join("latency.hist.process").exists());
    }
}

#[test]
fn max_events_stops_at_exactly_n() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("max-events", RunArgs::against(&sim).max_events(120).duration(20.0));
    let (f, s, _) = finish(run);
    assert_eq!(s["events"], 120, "{}", f.stderr);
    assert!(f.stderr.contains("run ended (max-events)"), "{}", f.stderr);
}

#[test]
fn closed_stdout_stops_output_not_the_run() {
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("stdout-closed");
    let stats = dir.join("stats.json");
    let mut child = RunArgs::against(&sim)
        .duration(1.5)
        .arg("--quiet")
        .output("tob")
        .stats(&stats)
        .command()
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
    // Only the handler spins (the simulator blocks between messages), for 0.7 s, pinned to core 0.
    let sim = util::sim(false, &["btcusdt"]);
    let dir = util::temp_dir("busy");
    let f =
        RunArgs::against(&sim).busy_poll().duration(0.7).output("none").depth_limit(5000).dump_book(&dir).run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

// ---- Frames as given: protocol violations, an oversized message; a silent market ----

/// Waits until the simulator has answered `n` depth snapshots and the last one had time to apply.
fn sim_snapshots(sim: &SimHandle, n: u64) {
    util::wait_until("snapshot requests", WAIT, || sim.counters().depth_requests >= n);
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn protocol_violation_ends_the_connection_not_the_process() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("violation", RunArgs::against(&sim).duration(2.5));
    sim_snapshots(&sim, 1);
    // A frame with RSV1 set (no extension negotiated), then one with a reserved opcode.
    assert_eq!(sim.faults().inject(Inject::Raw(vec![0xC1, 0x02, b'{', b'}'])), 1);
    util::wait_until("second connection", WAIT, || sim_conns(&sim) >= 2);
    sim_snapshots(&sim, 2);
    assert_eq!(sim.faults().inject(Inject::Raw(vec![0x83, 0x00])), 1);
    util::wait_until("third connection", WAIT, || sim_conns(&sim) >= 3);
    sim_snapshots(&sim, 3);
    let (f, s, dir) = finish(run);
    assert_eq!(sim.counters().frames_injected, 2);
    assert!(f.stderr.contains("websocket protocol violation: reserved bits"), "{}", f.stderr);
    assert!(f.stderr.contains("websocket protocol violation: unknown opcode 0x3"), "{}", f.stderr);
    assert_eq!(s["reconnects"], 2);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn oversized_message_ends_the_connection_not_the_process() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("oversized", RunArgs::against(&sim).duration(2.0).flag("--max-message", "4096"));
    sim_snapshots(&sim, 1);
    assert_eq!(sim.faults().inject(Inject::Text(format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000)))), 1);
    util::wait_until("second connection", WAIT, || sim_conns(&sim) >= 2);
    sim_snapshots(&sim, 2);
    let (f, s, dir) = finish(run);
    assert!(f.stderr.contains("over the 4096-byte limit"), "{}", f.stderr);
    assert_eq!(s["reconnects"], 1);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

#[test]
fn silent_stream_is_detected_and_reconnected() {
    let sim = util::sim(false, &["btcusdt"]);
    let run = start("stale", RunArgs::against(&sim).duration(3.0).flag("--stale-secs", "0.5"));
    sim_snapshots(&sim, 1);
    // The market stops; the connection stays open and silent.
    sim.faults().set_market_paused(true);
    util::wait_until("reconnect after silence", WAIT, || sim_conns(&sim) >= 2);
    sim.faults().set_market_paused(false);
    sim_snapshots(&sim, 2);
    let (f, s, dir) = finish(run);
    assert_eq!(sim.counters().market_pauses, 1);
    assert!(s["stale_reconnects"].as_u64().unwrap() >= 1, "{}", f.stderr);
    assert!(f.stderr.contains("no data for") && f.stderr.contains("(--stale-secs)"), "{}", f.stderr);
    util::assert_dump_matches(&sim, &dir, "BTCUSDT");
}

// ---- Failures before any data ----

/// A server answering every connection with `response` (then closing); returns its port.
fn fixed_http_server(response: &'static [u8]) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            use std::io::{Read, Write};
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut b = [0u8; 4096];
            let _ = c.read(&mut b);
            let _ = c.write_all(response);
        }
    });
    port
}

#[test]
fn refused_upgrade_shows_status_line_and_body_and_backs_off() {
    let sim = util::sim(false, &["btcusdt"]);
    let port = fixed_http_server(
        b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 60\r\nRetry-After: 120\r\n\r\n{\"code\":-1003,\"msg\":\"Way too many requests; IP banned.\"}    ",
    );
    let f = RunArgs::against(&sim).ws_url(&format!("ws://127.0.0.1:{port}")).duration(1.5).run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let lines: Vec<&str> = f.stderr.lines().filter(|l| l.contains("handshake refused")).collect();
    assert_eq!(lines.len(), 1, "a 418 is not retried at once:\n{}", f.stderr);
    assert!(
        lines[0].contains("HTTP/1.1 418 I'm a teapot: {\"code\":-1003,\"msg\":\"Way too many requests; IP banned.\"}")
    );
    // The refusal's Retry-After (120 s) is the wait, not the 30 s default.
    assert!(lines[0].contains("retrying in 120.0s"), "{}", lines[0]);
}

#[test]
fn dns_failure_is_one_line_and_retried() {
    let sim = util::sim(false, &["btcusdt"]);
    let f = RunArgs::against(&sim).ws_url("ws://nonexistent.invalid:9443").duration(2.0).run(LIMIT);
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    let line = f.stderr.lines().find(|l| l.contains("DNS lookup of nonexistent.invalid failed")).expect(&f.stderr);
    assert!(line.contains("retrying in"), "{line}");
}
