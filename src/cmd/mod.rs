//! Command-line parsing and the `replay` command's driver.
//!
//! A small declarative flag parser (no dependency): each command lists its flags with a help
//! line and default, `--help` prints them, and every mistake is one line naming the problem.
//! The flags and `--stats` keys of the command-line contract are the outside face of tickfeed:
//! they are extended here, never renamed.

use crate::capture::{Pace, ReplayOptions, Replayer};
use crate::output::stats::{percentile_distribution, stats_json};
use crate::output::OutputMode;
use crate::pipeline::{Pipeline, PipelineConfig};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A flag a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Name without the dashes.
    pub name: &'static str,
    /// Placeholder for its value; `None` for a switch.
    pub value: Option<&'static str>,
    /// May be given several times (values accumulate; commas split too).
    pub repeat: bool,
    /// Default shown in help.
    pub default: &'static str,
    /// One line of help.
    pub help: &'static str,
}

/// Parsed arguments of one command.
#[derive(Debug, Default, Clone)]
pub struct Args {
    values: BTreeMap<&'static str, Vec<String>>,
    /// Positional arguments.
    pub positional: Vec<String>,
}

impl Args {
    /// True when a switch was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
    /// The last value of a flag.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.last()).map(String::as_str)
    }
    /// Every value of a repeatable flag, comma lists split.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .map(|v| v.iter().flat_map(|s| s.split(',')).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }
    /// Sets a flag's value as if it had been given (used by `demo` to aim `run` at its simulator).
    pub fn insert(&mut self, name: &'static str, value: String) {
        self.values.entry(name).or_default().push(value);
    }

    /// A flag parsed as a number, with a one-line error naming the flag.
    pub fn num<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("--{name}: '{v}' is not a valid number")),
        }
    }
}

/// Parses `args` against `flags`. `--name value`, `--name=value`, and `--` ending the flags.
pub fn parse(cmd: &str, args: &[String], flags: &[Flag]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut i = 0;
    let mut only_positional = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if only_positional || !a.starts_with("--") || a == "-" {
            if a == "--" && !only_positional {
                only_positional = true;
                continue;
            }
            out.positional.push(a.clone());
            continue;
        }
        let body = &a[2..];
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let Some(flag) = flags.iter().find(|f| f.name == name) else {
            return Err(format!("{cmd}: unknown flag --{name} (see tickfeed {cmd} --help)"));
        };
        let v = match (flag.value, inline) {
            (None, None) => String::new(),
            (None, Some(_)) => return Err(format!("{cmd}: --{name} takes no value")),
            (Some(_), Some(v)) => v,
            (Some(ph), None) => {
                if i >= args.len() {
                    return Err(format!("{cmd}: --{name} needs a value ({ph})"));
                }
                i += 1;
                args[i - 1].clone()
            }
        };
        let slot = out.values.entry(flag.name).or_default();
        if !flag.repeat && flag.value.is_some() && !slot.is_empty() {
            return Err(format!("{cmd}: --{name} given twice"));
        }
        slot.push(v);
    }
    Ok(out)
}

/// Help text for a command.
pub fn help(cmd: &str, usage: &str, about: &str, flags: &[Flag]) -> String {
    let mut s = format!("{about}\n\nUsage: tickfeed {cmd} {usage}\n\nOptions:\n");
    for f in flags {
        let left = match f.value {
            Some(v) => format!("--{} {v}", f.name),
            None => format!("--{}", f.name),
        };
        let def = if f.default.is_empty() { String::new() } else { format!(" [default: {}]", f.default) };
        s.push_str(&format!("  {left:<24} {}{def}\n", f.help));
    }
    s.push_str(&format!("  {:<24} print this help\n", "--help"));
    s
}

