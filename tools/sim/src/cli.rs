//! `tickfeed sim`: the command-line front of the simulator. [`SimArgs`] declares every flag once
//! (clap derive: its help, value name and default beside the field) and turns them into a
//! `SimConfig`; [`run_args`] starts the simulator, writes the CA PEM for `--cert-out`, prints one
//! `listening on wss://HOST:PORT` line and serves until the process is killed.
//!
//! `SimArgs` is a `clap::Args`, not a parser, so the `tickfeed` binary can embed it as its `sim`
//! subcommand; [`run_cli`] parses it alone, with a small parser around it, for the binary's
//! current hand-written dispatch. A user's mistake is one line on stderr and exit status 2 (clap's
//! own errors are several lines with usage; only their first line is kept); `--help` and
//! `--version` print normally and exit 0. There is no signal handling: std has none, and the
//! default SIGINT/SIGTERM disposition ends the process, which is all a simulator needs.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, Parser};

use crate::{FaultPlan, MarketSource, Pacing, Sim, SimConfig};

const FAULTS: &str = "Faults (all also available at runtime through the library API)";
const LIMITS: &str = "Binance's limits (defaults are Binance's; 0 turns one off)";

/// The flags of `tickfeed sim`: the command-line contract's table plus pacing, book size, REST
/// weight and fault flags. Defaults are Binance's rules and no injected fault.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct SimArgs {
    /// Address for websocket (/stream, /ws/...) and REST (/api/v3/...); port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9443", value_parser = listen_addr)]
    pub listen: SocketAddr,

    /// Plain TCP (ws://, http://) instead of TLS
    #[arg(long)]
    pub plain: bool,

    /// Serve the websocket as Binance's SBE stream endpoint (stream-sbe): binary frames, and an
    /// X-MBX-APIKEY header required on the upgrade; REST stays JSON
    #[arg(long)]
    pub sbe: bool,

    /// spot | usdm: play Binance spot, or USDⓈ-M futures (/fapi/v1 REST at futures weights and
    /// 2400 a minute, /public and /market websocket paths, ids that skip with pu, contract
    /// precisions, a ping every 180 s with 600 s for the pong, 10 incoming messages a second)
    #[arg(long, value_name = "VENUE", default_value = "spot", value_parser = venue)]
    pub venue: crate::Venue,
    /// Also serve the SBE stream endpoint (stream-sbe) for the same market on this second address,
    /// while --listen stays JSON (or SBE with --sbe); prints its own `listening on` line
    #[arg(long, value_name = "ADDR", value_parser = listen_addr)]
    pub sbe_listen: Option<SocketAddr>,

    /// Convert a JSON recording (IN, plain or gzip) to SBE lines (`<ns> ~<base64>`) in OUT (gzip if it
    /// ends in .gz) with the simulator's encoder, print the counts and exit instead of serving
    #[arg(long, num_args = 2, value_names = ["IN", "OUT"])]
    pub convert_to_sbe: Vec<PathBuf>,

    /// Write the CA certificate a client must trust (tickfeed run --ca-file PEM); needs TLS
    #[arg(long, value_name = "PEM", conflicts_with = "plain")]
    pub cert_out: Option<PathBuf>,

    /// Synthetic market to run (any case); repeatable or a comma list
    #[arg(
        long = "symbol",
        value_name = "SYM",
        value_delimiter = ',',
        default_value = "btcusdt",
        value_parser = symbol
    )]
    pub symbols: Vec<String>,

    /// Replay recordings (`<recv ns> <frame>` lines, gzip or plain, or tickfeed capture directories)
    /// instead of a synthetic market
    #[arg(long, value_name = "FILE_OR_DIR", num_args = 1.., conflicts_with = "symbols")]
    pub replay: Vec<PathBuf>,

    /// Market messages per second (all streams); 0 = as fast as the client reads [default: real
    /// time, see --speed]
    #[arg(long, value_name = "N", conflicts_with = "speed")]
    pub rate: Option<u32>,

    /// Play simulated time X times faster than real time (1 = real time)
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = speed, allow_negative_numbers = true)]
    pub speed: f64,

    /// Seed of the synthetic market: the same seed gives the same market
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Synthetic levels per side at start
    #[arg(long, value_name = "N", default_value_t = 3000)]
    pub levels: usize,

    /// Also generate N synthetic symbols after --symbol's (SYN0000USDT, SYN0001BTC, ...): prices
    /// 0.00001 to 99,999, varied ticks and quote assets, a few BREAK/HALT (silent), activity falling
    /// with the index (SYN0000 is the busiest)
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with = "replay")]
    pub symbols_count: usize,

    /// Levels per side at start of each generated symbol (at least 100)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub generated_levels: usize,

    /// REST weight per minute before 429 (Binance: 6000); 0 = unlimited
    #[arg(long, value_name = "N", default_value_t = 6000, help_heading = LIMITS)]
    pub weight_limit: u32,

    /// First REST ban (418) for a request sent within a 429's Retry-After, doubling for each
    /// earlier ban (Binance: 2 minutes); 0 = 429s never escalate
    #[arg(long, value_name = "SECS", default_value_t = 120, help_heading = LIMITS)]
    pub ban_first: u64,

    /// Longest REST ban (Binance: 3 days)
    #[arg(long, value_name = "SECS", default_value_t = 259_200, help_heading = LIMITS)]
    pub ban_max: u64,

    /// Close websockets receiving more than N frames (pings, pongs, control) in a second with 1008
    /// (Binance: 5); 0 = no limit
    #[arg(long, value_name = "N", default_value_t = 5, help_heading = LIMITS)]
    pub max_incoming: u32,

    /// Refuse a URL or SUBSCRIBE taking a websocket past N streams (Binance: 1024); 0 = no limit
    #[arg(long, value_name = "N", default_value_t = 1024, help_heading = LIMITS)]
    pub max_streams: usize,

    /// Answer 429 to websocket upgrade attempts past N per --connect-window from one IP (Binance:
    /// 300 per 5 minutes); 0 = no limit
    #[arg(long, value_name = "N", default_value_t = 300, help_heading = LIMITS)]
    pub max_connect_attempts: u32,

    /// The sliding window of --max-connect-attempts
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = seconds, help_heading = LIMITS)]
    pub connect_window: Duration,

    /// Server ping period; 0 = never
    #[arg(long, value_name = "MS", default_value_t = 20_000, help_heading = FAULTS)]
    pub ping_interval: u64,

    /// Disconnect when a ping has no matching pong by then
    #[arg(long, value_name = "MS", default_value_t = 60_000, help_heading = FAULTS)]
    pub pong_timeout: u64,

    /// Disconnect websockets this old (Binance's 24-hour rule); 0 = never
    #[arg(long, value_name = "SECS", default_value = "86400", value_parser = seconds, allow_negative_numbers = true, help_heading = FAULTS)]
    pub max_conn_age: Duration,

    /// Split every text message into N frames; 0 or 1 = one frame
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = FAULTS)]
    pub fragment: usize,

    /// Drop one of every N depth diffs per connection (a real gap); 0 = never
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = FAULTS)]
    pub drop_diff_every: u64,

    /// Send a malformed JSON message after every N messages; 0 = never
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = FAULTS)]
    pub malformed_every: u64,

    /// Send a message of a stream nobody subscribed after every N messages; 0 = never
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = FAULTS)]
    pub unknown_stream_every: u64,

    /// Send a binary frame after every N messages; 0 = never
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = FAULTS)]
    pub binary_every: u64,

    /// Write every market message MS late on every connection (a slow network path); 0 = no lag
    #[arg(long, value_name = "MS", default_value_t = 0, help_heading = FAULTS)]
    pub lag: u64,

    /// Close 1001 every live websocket SECS after start [default: never]
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true, help_heading = FAULTS)]
    pub close_after: Option<Duration>,

    /// TCP-reset every live websocket SECS after start [default: never]
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true, help_heading = FAULTS)]
    pub abort_after: Option<Duration>,

    /// Send serverShutdown then close 1001 to every live websocket SECS after start [default: never]
    #[arg(long, value_name = "SECS", value_parser = seconds, allow_negative_numbers = true, help_heading = FAULTS)]
    pub shutdown_after: Option<Duration>,

    /// Answer the first K REST requests with 429 (asking again within its Retry-After is banned,
    /// see --ban-first)
    #[arg(long = "rest-429", value_name = "K", default_value_t = 0, help_heading = FAULTS)]
    pub rest_429: u32,

    /// Then answer K more with 418
    #[arg(long = "rest-418", value_name = "K", default_value_t = 0, help_heading = FAULTS)]
    pub rest_418: u32,

    /// Retry-After sent with injected 429/418
    #[arg(long, value_name = "SECS", default_value_t = 2, help_heading = FAULTS)]
    pub retry_after: u32,

    /// Delay every REST answer; 0 = no delay
    #[arg(long, value_name = "MS", default_value_t = 0, help_heading = FAULTS)]
    pub rest_delay: u64,
}

