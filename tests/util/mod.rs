//! Shared helpers for the integration tests: the simulator set up for handler tests, comparing a
//! dumped book with its reference book, locating the shared Binance recordings, building a
//! `tickfeed run` command line ([`RunArgs`]) and running the binary with a time limit.
#![allow(dead_code)]

pub mod alloc;

use tickfeed_sim::{MarketSource, Pacing, Sim, SimConfig, SimHandle};

/// A simulator for handler tests: synthetic `symbols`, 10x real time (a diff per symbol every
/// 10 ms), 300 levels per side (so `--depth-limit 5000` snapshots hold the whole book), plain or
/// TLS.
pub fn sim(tls: bool, symbols: &[&str]) -> SimHandle {
    Sim::start(SimConfig {
        tls,
        pacing: Pacing::Speed(10.0),
        levels_per_side: 300,
        source: MarketSource::Synthetic { symbols: symbols.iter().map(|s| s.to_string()).collect(), seed: 11 },
        ..SimConfig::default()
    })
    .expect("start the simulator")
}

/// [`sim`] in USDⓈ-M futures mode (`SimConfig::venue`): ids that skip with `pu`, `/fapi/v1` REST,
/// `/public` and `/market` path tiers, futures' connection law.
pub fn sim_usdm(tls: bool, symbols: &[&str]) -> SimHandle {
    Sim::start(SimConfig {
        tls,
        pacing: Pacing::Speed(10.0),
        levels_per_side: 300,
        source: MarketSource::Synthetic { symbols: symbols.iter().map(|s| s.to_string()).collect(), seed: 11 },
        venue: tickfeed_sim::Venue::UsdM,
        ..SimConfig::default()
    })
    .expect("start the simulator")
}

/// The handler's `--dump-book` file for `symbol` is byte for byte the simulator's reference book
/// at the same lastUpdateId. Returns that id.
pub fn assert_dump_matches(sim: &SimHandle, dir: &std::path::Path, symbol: &str) -> u64 {
    let path = dir.join(format!("{symbol}.json"));
    let dump = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let id = v["lastUpdateId"].as_u64().unwrap();
    let want = sim.reference_book(symbol, id).unwrap_or_else(|| panic!("{symbol}: no reference book at {id}"));
    let want = want.to_dump_json();
    if dump.trim_end() != want {
        // Left beside the dump for whoever reads the failure.
        let ref_path = dir.join(format!("{symbol}.reference.json"));
        let _ = std::fs::write(&ref_path, &want);
        panic!(
            "{symbol} at {id}: the dumped book {} differs from the reference {}",
            path.display(),
            ref_path.display()
        );
    }
    id
}

/// Like [`assert_dump_matches`] for the best `depth` levels of each side only: a book synced from a
/// snapshot of limited depth knows the levels within it, not the ones beyond.
pub fn assert_dump_top_matches(sim: &SimHandle, dir: &std::path::Path, symbol: &str, depth: usize) -> u64 {
    let path = dir.join(format!("{symbol}.json"));
    let dump = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let id = v["lastUpdateId"].as_u64().unwrap();
    let want = sim.reference_book(symbol, id).unwrap_or_else(|| panic!("{symbol}: no reference book at {id}"));
    let w: serde_json::Value = serde_json::from_str(&want.to_dump_json()).unwrap();
    for side in ["bids", "asks"] {
        let top = |x: &serde_json::Value| x[side].as_array().unwrap().iter().take(depth).cloned().collect::<Vec<_>>();
        let (got, exp) = (top(&v), top(&w));
        assert!(got == exp, "{symbol} at {id}: the best {depth} {side} differ from the reference:\n{got:?}\n{exp:?}");
    }
    id
}

use std::path::{Path, PathBuf};

/// The folder of the real Binance recordings: `$TICKFEED_DATA`, else `../shared/data/binance`
/// beside the checkout. `None` (after printing a clear skip line) when the file is absent.
pub fn recording(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TICKFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/binance"));
    let p = dir.join(file);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: recording {} not found (set TICKFEED_DATA to the folder holding it)", p.display());
        None
    }
}

/// What a finished `tickfeed` process left.
pub struct Finished {
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

/// A `tickfeed run` command line, built flag by flag so a test says what it runs:
/// `RunArgs::against(&sim).duration(2.5).streams("depth,trade").dump_book(&dir).stats(&file)`.
/// [`RunArgs::against`] starts with the simulator's websocket and REST bases and `--no-busy-poll`
/// (both ends of a loopback test must not spin on 2 cores). Single-valued flags set twice keep the
/// last value in place; [`RunArgs::flag`] and [`RunArgs::arg`] append anything else as given.
#[derive(Debug, Clone)]
pub struct RunArgs {
    args: Vec<String>,
}

impl RunArgs {
    /// `run` and nothing else: every flag at its default.
    pub fn new() -> RunArgs {
        RunArgs { args: vec!["run".to_string()] }
    }

    /// `run --ws-url WS --rest-url REST --no-busy-poll` for `sim`.
    pub fn against(sim: &SimHandle) -> RunArgs {
        RunArgs::new().ws_url(&sim.ws_base()).rest_url(&sim.rest_base()).arg("--no-busy-poll")
    }