/// Flags shared by `run` and `replay`.
pub const OUTPUT_FLAGS: &[Flag] = &[
    Flag { name: "output", value: Some("MODE"), repeat: false, default: "tob", help: "tob | tob-json | ndjson | none" },
    Flag {
        name: "dump-book",
        value: Some("DIR"),
        repeat: false,
        default: "",
        help: "at exit write DIR/{SYMBOL}.json with every level held",
    },
    Flag {
        name: "stats",
        value: Some("FILE"),
        repeat: false,
        default: "",
        help: "at exit write the run summary as JSON",
    },
    Flag {
        name: "hist",
        value: Some("FILE"),
        repeat: false,
        default: "",
        help: "at exit write the latency histogram (HdrHistogram percentile format); FILE.process for in-process time",
    },
    Flag {
        name: "max-events",
        value: Some("N"),
        repeat: false,
        default: "unbounded",
        help: "stop after N market events",
    },
    Flag {
        name: "window-ticks",
        value: Some("N"),
        repeat: false,
        default: "65536",
        help: "ticks in each side's array window of the price ladder",
    },
    Flag {
        name: "quiet",
        value: None,
        repeat: false,
        default: "",
        help: "do not log sync events and bad messages to stderr",
    },
];

const REPLAY_ONLY: &[Flag] = &[
    Flag {
        name: "symbol",
        value: Some("SYM"),
        repeat: true,
        default: "every symbol seen",
        help: "replay only these symbols (others are counted as bad messages)",
    },
    Flag {
        name: "no-measure",
        value: None,
        repeat: false,
        default: "",
        help: "do not time each frame (process_ns stays empty)",
    },
    Flag {
        name: "pace",
        value: Some("MODE"),
        repeat: false,
        default: "fast",
        help: "fast (as fast as possible) | recorded (wait for each line's recorded time)",
    },
    Flag {
        name: "speed",
        value: Some("X"),
        repeat: false,
        default: "1",
        help: "with --pace recorded: play X times faster than recorded (implies --pace recorded)",
    },
];

/// The replay pace from `--pace` and `--speed`.
pub fn replay_pace(a: &Args) -> Result<Pace, String> {
    let speed = match a.get("speed") {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Some(x),
            _ => return Err(format!("--speed: '{v}' is not a positive number")),
        },
    };
    match (a.get("pace"), speed) {
        (None | Some("fast"), None) => Ok(Pace::AsFastAsPossible),
        (Some("fast"), Some(_)) => Err("--speed needs --pace recorded (it was given --pace fast)".into()),
        (None | Some("recorded"), speed) => Ok(Pace::Recorded { speed: speed.unwrap_or(1.0) }),
        (Some(other), _) => Err(format!("--pace: unknown mode '{other}' (expected fast or recorded)")),
    }
}

/// The `replay` command's flags.
pub fn replay_flags() -> Vec<Flag> {
    OUTPUT_FLAGS.iter().chain(REPLAY_ONLY).copied().collect()
}

/// Everything the pipeline needs from the shared output flags.
pub fn pipeline_config(a: &Args) -> Result<PipelineConfig, String> {
    let output: OutputMode = a.get("output").unwrap_or("tob").parse::<OutputMode>().map_err(|e| e.to_string())?;
    let mut cfg = PipelineConfig { output, log: !a.has("quiet"), ..PipelineConfig::default() };
    if let Some(w) = a.num::<usize>("window-ticks")? {
        if !(64..=1 << 24).contains(&w) {
            return Err(format!("--window-ticks: {w} is outside 64..16777216"));
        }
        cfg.book.ladder.window_ticks = w;
    }
    Ok(cfg)
}