/// `--listen`: an IP address and a port (no DNS: the simulator binds what it is told).
/// `--venue`.
fn venue(s: &str) -> Result<crate::Venue, String> {
    match s.to_ascii_lowercase().as_str() {
        "spot" => Ok(crate::Venue::Spot),
        "usdm" => Ok(crate::Venue::UsdM),
        _ => Err(format!("unknown venue '{s}' (expected spot or usdm)")),
    }
}

fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| "expected HOST:PORT with an IP address as HOST".to_string())
}

/// `--symbol`: letters and digits, kept lowercase as stream names are.
fn symbol(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("letters and digits only".to_string())
    }
}

fn speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err("expected a positive number".to_string()),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(Duration::from_secs_f64(x)),
        _ => Err("expected seconds (a non-negative number)".to_string()),
    }
}

impl SimArgs {
    /// The simulator configuration these flags ask for.
    pub fn config(&self) -> SimConfig {
        let ms = |n: u64| (n > 0).then(|| Duration::from_millis(n));
        let every = |n: u64| (n > 0).then_some(n);
        let faults = FaultPlan {
            ping_interval: ms(self.ping_interval),
            pong_timeout: Duration::from_millis(self.pong_timeout.max(1)),
            max_connection_age: (!self.max_conn_age.is_zero()).then_some(self.max_conn_age),
            max_incoming_per_sec: (self.max_incoming > 0).then_some(self.max_incoming),
            max_streams_per_connection: (self.max_streams > 0).then_some(self.max_streams),
            max_connect_attempts: (self.max_connect_attempts > 0).then_some(self.max_connect_attempts),
            connect_attempt_window: self.connect_window.max(Duration::from_millis(1)),
            fragment_frames: (self.fragment > 0).then_some(self.fragment),
            drop_diff_every: every(self.drop_diff_every),
            malformed_every: every(self.malformed_every),
            unknown_stream_every: every(self.unknown_stream_every),
            binary_every: every(self.binary_every),
            close_after: self.close_after,
            abort_after: self.abort_after,
            shutdown_after: self.shutdown_after,
            rest_429_next: self.rest_429,
            rest_418_next: self.rest_418,
            retry_after_secs: self.retry_after,
            rest_delay: ms(self.rest_delay),
            connection_lag: ms(self.lag),
        };
        let source = if self.replay.is_empty() {
            MarketSource::Synthetic { symbols: self.symbols.clone(), seed: self.seed }
        } else {
            MarketSource::Replay { paths: self.replay.clone() }
        };
        let pacing = match self.rate {
            Some(0) => Pacing::AsFastAsRead,
            Some(n) => Pacing::Rate(n),
            None if self.speed == 1.0 => Pacing::RealTime,
            None => Pacing::Speed(self.speed),
        };
        SimConfig {
            listen: self.listen,
            tls: !self.plain,
            sbe: self.sbe,
            venue: self.venue,
            sbe_listen: self.sbe_listen,
            source,
            pacing,
            levels_per_side: self.levels,
            generated_symbols: self.symbols_count,
            generated_levels_per_side: self.generated_levels,
            faults,
            weight_limit: (self.weight_limit > 0).then_some(self.weight_limit),
            rest_ban_first: (self.ban_first > 0).then(|| Duration::from_secs(self.ban_first)),
            rest_ban_max: Duration::from_secs(self.ban_max.max(self.ban_first)),
            ..SimConfig::default()
        }
    }
}

