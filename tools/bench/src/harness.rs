//! The harness: for each mode and rate it starts a fresh simulator on the recording (pinned to
//! core 0 in the pinned modes), lets one client connect while the market is paused, starts the
//! market, and ends the run after `--secs` or when the recording runs out (fixed rates), or when
//! the client has read every message (max rate). Each client is its own process: the `tickfeed`
//! binary, or this binary as `e2e client floor|usual`. Then the next client gets a new simulator,
//! so every client sees the same messages from the same start.
//!
//! Not here: what the clients do per message, and how results are printed ([`crate::report`]).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tickfeed_sim::{FaultPlan, MarketSource, Pacing, Sim, SimConfig, SimHandle};

use crate::client::{pin, ClientConfig, Stop, Summary};

/// The recording's files, in order (one continuous recording split at midnight).
pub const RECORDING: [&str; 2] = ["btcusdt_20240808.gz", "btcusdt_20240809.gz"];

/// The streams the recording has, as every client subscribes to them.
pub const STREAM_PATH: &str =
    "/stream?streams=btcusdt@depth@100ms/btcusdt@trade/btcusdt@bookTicker&timeUnit=MICROSECOND";

/// The core the simulator is pinned to in the pinned modes; clients get [`CLIENT_CORE`].
pub const SIM_CORE: usize = 0;
/// See [`SIM_CORE`].
pub const CLIENT_CORE: usize = 1;

/// A feed rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Messages per second (all streams).
    Fixed(u32),
    /// As fast as the client reads.
    Max,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Fixed(n) => write!(f, "{n}/s"),
            Rate::Max => f.write_str("max"),
        }
    }
}

/// Pinned or not, busy-polling or blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Simulator on core 0, client on core 1.
    pub pinned: bool,
    /// The client spins on a non-blocking socket.
    pub busy: bool,
}

impl Mode {
    /// Every mode, in the order they run.
    pub const ALL: [Mode; 4] = [
        Mode { pinned: true, busy: true },
        Mode { pinned: true, busy: false },
        Mode { pinned: false, busy: true },
        Mode { pinned: false, busy: false },
    ];

    /// `pinned-busy` and so on.
    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.to_string() == s)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = if self.pinned { "pinned" } else { "unpinned" };
        let b = if self.busy { "busy" } else { "block" };
        write!(f, "{p}-{b}")
    }
}

/// One of the three clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// The reference every ratio is to: read, decrypt, stamp.
    Floor,
    /// The `tickfeed run` binary.
    Tickfeed,
    /// tokio + tokio-tungstenite + serde_json + BTreeMap.
    Usual,
}

impl ClientKind {
    /// Every client, in the order they run.
    pub const ALL: [ClientKind; 3] = [ClientKind::Floor, ClientKind::Tickfeed, ClientKind::Usual];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Floor => "floor",
            ClientKind::Tickfeed => "tickfeed",
            ClientKind::Usual => "usual",
        }
    }

    /// By name.
    pub fn parse(s: &str) -> Option<ClientKind> {
        ClientKind::ALL.into_iter().find(|c| c.name() == s)
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Rates, in order.
    pub rates: Vec<Rate>,
    /// Longest run per client per rate, seconds (fixed rates; a rate the recording cannot fill
    /// for that long ends with the recording).
    pub secs: f64,
    /// Modes, in order.
    pub modes: Vec<Mode>,
    /// Clients, in order (the floor first, so ratios can be printed as soon as a row is done).
    pub clients: Vec<ClientKind>,
    /// The recording's files.
    pub files: Vec<PathBuf>,
    /// The tickfeed binary.
    pub tickfeed: PathBuf,
    /// This binary, run as `client floor|usual`.
    pub self_exe: PathBuf,
    /// Scratch folder for certificates, stats and client reports.
    pub work: PathBuf,
}

/// Extra figures from tickfeed's `--stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TickfeedExtra {
    /// BTCUSDT's book synced at the end.
    pub synced: bool,
    /// Resyncs (e.g. the best price moving past the snapshot's range, then a new snapshot).
    pub resyncs: u64,
    /// Of the resyncs: the best price moved past the snapshot's deepest level.
    pub beyond_snapshot: u64,
    /// Of the resyncs: a bookTicker disagreed with the book.
    pub audit_resyncs: u64,
    /// Of the resyncs: a snapshot that never connected to the stream.
    pub unconnected_snapshots: u64,
    /// Of the resyncs: the ladder had to drop a level.
    pub evictions: u64,
    /// Sequence gaps.
    pub gaps: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Undecodable frames.
    pub bad_messages: u64,
    /// bookTicker checks against the book and mismatches.
    pub book_ticker_checks: u64,
    /// See `book_ticker_checks`.
    pub book_ticker_mismatches: u64,
    /// Socket read to book updated, per read, ns.
    pub process_ns: Summary,
}