/// Writes the exit files (`--dump-book`, `--stats`, `--hist`) for a finished pipeline.
pub fn write_exit_files(a: &Args, p: &Pipeline, extra: &[(&str, u64)]) -> Result<(), String> {
    if let Some(dir) = a.get("dump-book") {
        std::fs::create_dir_all(dir).map_err(|e| format!("--dump-book {dir}: {e}"))?;
        for (i, s) in p.symbols().iter().enumerate() {
            match p.dump_book_json(i) {
                Some(json) => {
                    let path = Path::new(dir).join(format!("{}.json", s.symbol()));
                    std::fs::write(&path, json).map_err(|e| format!("--dump-book {}: {e}", path.display()))?;
                }
                None => {
                    eprintln!("tickfeed: {} is not synced ({}): no book dumped", s.symbol(), s.book().state().as_str())
                }
            }
        }
    }
    if let Some(path) = a.get("stats") {
        let json = stats_json(p.stats(), &p.summaries(), extra);
        std::fs::write(path, json).map_err(|e| format!("--stats {path}: {e}"))?;
    }
    if let Some(path) = a.get("hist") {
        std::fs::write(path, percentile_distribution(&p.stats().latency_us, 1000.0))
            .map_err(|e| format!("--hist {path}: {e}"))?;
        let proc_path = format!("{path}.process");
        std::fs::write(&proc_path, percentile_distribution(&p.stats().process_ns, 1000.0))
            .map_err(|e| format!("--hist {proc_path}: {e}"))?;
    }
    Ok(())
}

/// A human summary of a run for stderr.
pub fn summary_text(p: &Pipeline) -> String {
    let s = p.stats();
    let mut o = format!(
        "events {} (depth {}, trades {}, aggTrades {}, bookTickers {}), bad messages {}\n",
        s.events, s.depth_updates, s.trades, s.agg_trades, s.book_tickers, s.bad_messages
    );
    let q = |h: &hdrhistogram::Histogram<u64>, p: f64| if h.is_empty() { 0 } else { h.value_at_quantile(p) };
    if !s.latency_us.is_empty() {
        o.push_str(&format!(
            "latency_us p50 {} p99 {} p999 {} max {} (n={})\n",
            q(&s.latency_us, 0.5),
            q(&s.latency_us, 0.99),
            q(&s.latency_us, 0.999),
            s.latency_us.max(),
            s.latency_us.len()
        ));
    }
    if s.negative_latency > 0 {
        o.push_str(&format!(
            "negative latency: {} events (receive clock behind exchange by up to {} us)\n",
            s.negative_latency, -s.min_latency_us
        ));
    }
    if !s.process_ns.is_empty() {
        o.push_str(&format!(
            "process_ns p50 {} p99 {} p999 {} max {} (n={})\n",
            q(&s.process_ns, 0.5),
            q(&s.process_ns, 0.99),
            q(&s.process_ns, 0.999),
            s.process_ns.max(),
            s.process_ns.len()
        ));
    }
    for x in p.summaries() {
        o.push_str(&format!(
            "{} {} lastUpdateId {} bids {} asks {} gaps {} resyncs {} dropped {} bookTicker checks {} mismatches {} trades {}\n",
            x.symbol,
            x.state,
            x.last_update_id,
            x.bids,
            x.asks,
            x.gaps,
            x.resyncs,
            x.dropped_diffs,
            x.book_ticker_checks,
            x.book_ticker_mismatches,
            x.trades
        ));
    }
    o
}