/// `tickfeed sim` on its own: the flags, `--help` and `--version`.
#[derive(Debug, Parser)]
#[command(
    name = "tickfeed-sim",
    bin_name = "tickfeed sim",
    version,
    about = "A Binance spot market-data exchange simulator (websocket + REST on one address)",
    after_help = "On start it prints one line, `listening on wss://HOST:PORT` (or ws://), and runs until killed."
)]
struct SimCli {
    #[command(flatten)]
    args: SimArgs,
}

/// Runs `tickfeed sim` with `args` (the arguments after `sim`). Blocks until the process is
/// killed, unless the flags are wrong (returns 2) or the simulator cannot start (returns 1).
pub fn run_cli(args: &[String]) -> i32 {
    run_cli_with(args, &mut std::io::stdout(), &mut std::io::stderr(), &|| false)
}

/// [`run_cli`] with explicit output streams and a stop condition polled every 100 ms (returns 0
/// once it holds). For tests and for embedding the simulator in another command.
pub fn run_cli_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write, stop: &dyn Fn() -> bool) -> i32 {
    let argv = std::iter::once("tickfeed sim").chain(args.iter().map(String::as_str));
    match SimCli::try_parse_from(argv) {
        Ok(cli) => run_args_with(cli.args, out, err, stop),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = write!(out, "{}", e.render());
            let _ = out.flush();
            0
        }
        Err(e) => {
            let _ = writeln!(err, "{}", usage_error_line(&e));
            2
        }
    }
}