/// One client's run at one mode and rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// `floor`, `tickfeed` or `usual`.
    pub client: String,
    /// `pinned-busy` and so on.
    pub mode: String,
    /// `10000/s` or `max`.
    pub rate: String,
    /// Market messages the client received.
    pub events: u64,
    /// The run's length, seconds: from the market's start to `--secs`, the recording's end
    /// (fixed rates), or the client's exit after its last message (max).
    pub window_s: f64,
    /// `events / window_s`.
    pub events_per_s: f64,
    /// Receive wall clock minus `E`, µs.
    pub latency_us: Summary,
    /// Messages whose `E` was after the receive clock.
    pub negative_latency: u64,
    /// The run went as planned (client connected, received messages, ended cleanly).
    pub ok: bool,
    /// Anything the reader of the table should know about this run.
    pub notes: Vec<String>,
    /// Fixed rates: milliseconds from asking the client to stop to its exit (writing its report
    /// and tearing down). A max-rate run ends at the client's exit, so it carries about this
    /// much on top of the last message.
    pub exit_ms: Option<f64>,
    /// The most messages the simulator's connection found waiting for it at once: near 0, the
    /// simulator kept up with its own pacing; in the thousands, the simulator (or the client's
    /// reading) fell behind and latency includes that queue.
    pub sim_backlog_max: u64,
    /// tickfeed's own figures (tickfeed rows only).
    pub tickfeed: Option<TickfeedExtra>,
}