const RUN_ONLY: &[Flag] = &[
    Flag {
        name: "symbol",
        value: Some("SYM"),
        repeat: true,
        default: "btcusdt",
        help: "symbols to follow, any case; repeat or give a comma list (one connection carries all)",
    },
    Flag {
        name: "streams",
        value: Some("LIST"),
        repeat: true,
        default: "depth,trade",
        help: "streams per symbol: any of depth,trade,aggTrade,bookTicker (depth is the 100 ms diff stream)",
    },
    Flag {
        name: "ws-url",
        value: Some("URL"),
        repeat: false,
        default: "wss://stream.binance.com:9443",
        help: "websocket BASE, wss://host:port or ws://host:port; /stream?streams=...&timeUnit=MICROSECOND is appended",
    },
    Flag {
        name: "rest-url",
        value: Some("URL"),
        repeat: false,
        default: "https://api.binance.com",
        help: "REST BASE for /api/v3/exchangeInfo and /api/v3/depth",
    },
    Flag {
        name: "ca-file",
        value: Some("PEM"),
        repeat: false,
        default: "public web roots only",
        help: "extra trusted root certificate(s) for websocket and REST TLS (e.g. the simulator's)",
    },
    Flag {
        name: "depth-limit",
        value: Some("N"),
        repeat: false,
        default: "1000",
        help: "REST snapshot levels per side, 1..5000 (weight 5/25/50/250 of 6000 per minute)",
    },
    Flag {
        name: "core",
        value: Some("N"),
        repeat: false,
        default: "not pinned",
        help: "pin the event-loop thread to core N",
    },
    Flag {
        name: "no-busy-poll",
        value: None,
        repeat: false,
        default: "",
        help: "block in the poller (20 ms timer tick) instead of spinning on poll(0)",
    },
    Flag {
        name: "duration",
        value: Some("SECS"),
        repeat: false,
        default: "unbounded",
        help: "stop after SECS of wall time (fractions allowed)",
    },
    Flag {
        name: "record",
        value: Some("DIR"),
        repeat: false,
        default: "off",
        help: "capture frames and snapshots to DIR/{symbol}/{date}/take_{n}/{orderbook,trades,aggTrades,bookTickers}/ (hourly files, gzipped when closed; tickfeed replay DIR reads them)",
    },
    Flag {
        name: "record-compress",
        value: Some("gzip|none"),
        repeat: false,
        default: "gzip",
        help: "compress each hourly capture file when it closes (on a background thread), or keep it plain",
    },
    Flag {
        name: "stale-secs",
        value: Some("SECS"),
        repeat: false,
        default: "30",
        help: "reconnect when no market data arrives for SECS (0: never)",
    },
    Flag {
        name: "max-conn-age",
        value: Some("SECS"),
        repeat: false,
        default: "84600",
        help: "open a new connection and switch to it (make before break) once a connection is SECS old",
    },
    Flag {
        name: "switch-timeout",
        value: Some("SECS"),
        repeat: false,
        default: "10",
        help: "longest make-before-break overlap: switch even if the new connection has not caught up",
    },
    Flag {
        name: "max-message",
        value: Some("BYTES"),
        repeat: false,
        default: "1048576",
        help: "largest websocket frame/message accepted; a larger one ends the connection (reconnect)",
    },
    Flag {
        name: "weight-budget",
        value: Some("N"),
        repeat: false,
        default: "6000",
        help: "REST request weight allowed per minute; snapshots that would exceed it wait",
    },
];

/// The `run` command's flags.
pub fn run_flags() -> Vec<Flag> {
    OUTPUT_FLAGS.iter().chain(RUN_ONLY).copied().collect()
}

fn secs_flag(a: &Args, name: &str) -> Result<Option<std::time::Duration>, String> {
    match a.num::<f64>(name)? {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..=1e9).contains(&v) => Ok(Some(std::time::Duration::from_secs_f64(v))),
        Some(v) => Err(format!("--{name}: {v} is not a number of seconds")),
    }
}