/// A clap usage error as one line: `tickfeed sim: <what is wrong>[; did you mean X?] (see --help)`.
pub fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let hint = match e.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(s)) => format!("; did you mean '{s}'?"),
        _ => String::new(),
    };
    format!("tickfeed sim: {first}{hint} (see --help)")
}

/// Runs the simulator as `args` ask (parsed by the caller, e.g. as a `tickfeed sim` subcommand).
/// Blocks until the process is killed; 2 for a configuration the simulator refuses, 1 if it
/// cannot start.
pub fn run_args(args: SimArgs) -> i32 {
    run_args_with(args, &mut std::io::stdout(), &mut std::io::stderr(), &|| false)
}

/// [`run_args`] with explicit output streams and a stop condition polled every 100 ms.
pub fn run_args_with(args: SimArgs, out: &mut dyn Write, err: &mut dyn Write, stop: &dyn Fn() -> bool) -> i32 {
    if let [input, output] = args.convert_to_sbe.as_slice() {
        return match crate::convert::convert_file(input, output) {
            Ok(c) => {
                let _ = writeln!(
                    out,
                    "converted {}: {} lines, {} diffs, {} trades, {} bestBidAsk as SBE, {} kept as they were",
                    input.display(),
                    c.lines,
                    c.diffs,
                    c.trades,
                    c.book_tickers,
                    c.kept
                );
                0
            }
            Err(e) => {
                let _ = writeln!(err, "tickfeed sim: --convert-to-sbe {}: {e}", input.display());
                1
            }
        };
    }
    let sim = match Sim::start(args.config()) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            let _ = writeln!(err, "tickfeed sim: {e}");
            return 2;
        }
        Err(e) => {
            let _ = writeln!(err, "tickfeed sim: cannot start: {e}");
            return 1;
        }
    };
    if let Some(path) = &args.cert_out {
        let Some(pem) = sim.ca_pem() else {
            let _ = writeln!(err, "tickfeed sim: --cert-out needs TLS (drop --plain)");
            return 2;
        };
        if let Err(e) = std::fs::write(path, pem) {
            let _ = writeln!(err, "tickfeed sim: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    let _ = writeln!(out, "listening on {}", sim.ws_base());
    if let Some(b) = sim.sbe_ws_base() {
        let _ = writeln!(out, "listening on {b} (SBE)");
    }
    let _ = out.flush();
    while !stop() {
        std::thread::sleep(Duration::from_millis(100));
    }
    sim.shutdown();
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<SimConfig, String> {
        let argv = std::iter::once("tickfeed sim").chain(args.iter().copied());
        SimCli::try_parse_from(argv).map(|c| c.args.config()).map_err(|e| usage_error_line(&e))
    }

    #[test]
    fn clap_accepts_the_declarations() {
        use clap::CommandFactory;
        SimCli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = p(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9443");
        assert!(c.tls);
        assert!(!c.sbe, "JSON streams unless --sbe");
        assert!(p(&["--sbe"]).unwrap().sbe);
        assert_eq!(c.sbe_listen, None);
        let two = p(&["--sbe-listen", "127.0.0.1:0"]).unwrap();
        assert_eq!((two.sbe, two.sbe_listen), (false, Some("127.0.0.1:0".parse().unwrap())));
        assert_eq!(c.source, MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 1 });
        assert_eq!(c.pacing, Pacing::RealTime);
        assert_eq!(c.levels_per_side, 3000);
        assert_eq!(c.weight_limit, Some(6000));
        assert_eq!(c.faults, FaultPlan::default());
        let d = SimConfig::default();
        assert_eq!((c.rest_ban_first, c.rest_ban_max), (d.rest_ban_first, d.rest_ban_max));
        assert_eq!((c.generated_symbols, c.generated_levels_per_side), (0, d.generated_levels_per_side));
        assert_eq!(c.faults.max_incoming_per_sec, Some(5), "Binance's laws are the defaults");
        assert_eq!(c.faults.max_streams_per_connection, Some(1024));
        assert_eq!(
            (c.faults.max_connect_attempts, c.faults.connect_attempt_window),
            (Some(300), Duration::from_secs(300))
        );
    }

    #[test]
    fn flags_parse() {
        let c = p(&[
            "--listen",
            "127.0.0.1:0",
            "--plain",
            "--symbol",
            "BTCUSDT,ethusdt",
            "--symbol=solusdt",
            "--rate",
            "0",
            "--seed",
            "7",
            "--fragment",
            "3",
            "--ping-interval",
            "250",
            "--pong-timeout",
            "500",
            "--max-conn-age",
            "1.5",
            "--rest-429",
            "2",
            "--retry-after",
            "9",
            "--close-after",
            "0.25",
            "--lag",
            "40",
        ])
        .unwrap();
        assert!(!c.tls);
        assert_eq!(
            c.source,
            MarketSource::Synthetic { symbols: vec!["btcusdt".into(), "ethusdt".into(), "solusdt".into()], seed: 7 }
        );
        assert_eq!(c.pacing, Pacing::AsFastAsRead);
        let f = &c.faults;
        assert_eq!(f.fragment_frames, Some(3));
        assert_eq!(f.ping_interval, Some(Duration::from_millis(250)));
        assert_eq!(f.pong_timeout, Duration::from_millis(500));
        assert_eq!(f.max_connection_age, Some(Duration::from_millis(1500)));
        assert_eq!((f.rest_429_next, f.retry_after_secs), (2, 9));
        assert_eq!(f.close_after, Some(Duration::from_millis(250)));
        assert_eq!(f.connection_lag, Some(Duration::from_millis(40)));
        let c = p(&["--replay", "a.gz", "b.gz", "--speed", "10"]).unwrap();
        assert_eq!(c.source, MarketSource::Replay { paths: vec!["a.gz".into(), "b.gz".into()] });
        assert_eq!(c.pacing, Pacing::Speed(10.0));
        assert_eq!(p(&["--rate", "500"]).unwrap().pacing, Pacing::Rate(500));
        assert_eq!(p(&["--max-incoming", "7"]).unwrap().faults.max_incoming_per_sec, Some(7));
        let laws = p(&[
            "--max-incoming",
            "0",
            "--max-streams",
            "0",
            "--max-connect-attempts",
            "0",
            "--weight-limit",
            "0",
            "--ban-first",
            "0",
        ])
        .unwrap();
        assert_eq!(
            (
                laws.faults.max_incoming_per_sec,
                laws.faults.max_streams_per_connection,
                laws.faults.max_connect_attempts,
                laws.weight_limit,
                laws.rest_ban_first
            ),
            (None, None, None, None, None),
            "0 turns each law off"
        );
        let c = p(&[
            "--max-connect-attempts",
            "3",
            "--connect-window",
            "2.5",
            "--max-streams",
            "10",
            "--ban-first",
            "2",
            "--ban-max",
            "8",
        ])
        .unwrap();
        assert_eq!(c.faults.max_connect_attempts, Some(3));
        assert_eq!(c.faults.connect_attempt_window, Duration::from_millis(2500));
        assert_eq!(c.faults.max_streams_per_connection, Some(10));
        assert_eq!((c.rest_ban_first, c.rest_ban_max), (Some(Duration::from_secs(2)), Duration::from_secs(8)));
        let c = p(&["--symbols-count", "2000", "--generated-levels", "150"]).unwrap();
        assert_eq!((c.generated_symbols, c.generated_levels_per_side), (2000, 150));
        let zeros = p(&["--ping-interval", "0", "--max-conn-age", "0", "--weight-limit", "0"]).unwrap();
        assert_eq!(
            (zeros.faults.ping_interval, zeros.faults.max_connection_age, zeros.weight_limit),
            (None, None, None)
        );
    }

    #[test]
    fn bad_flags_are_one_line_naming_the_problem() {
        for (args, needle) in [
            (&["--bogus"][..], "unexpected argument '--bogus'"),
            (&["--rat", "5"][..], "did you mean '--rate'?"),
            (&["--rate"][..], "a value is required for '--rate <N>'"),
            (&["--rate", "fast"][..], "invalid value 'fast' for '--rate <N>'"),
            (&["--listen", "localhost"][..], "for '--listen <ADDR>': expected HOST:PORT"),
            (&["--symbol", "btc-usdt"][..], "for '--symbol <SYM>': letters and digits only"),
            (&["--replay"][..], "a value is required for '--replay <FILE_OR_DIR>...'"),
            (&["--replay", "x", "--symbol", "btcusdt"][..], "cannot be used with"),
            (&["--rate", "5", "--speed", "2"][..], "cannot be used with"),
            (&["--plain", "--cert-out", "ca.pem"][..], "'--plain' cannot be used with '--cert-out <PEM>'"),
            (&["stray"][..], "unexpected argument 'stray'"),
            (&["--speed", "0"][..], "for '--speed <X>': expected a positive number"),
            (&["--close-after", "-1"][..], "for '--close-after <SECS>': expected seconds"),
            (&["--speed", "-2"][..], "for '--speed <X>': expected a positive number"),
            (&["--replay", "x", "--symbols-count", "5"][..], "cannot be used with"),
        ] {
            let e = p(args).err().unwrap_or_else(|| panic!("{args:?} parsed"));
            assert!(e.contains(needle), "{args:?}: {e}");
            assert!(e.starts_with("tickfeed sim: ") && e.ends_with(" (see --help)"), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn help_and_version_print_and_exit_0() {
        for flag in ["--help", "-h", "--version"] {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            assert_eq!(run_cli_with(&[flag.to_string()], &mut out, &mut err, &|| true), 0, "{flag}");
            assert!(err.is_empty());
            let out = String::from_utf8(out).unwrap();
            assert!(out.contains(if flag == "--version" { "0.1.0" } else { "--shutdown-after <SECS>" }), "{out}");
        }
    }
}