/// Runs the whole plan, calling `done` after each run.
pub fn run_plan(plan: &Plan, mut done: impl FnMut(&RunResult)) -> Result<Vec<RunResult>, String> {
    std::fs::create_dir_all(&plan.work).map_err(|e| format!("{}: {e}", plan.work.display()))?;
    let mut max_events = None;
    if plan.rates.contains(&Rate::Max) {
        let n = count_max_events(plan)?;
        eprintln!(
            "e2e: the recording gives {n} messages at max rate; each client there ends after {}",
            n.saturating_sub(MAX_SLACK)
        );
        max_events = Some(n);
    }
    let mut out = Vec::new();
    for &mode in &plan.modes {
        for &rate in &plan.rates {
            for &client in &plan.clients {
                eprintln!("e2e: {} {mode} {rate} ...", client.name());
                let r = match rate {
                    Rate::Fixed(_) => run_one(plan, client, mode, rate, max_events)?,
                    Rate::Max => median_of(MAX_REPEATS, || run_one(plan, client, mode, rate, max_events))?,
                };
                done(&r);
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Runs at max rate per client: the whole recording takes well under a second there, so one run
/// is at the mercy of one scheduler hiccup; the median of three is reported.
const MAX_REPEATS: usize = 3;

/// The run with the median events/s of `n` runs, its notes saying what the others gave.
fn median_of(n: usize, mut run: impl FnMut() -> Result<RunResult, String>) -> Result<RunResult, String> {
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        runs.push(run()?);
    }
    runs.sort_by(|a, b| a.events_per_s.total_cmp(&b.events_per_s));
    let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.events_per_s)).collect();
    let mut mid = runs.swap_remove(n / 2);
    mid.notes.insert(0, format!("median of {n} runs ({} /s)", all.join(", ")));
    // What went wrong in the others is said too, not only in the run shown.
    for other in runs.iter().filter(|r| !r.ok) {
        mid.ok = false;
        mid.notes.push(format!("another run at {:.0}/s: {}", other.events_per_s, other.notes.join("; ")));
    }
    Ok(mid)
}

/// At max rate a client ends after this many fewer messages than the recording gives, so a
/// message lost to a race at the market's start cannot leave it waiting.
const MAX_SLACK: u64 = 10;

fn pacing(rate: Rate) -> Pacing {
    match rate {
        Rate::Fixed(n) => Pacing::Rate(n),
        Rate::Max => Pacing::AsFastAsRead,
    }
}

/// The simulator's event log at max rate. As fast as the client reads, the market runs ahead of
/// the connection by as much as the log holds, and REST serves the market's book, so a snapshot
/// is that far ahead of the stream. With the default 16,384 messages (about 570 diffs) that is
/// more than the 200 covered diffs after which tickfeed gives a snapshot up as unconnected, and
/// tickfeed spends the run resyncing; 1,024 messages (about 36 diffs) is what a client keeping up
/// with a real exchange sees.
const MAX_RATE_LOG: usize = 1024;

/// A simulator on the recording, its threads on core 0 when `pinned` (threads inherit the
/// affinity of the thread that spawns them, and this one exists only to start it).
fn start_sim(plan: &Plan, rate: Rate, pinned: bool) -> Result<SimHandle, String> {
    let config = SimConfig {
        tls: true,
        source: MarketSource::Replay { paths: plan.files.clone() },
        pacing: pacing(rate),
        log_capacity: match rate {
            Rate::Fixed(_) => SimConfig::default().log_capacity,
            Rate::Max => MAX_RATE_LOG,
        },
        // No pings: a 20 s ping would land in some runs and not others.
        faults: FaultPlan { ping_interval: None, ..FaultPlan::default() },
        ..SimConfig::default()
    };
    let t = std::thread::Builder::new()
        .name("e2e-sim-start".into())
        .spawn(move || -> Result<SimHandle, String> {
            if pinned {
                pin(Some(SIM_CORE))?;
            }
            let sim = Sim::start(config).map_err(|e| format!("simulator: {e}"))?;
            // Nothing flows until a client is connected (at most the first message goes first).
            sim.faults().set_market_paused(true);
            Ok(sim)
        })
        .map_err(|e| format!("thread: {e}"))?;
    t.join().map_err(|_| "the simulator's start panicked".to_string())?
}

/// How many messages a client gets at max rate: an in-process floor client reads the whole
/// recording once.
fn count_max_events(plan: &Plan) -> Result<u64, String> {
    let sim = start_sim(plan, Rate::Max, false)?;
    let cfg = ClientConfig {
        addr: sim.local_addr(),
        path: STREAM_PATH.to_string(),
        ca_der: sim.ca_der().ok_or("the simulator has no CA")?.to_vec(),
        busy: false,
        core: None,
        max_events: None,
    };
    let stop = Stop::default();
    let (tx, rx) = std::sync::mpsc::channel::<TcpStream>();
    let s2 = stop.clone();
    let t = std::thread::spawn(move || crate::floor::run(&cfg, &s2, |s| drop(tx.send(s))));
    let sock = rx.recv_timeout(Duration::from_secs(20)).map_err(|_| "count: the floor client did not connect")?;
    wait_connected(&sim, Duration::from_secs(20), || false)?;
    sim.faults().set_market_paused(false);
    let deadline = Instant::now() + Duration::from_secs(300);
    while !sim.market_finished() {
        if Instant::now() > deadline {
            return Err("count: the recording did not finish within 300 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Until nothing more is written for a while.
    let mut last = sim.counters().messages_sent;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = sim.counters().messages_sent;
        if now == last {
            break;
        }
        last = now;
    }
    stop.stop(&sock);
    let report = t.join().map_err(|_| "count: the floor client panicked")??;
    sim.shutdown();
    let n = report.events.min(last);
    if n <= MAX_SLACK {
        return Err(format!("count: only {n} messages came through"));
    }
    Ok(n)
}

fn wait_connected(sim: &SimHandle, limit: Duration, mut gone: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while sim.open_connections() == 0 {
        if gone() {
            return Err("the client exited before connecting".into());
        }
        if Instant::now() > deadline {
            return Err(format!("no websocket connection within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Files the simulator's CA is written to for a client.
fn write_ca(sim: &SimHandle, work: &Path) -> Result<(PathBuf, PathBuf), String> {
    let pem = work.join("ca.pem");
    let der = work.join("ca.der");
    std::fs::write(&pem, sim.ca_pem().ok_or("no CA")?).map_err(|e| format!("{}: {e}", pem.display()))?;
    std::fs::write(&der, sim.ca_der().ok_or("no CA")?).map_err(|e| format!("{}: {e}", der.display()))?;
    Ok((pem, der))
}

fn client_command(
    plan: &Plan,
    client: ClientKind,
    mode: Mode,
    addr: SocketAddr,
    ca: &(PathBuf, PathBuf),
    out: &Path,
    max_events: Option<u64>,
) -> Command {
    let mut c;
    match client {
        ClientKind::Tickfeed => {
            c = Command::new(&plan.tickfeed);
            c.args(["run", "--symbol", "btcusdt", "--streams", "depth,trade,bookTicker", "--output", "none"]);
            c.arg("--ws-url").arg(format!("wss://{addr}"));
            c.arg("--rest-url").arg(format!("https://{addr}"));
            c.arg("--ca-file").arg(&ca.0);
            c.arg("--stats").arg(out);
            if mode.pinned {
                c.arg("--core").arg(CLIENT_CORE.to_string());
            }
            if !mode.busy {
                c.arg("--no-busy-poll");
            }
            if let Some(n) = max_events {
                c.arg("--max-events").arg(n.to_string());
            }
        }
        ClientKind::Floor | ClientKind::Usual => {
            c = Command::new(&plan.self_exe);
            c.args(["client", client.name(), "--path", STREAM_PATH]);
            c.arg("--addr").arg(addr.to_string());
            c.arg("--ca-der").arg(&ca.1);
            c.arg("--out").arg(out);
            c.arg(if mode.busy { "--busy" } else { "--block" });
            if mode.pinned {
                c.arg("--core").arg(CLIENT_CORE.to_string());
            }
            if let Some(n) = max_events {
                c.arg("--max-events").arg(n.to_string());
            }
        }
    }
    c
}

/// Asks a client to end: SIGTERM for tickfeed (it writes its stats as on Ctrl-C), end of stdin
/// for the own clients.
fn ask_to_stop(client: ClientKind, child: &mut Child) {
    match client {
        ClientKind::Tickfeed => {
            let Ok(pid) = i32::try_from(child.id()) else { return };
            // SAFETY: kill(2) with a pid this process spawned and has not yet waited for (so the
            // pid cannot have been reused) and a valid signal number; it touches no memory.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        ClientKind::Floor | ClientKind::Usual => drop(child.stdin.take()),
    }
}

/// Waits for `child` to exit until `limit`; kills it after that. Returns the exit instant and
/// whether it exited by itself with status 0.
fn wait_exit(child: &mut Child, limit: Duration) -> (Instant, Option<bool>) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (Instant::now(), Some(status.success())),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return (Instant::now(), None);
            }
        }
    }
}

/// One client, one mode, one rate, on a fresh simulator.
fn run_one(
    plan: &Plan,
    client: ClientKind,
    mode: Mode,
    rate: Rate,
    max_count: Option<u64>,
) -> Result<RunResult, String> {
    let sim = start_sim(plan, rate, mode.pinned)?;
    let ca = write_ca(&sim, &plan.work)?;
    let tag = format!("{}-{mode}-{}", client.name(), rate.to_string().replace("/s", ""));
    let out = plan.work.join(format!("{tag}.json"));
    let _ = std::fs::remove_file(&out);
    let max_events = match rate {
        Rate::Max => max_count.map(|n| n.saturating_sub(MAX_SLACK)),
        Rate::Fixed(_) => None,
    };
    let log = plan.work.join(format!("{tag}.stderr"));
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = client_command(plan, client, mode, sim.local_addr(), &ca, &out, max_events);
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::from(log_file));
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", cmd.get_program().to_string_lossy()))?;
    let mut notes = Vec::new();

    let connected = wait_connected(&sim, Duration::from_secs(30), || matches!(child.try_wait(), Ok(Some(_))));
    if let Err(e) = connected {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{} {mode} {rate}: {e} (its stderr: {})", client.name(), log.display()));
    }
    let t0 = Instant::now();
    sim.faults().set_market_paused(false);

    let mut exit_ms = None;
    let (window, exited_ok) = match rate {
        Rate::Fixed(_) => {
            let limit = Duration::from_secs_f64(plan.secs);
            let mut end = t0 + limit;
            loop {
                std::thread::sleep(Duration::from_millis(5));
                if t0.elapsed() >= limit {
                    break;
                }
                if sim.market_finished() {
                    end = Instant::now();
                    notes.push(format!("recording ended after {:.1} s", (end - t0).as_secs_f64()));
                    // What is still on its way.
                    std::thread::sleep(Duration::from_millis(300));
                    break;
                }
                if let Ok(Some(_)) = child.try_wait() {
                    end = Instant::now();
                    notes.push("client exited early".into());
                    break;
                }
            }
            let asked = Instant::now();
            ask_to_stop(client, &mut child);
            let (exited, ok) = wait_exit(&mut child, Duration::from_secs(20));
            exit_ms = Some((exited - asked).as_secs_f64() * 1e3);
            (end - t0, ok)
        }
        Rate::Max => {
            let (at, ok) = wait_exit(&mut child, Duration::from_secs(300));
            if ok.is_none() {
                notes.push("did not read the whole recording within 300 s".into());
            }
            (at - t0, ok)
        }
    };
    if exited_ok != Some(true) {
        notes.push(format!("client exit: {exited_ok:?}, see {}", log.display()));
    }
    let counters = sim.counters();
    sim.shutdown();

    let text = std::fs::read_to_string(&out)
        .map_err(|e| format!("{} {mode} {rate}: no report {}: {e}", client.name(), out.display()))?;
    let mut r = RunResult {
        client: client.name().to_string(),
        mode: mode.to_string(),
        rate: rate.to_string(),
        events: 0,
        window_s: window.as_secs_f64(),
        events_per_s: 0.0,
        latency_us: Summary::default(),
        negative_latency: 0,
        ok: exited_ok == Some(true),
        notes,
        exit_ms,
        sim_backlog_max: counters.ws_backlog_max,
        tickfeed: None,
    };
    match client {
        ClientKind::Tickfeed => {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", out.display()))?;
            r.events = v["events"].as_u64().unwrap_or(0);
            r.latency_us = summary(&v["latency_us"]);
            r.negative_latency = v["negative_latency"].as_u64().unwrap_or(0);
            let n = |k: &str| v[k].as_u64().unwrap_or(0);
            let extra = TickfeedExtra {
                synced: v["symbols"]["BTCUSDT"]["synced"].as_bool().unwrap_or(false),
                resyncs: n("resyncs"),
                beyond_snapshot: n("beyond_snapshot"),
                audit_resyncs: n("audit_resyncs"),
                unconnected_snapshots: n("unconnected_snapshots"),
                evictions: n("evictions"),
                gaps: n("gaps"),
                reconnects: n("reconnects"),
                bad_messages: n("bad_messages"),
                book_ticker_checks: n("book_ticker_checks"),
                book_ticker_mismatches: n("book_ticker_mismatches"),
                process_ns: summary(&v["process_ns"]),
            };
            if !extra.synced {
                r.notes.push("BTCUSDT not synced at the end".into());
                r.ok = false;
            }
            if extra.resyncs > 0 {
                r.notes.push(format!(
                    "{} resyncs (beyond_snapshot {}, audit {}, unconnected {}, evictions {})",
                    extra.resyncs,
                    extra.beyond_snapshot,
                    extra.audit_resyncs,
                    extra.unconnected_snapshots,
                    extra.evictions
                ));
            }
            if extra.reconnects > 0 || extra.gaps > 0 || extra.bad_messages > 0 || extra.book_ticker_mismatches > 0 {
                r.notes.push(format!(
                    "reconnects {} gaps {} bad {} mismatches {}",
                    extra.reconnects, extra.gaps, extra.bad_messages, extra.book_ticker_mismatches
                ));
            }
            r.tickfeed = Some(extra);
        }
        ClientKind::Floor | ClientKind::Usual => {
            let c: crate::client::ClientReport =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", out.display()))?;
            r.events = c.events;
            r.latency_us = c.latency_us;
            r.negative_latency = c.negative_latency;
            if c.bad_messages > 0 {
                r.notes.push(format!("{} bad messages", c.bad_messages));
            }
            if !matches!(c.end.as_str(), "stopped" | "max-events") {
                r.notes.push(format!("ended: {}", c.end));
                r.ok = false;
            }
        }
    }
    if counters.disconnects_slow_consumer > 0 {
        let sim_behind = counters.slow_consumer_sim_behind;
        r.notes
            .push(format!("dropped by the simulator as a slow consumer ({sim_behind} of them the simulator's fault)"));
        r.ok = false;
    }
    if r.events == 0 {
        r.ok = false;
        r.notes.push("no events".into());
    }
    r.events_per_s = if r.window_s > 0.0 { r.events as f64 / r.window_s } else { 0.0 };
    Ok(r)
}

fn summary(v: &serde_json::Value) -> Summary {
    let n = |k: &str| v[k].as_u64().or_else(|| v[k].as_f64().map(|f| f as u64)).unwrap_or(0);
    Summary { count: n("count"), p50: n("p50"), p90: n("p90"), p99: n("p99"), p999: n("p999"), max: n("max") }
}

/// Runs `e2e client floor|usual ...`: stops at end of stdin, writes the report to `out`.
pub fn client_main(args: &[String]) -> Result<(), String> {
    let (kind, cfg, out) = crate::client::parse_client_args(args)?;
    let stop = Stop::default();
    let s2 = stop.clone();
    let connected = move |sock: TcpStream| {
        std::thread::spawn(move || {
            // Ends when the harness closes our stdin (or dies).
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            s2.stop(&sock);
        });
    };
    let report = match kind {
        crate::client::OwnClient::Floor => crate::floor::run(&cfg, &stop, connected)?,
        crate::client::OwnClient::Usual => crate::usual::run(&cfg, &stop, connected)?,
    };
    let json = serde_json::to_string(&report).map_err(|e| format!("report: {e}"))?;
    let mut f = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    f.write_all(json.as_bytes()).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}