/// Builds the live configuration from `run`'s flags: every mistake is one line (exit 2).
pub fn live_config(a: &Args) -> Result<crate::live::LiveConfig, String> {
    use crate::binance::url;
    let ws =
        url::parse_ws_base(a.get("ws-url").unwrap_or("wss://stream.binance.com:9443")).map_err(|e| e.to_string())?;
    let rest =
        url::parse_rest_base(a.get("rest-url").unwrap_or("https://api.binance.com")).map_err(|e| e.to_string())?;
    let tls = crate::net::tls::TlsSetup::new(a.get("ca-file").map(Path::new)).map_err(|e| e.to_string())?;
    let mut cfg = crate::live::LiveConfig::new(ws, rest, tls);
    let mut symbols = a.all("symbol");
    if symbols.is_empty() {
        symbols.push("btcusdt".into());
    }
    cfg.symbols.clear();
    for s in symbols {
        url::check_symbol(&s).map_err(|e| e.to_string())?;
        let up = s.to_ascii_uppercase();
        if !cfg.symbols.contains(&up) {
            cfg.symbols.push(up);
        }
    }
    let streams = a.all("streams");
    if !streams.is_empty() {
        cfg.streams = url::parse_streams(&streams).map_err(|e| e.to_string())?;
    }
    if let Some(n) = a.num::<u32>("depth-limit")? {
        if !(1..=5000).contains(&n) {
            return Err(format!("--depth-limit: {n} is outside 1..5000"));
        }
        cfg.depth_limit = n;
    }
    if let Some(c) = a.num::<usize>("core")? {
        crate::live::check_core(c).map_err(|e| e.to_string())?;
        cfg.core = Some(c);
    }
    cfg.busy_poll = !a.has("no-busy-poll");
    cfg.max_events = a.num("max-events")?;
    cfg.duration = secs_flag(a, "duration")?;
    if let Some(d) = secs_flag(a, "stale-secs")? {
        cfg.stale = d;
    }
    if let Some(d) = secs_flag(a, "max-conn-age")? {
        if d < std::time::Duration::from_millis(100) {
            return Err("--max-conn-age: at least 0.1 s".into());
        }
        cfg.max_conn_age = d;
    }
    if let Some(d) = secs_flag(a, "switch-timeout")? {
        cfg.switch_timeout = d;
    }
    if let Some(m) = a.num::<usize>("max-message")? {
        if !(1024..=1 << 30).contains(&m) {
            return Err(format!("--max-message: {m} is outside 1024..1073741824"));
        }
        cfg.limits = crate::ws::Limits { max_frame: m, max_message: m };
    }
    if let Some(w) = a.num::<u32>("weight-budget")? {
        if w < 5 {
            return Err(format!("--weight-budget: {w} is below the lightest request (5)"));
        }
        cfg.weight_per_minute = w;
    }
    cfg.record = a.get("record").map(std::path::PathBuf::from);
    cfg.record_compress = match a.get("record-compress") {
        None | Some("gzip") => true,
        Some("none") => false,
        Some(other) => return Err(format!("--record-compress: '{other}' is not gzip or none")),
    };
    cfg.log = !a.has("quiet");
    Ok(cfg)
}

/// `tickfeed run`: the live handler. Ends on `--duration`, `--max-events`, SIGINT or SIGTERM
/// (summary on stderr, exit files written, exit 0). stdout closing (a pipe into `head`) stops the
/// output but not the run: books, stats and the exit files are still kept.
pub fn run_main(args: &[String]) -> Result<(), String> {
    let flags = run_flags();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!(
            "{}",
            help(
                "run",
                "[OPTIONS]",
                "Live feed handler: Binance spot combined streams over one websocket, REST snapshots, \
                 local books kept in sync, top of book out.\n\
                 Ends on --duration, --max-events, SIGINT or SIGTERM: summary on stderr, exit files written, exit 0.\n\
                 Network failures are logged in one line and retried with backoff; configuration errors \
                 (bad URL, unknown symbol, unreadable CA file) exit 2.\n\
                 A closed stdout stops the output, not the run.",
                &flags
            )
        );
        return Ok(());
    }
    let a = parse("run", args, &flags)?;
    if let Some(p) = a.positional.first() {
        return Err(format!("run: unexpected argument '{p}' (see tickfeed run --help)"));
    }
    run_parsed(&a)
}

/// `run` after its flags are parsed: shared by `run` and `demo`.
fn run_parsed(a: &Args) -> Result<(), String> {
    let pcfg = pipeline_config(a)?;
    let lcfg = live_config(a)?;
    let syms: Vec<&str> = lcfg.symbols.iter().map(String::as_str).collect();
    let mut p = Pipeline::new(pcfg, &syms);
    let stop = crate::net::signal::install().map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let report = crate::live::run(&lcfg, &mut p, &mut out, stop).map_err(|e| e.to_string())?;
    drop(out);
    write_exit_files(a, &p, &report.extra())?;
    if !a.has("quiet") {
        eprintln!("tickfeed: run ended ({})", report.end);
        eprint!("{}", summary_text(&p));
    }
    Ok(())
}