    /// Sets `flag` to `value`, replacing an earlier value of the same flag.
    fn set(mut self, flag: &str, value: String) -> RunArgs {
        match self.args.iter().position(|a| a == flag) {
            Some(i) => self.args[i + 1] = value,
            None => self.args.extend([flag.to_string(), value]),
        }
        self
    }

    /// `--ws-url URL`.
    pub fn ws_url(self, url: &str) -> RunArgs {
        self.set("--ws-url", url.to_string())
    }

    /// `--rest-url URL`.
    pub fn rest_url(self, url: &str) -> RunArgs {
        self.set("--rest-url", url.to_string())
    }

    /// Busy-polling again (drops `--no-busy-poll`).
    pub fn busy_poll(mut self) -> RunArgs {
        self.args.retain(|a| a != "--no-busy-poll");
        self
    }

    /// `--duration SECS`.
    pub fn duration(self, secs: f64) -> RunArgs {
        self.set("--duration", secs.to_string())
    }

    /// `--max-events N`.
    pub fn max_events(self, n: u64) -> RunArgs {
        self.set("--max-events", n.to_string())
    }

    /// `--symbol LIST`.
    pub fn symbols(self, list: &str) -> RunArgs {
        self.set("--symbol", list.to_string())
    }

    /// `--streams LIST`.
    pub fn streams(self, list: &str) -> RunArgs {
        self.set("--streams", list.to_string())
    }

    /// `--output MODE`.
    pub fn output(self, mode: &str) -> RunArgs {
        self.set("--output", mode.to_string())
    }

    /// `--depth-limit N`.
    pub fn depth_limit(self, n: u32) -> RunArgs {
        self.set("--depth-limit", n.to_string())
    }

    /// `--ca-file PEM`.
    pub fn ca_file(self, pem: impl AsRef<Path>) -> RunArgs {
        self.set("--ca-file", path_arg(pem.as_ref()))
    }

    /// `--dump-book DIR`.
    pub fn dump_book(self, dir: impl AsRef<Path>) -> RunArgs {
        self.set("--dump-book", path_arg(dir.as_ref()))
    }

    /// `--stats FILE`.
    pub fn stats(self, file: impl AsRef<Path>) -> RunArgs {
        self.set("--stats", path_arg(file.as_ref()))
    }

    /// `--record DIR`.
    pub fn record(self, dir: impl AsRef<Path>) -> RunArgs {
        self.set("--record", path_arg(dir.as_ref()))
    }

    /// `--hist FILE`.
    pub fn hist(self, file: impl AsRef<Path>) -> RunArgs {
        self.set("--hist", path_arg(file.as_ref()))
    }

    /// Appends `flag value` as given.
    pub fn flag(self, flag: &str, value: &str) -> RunArgs {
        self.arg(flag).arg(value)
    }

    /// Appends one argument as given.
    pub fn arg(mut self, arg: &str) -> RunArgs {
        self.args.push(arg.to_string());
        self
    }

    /// Appends arguments as given.
    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> RunArgs {
        self.args.extend(args.into_iter().map(str::to_string));
        self
    }

    /// The argument vector (without the program name).
    pub fn to_vec(&self) -> Vec<String> {
        self.args.clone()
    }

    /// The `tickfeed` binary with these arguments, for tests that set up its stdio themselves.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tickfeed"));
        c.args(&self.args);
        c
    }

    /// Starts it with piped stdout/stderr ([`spawn_tickfeed`]).
    pub fn spawn(&self) -> std::process::Child {
        spawn_tickfeed(&self.args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Runs it to the end, killed after `limit` ([`run_tickfeed`]).
    pub fn run(&self, limit: std::time::Duration) -> Finished {
        run_tickfeed(&self.args.iter().map(String::as_str).collect::<Vec<_>>(), limit)
    }
}

/// Test paths are temporary directories: UTF-8.
fn path_arg(p: &Path) -> String {
    p.to_str().unwrap_or_else(|| panic!("not UTF-8: {}", p.display())).to_string()
}

/// Runs the `tickfeed` binary with `args`, killing it after `limit` (a hung handler fails the
/// test instead of hanging it).
pub fn run_tickfeed(args: &[&str], limit: std::time::Duration) -> Finished {
    let child = spawn_tickfeed(args);
    wait_tickfeed(child, limit)
}

/// Starts the `tickfeed` binary with piped stdout/stderr.
pub fn spawn_tickfeed(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tickfeed"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tickfeed")
}

/// Waits for a child (killing it after `limit`) and collects its output.
pub fn wait_tickfeed(mut child: std::process::Child, limit: std::time::Duration) -> Finished {
    use std::io::Read;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    assert!(status.is_some(), "tickfeed did not finish within {limit:?}\nstderr:\n{stderr}");
    Finished { code: status.and_then(|s| s.code()), stdout, stderr }
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tickfeed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    // SAFETY: kill(2) with a child's pid and a valid signal number; no memory is involved.
    let r = unsafe { kill(pid as i32, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// Tests that run a simulator and a handler over several connections take turns, so that on two
/// cores they do not starve each other (and the kernel's loopback work). Hold the guard for the
/// whole test; a test that panicked does not poison it for the others.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