/// Flags `demo` takes from `run` unchanged; the connection flags are its own.
fn demo_flags() -> Vec<Flag> {
    const OWN: &[&str] = &["ws-url", "rest-url", "ca-file", "no-busy-poll"];
    let mut f: Vec<Flag> = run_flags().into_iter().filter(|f| !OWN.contains(&f.name)).collect();
    f.extend_from_slice(&[
        Flag { name: "seed", value: Some("N"), repeat: false, default: "1", help: "seed of the simulated market" },
        Flag {
            name: "rate",
            value: Some("N"),
            repeat: false,
            default: "real time",
            help: "simulated market messages per second (0 = as fast as the handler reads)",
        },
        Flag {
            name: "busy-poll",
            value: None,
            repeat: false,
            default: "",
            help: "spin on the poller as `run` does by default (the simulator shares this machine, so demo blocks)",
        },
    ]);
    f
}

/// `tickfeed demo`: the simulator on loopback over TLS, and the live handler against it.
pub fn demo_main(args: &[String]) -> Result<(), String> {
    let flags = demo_flags();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!(
            "{}",
            help(
                "demo",
                "[OPTIONS]",
                "Offline showcase: starts the built-in Binance simulator on 127.0.0.1 (TLS, throwaway CA, \
                 synthetic market) and runs the live handler against it. Needs no internet. Ctrl-C stops it.",
                &flags
            )
        );
        return Ok(());
    }
    let mut a = parse("demo", args, &flags)?;
    if let Some(p) = a.positional.first() {
        return Err(format!("demo: unexpected argument '{p}' (see tickfeed demo --help)"));
    }
    let mut symbols: Vec<String> = a.all("symbol").iter().map(|s| s.to_ascii_lowercase()).collect();
    if symbols.is_empty() {
        symbols.push("btcusdt".into());
    }
    for s in &symbols {
        crate::binance::url::check_symbol(s).map_err(|e| e.to_string())?;
    }
    let seed = a.num::<u64>("seed")?.unwrap_or(1);
    let pacing = match a.num::<u32>("rate")? {
        None => tickfeed_sim::Pacing::RealTime,
        Some(0) => tickfeed_sim::Pacing::AsFastAsRead,
        Some(n) => tickfeed_sim::Pacing::Rate(n),
    };
    let cfg = tickfeed_sim::SimConfig {
        source: tickfeed_sim::MarketSource::Synthetic { symbols: symbols.clone(), seed },
        pacing,
        ..tickfeed_sim::SimConfig::default()
    };
    let sim = tickfeed_sim::Sim::start(cfg).map_err(|e| format!("demo: cannot start the simulator: {e}"))?;
    let pem = sim.ca_pem().ok_or("demo: the simulator has no certificate")?.to_owned();
    let ca_path = std::env::temp_dir().join(format!("tickfeed-demo-{}.pem", std::process::id()));
    std::fs::write(&ca_path, pem).map_err(|e| format!("demo: cannot write {}: {e}", ca_path.display()))?;
    a.insert("ws-url", sim.ws_base());
    a.insert("rest-url", sim.rest_base());
    a.insert("ca-file", ca_path.display().to_string());
    if !a.has("busy-poll") {
        a.insert("no-busy-poll", String::new());
    }
    if !a.has("streams") {
        // The showcase includes bookTicker so the online audit of the book is visible.
        a.insert("streams", "depth,trade,bookTicker".into());
    }
    if !a.has("quiet") {
        eprintln!(
            "tickfeed demo: simulator on {} (synthetic {}, seed {seed}, TLS with a throwaway CA); the handler \
             connects to it as it would to Binance. Ctrl-C stops.",
            sim.ws_base(),
            symbols.join(",")
        );
    }
    let r = run_parsed(&a);
    let _ = std::fs::remove_file(&ca_path);
    sim.shutdown();
    r
}

/// `tickfeed replay FILE_OR_DIR...`
pub fn replay_main(args: &[String]) -> Result<(), String> {
    let flags = replay_flags();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!(
            "{}",
            help(
                "replay",
                "[OPTIONS] FILE_OR_DIR...",
                "Replay recordings (`<recv ns> <raw json>` lines, plain or gzip) through the live pipeline.\n\
                 Files are read in the order given. A folder (a `--record` capture: DIR, DIR/{symbol},\n\
                 DIR/{symbol}/{date} or a take) is walked and each recorded run in it is merged by receive\n\
                 time; the books are reset between runs.",
                &flags
            )
        );
        return Ok(());
    }
    let a = parse("replay", args, &flags)?;
    let pace = replay_pace(&a)?;
    if a.positional.is_empty() {
        return Err("replay: no recording given (tickfeed replay FILE_OR_DIR...)".into());
    }
    let mut paths = Vec::new();
    for f in &a.positional {
        let p = PathBuf::from(f);
        if !p.exists() {
            return Err(format!("replay: {f}: no such file or folder"));
        }
        paths.push(p);
    }
    let mut cfg = pipeline_config(&a)?;
    let symbols = a.all("symbol");
    cfg.auto_symbols = symbols.is_empty();
    let syms: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let mut p = Pipeline::new(cfg, &syms);
    let opts = ReplayOptions { max_events: a.num("max-events")?, measure: !a.has("no-measure"), pace };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut stdout_ok = true;
    let mut flush = |p: &mut Pipeline| {
        if stdout_ok && p.output().flush_to(&mut out).is_err() {
            // stdout closed (a pipe into `head`): stop producing output, finish quietly.
            stdout_ok = false;
        }
        p.output().discard();
        stdout_ok
    };
    let counters = {
        let mut r = Replayer::new(&mut p);
        r.run(&paths, opts, &mut flush).map_err(|e| format!("replay: {e}"))?;
        r.counters()
    };
    let _ = out.flush();
    drop(out);
    let extra = [
        ("lines", counters.lines),
        ("malformed_lines", counters.malformed_lines),
        ("torn_lines", counters.torn_lines),
        ("snapshots", counters.snapshots),
        ("unattributed_snapshots", counters.unattributed_snapshots),
        ("runs", counters.runs),
    ];
    write_exit_files(&a, &p, &extra)?;
    if !a.has("quiet") {
        eprint!("{}", summary_text(&p));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_flags_and_reports_mistakes() {
        let flags = replay_flags();
        let a = parse(
            "replay",
            &s(&["--output", "ndjson", "--symbol=btcusdt,ethusdt", "--symbol", "bnb", "f1", "--quiet", "f2"]),
            &flags,
        )
        .unwrap();
        assert_eq!(a.get("output"), Some("ndjson"));
        assert_eq!(a.all("symbol"), vec!["btcusdt", "ethusdt", "bnb"]);
        assert!(a.has("quiet"));
        assert_eq!(a.positional, vec!["f1", "f2"]);
        assert_eq!(
            parse("replay", &s(&["--bogus"]), &flags).unwrap_err(),
            "replay: unknown flag --bogus (see tickfeed replay --help)"
        );
        assert_eq!(parse("replay", &s(&["--output"]), &flags).unwrap_err(), "replay: --output needs a value (MODE)");
        assert_eq!(parse("replay", &s(&["--quiet=1"]), &flags).unwrap_err(), "replay: --quiet takes no value");
        assert!(parse("replay", &s(&["--output", "a", "--output", "b"]), &flags).is_err());
        let a = parse("replay", &s(&["--max-events", "x"]), &flags).unwrap();
        assert_eq!(a.num::<u64>("max-events").unwrap_err(), "--max-events: 'x' is not a valid number");
        let a = parse("replay", &s(&["--output", "fancy"]), &flags).unwrap();
        assert!(pipeline_config(&a).unwrap_err().contains("unknown output mode 'fancy'"));
        assert!(help("replay", "FILE...", "about", &flags).contains("--dump-book DIR"));
    }
}
