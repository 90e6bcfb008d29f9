//! `tickfeed sim`: the command-line front of the simulator. Parses the contract flags plus fault
//! flags into a `SimConfig`, starts the simulator, writes the CA PEM for `--cert-out`, prints one
//! `listening on wss://HOST:PORT` line and serves until the process is killed.
//!
//! Arguments are those after `sim` (no program name). Usage errors print one line naming the
//! problem and return 2. There is no signal handling: std has none, and the default SIGINT/SIGTERM
//! disposition ends the process, which is all a simulator needs. Not a general argument parser.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{FaultPlan, MarketSource, Pacing, Sim, SimConfig};

const HELP: &str = "\
tickfeed sim: a Binance spot market-data exchange simulator (websocket + REST on one address)

USAGE: tickfeed sim [FLAGS]

  --listen ADDR            address for websocket (/stream, /ws/...) and REST (/api/v3/...); port 0
                           picks a free port                                 [127.0.0.1:9443]
  --plain                  plain TCP (ws://, http://) instead of TLS         [TLS]
  --cert-out PEM           write the CA certificate a client must trust (tickfeed run --ca-file)
  --symbol SYM             synthetic market to run; repeatable or comma list [btcusdt]
  --replay FILE_OR_DIR...  replay recordings (<recv ns> <frame> lines, gzip or plain, or tickfeed
                           capture directories) instead of a synthetic market
  --rate N                 market messages per second; 0 = as fast as the client reads [real time]
  --speed X                play simulated time X times faster than real time   [1]
  --seed N                 seed of the synthetic market                        [1]
  --levels N               synthetic levels per side at start                  [3000]
  --weight-limit N         REST weight per minute before 429; 0 = unlimited    [6000]

faults (all also available at runtime through the library API):
  --ping-interval MS       server ping period; 0 = never                       [20000]
  --pong-timeout MS        disconnect when a ping has no matching pong by then [60000]
  --max-conn-age SECS      disconnect websockets this old (the 24 h rule); 0 = never [86400]
  --max-incoming N         close websockets sending more than N frames a second (Binance: 5) [off]
  --fragment N             split every text message into N frames              [off]
  --drop-diff-every N      drop one of every N depth diffs per connection (a real gap) [off]
  --malformed-every N      send a malformed JSON message after every N messages [off]
  --unknown-stream-every N send an unsubscribed-stream message after every N    [off]
  --binary-every N         send a binary frame after every N messages          [off]
  --close-after SECS       close 1001 every live websocket SECS after start    [off]
  --abort-after SECS       TCP-reset every live websocket SECS after start     [off]
  --shutdown-after SECS    send serverShutdown then close, SECS after start    [off]
  --rest-429 K             answer the first K REST requests with 429           [0]
  --rest-418 K             then answer K more with 418                         [0]
  --retry-after SECS       Retry-After sent with injected 429/418              [2]
  --rest-delay MS          delay every REST answer                             [0]
  -h, --help               this text

On start it prints one line, `listening on wss://HOST:PORT` (or ws://), and runs until killed.
";

/// Runs `tickfeed sim` with `args` (the arguments after `sim`). Blocks until the process is
/// killed, unless the flags are wrong (returns 2) or the simulator cannot start (returns 1).
pub fn run_cli(args: &[String]) -> i32 {
    run_cli_with(args, &mut std::io::stdout(), &mut std::io::stderr(), &|| false)
}

/// [`run_cli`] with explicit output streams and a stop condition polled every 100 ms (returns 0
/// once it holds). For tests and for embedding the simulator in another command.
pub fn run_cli_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write, stop: &dyn Fn() -> bool) -> i32 {
    let parsed = match parse(args) {
        Ok(Parsed::Help) => {
            let _ = out.write_all(HELP.as_bytes());
            let _ = out.flush();
            return 0;
        }
        Ok(Parsed::Run(p)) => p,
        Err(msg) => {
            let _ = writeln!(err, "tickfeed sim: {msg} (see --help)");
            return 2;
        }
    };
    let sim = match Sim::start(parsed.config) {
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
    if let Some(path) = &parsed.cert_out {
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
    let _ = out.flush();
    while !stop() {
        std::thread::sleep(Duration::from_millis(100));
    }
    sim.shutdown();
    0
}

struct RunArgs {
    config: SimConfig,
    cert_out: Option<PathBuf>,
}

enum Parsed {
    Help,
    Run(Box<RunArgs>),
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} expects a non-negative integer, got {v:?}"))
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{flag} expects seconds, got {v:?}")),
    }
}

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut config = SimConfig {
        listen: "127.0.0.1:9443".parse().map_err(|_| "internal: default address")?,
        ..SimConfig::default()
    };
    let mut faults = FaultPlan::default();
    let mut symbols: Vec<String> = Vec::new();
    let mut replay: Vec<PathBuf> = Vec::new();
    let mut seed = 1u64;
    let mut cert_out = None;
    let mut rate: Option<u32> = None;
    let mut speed: Option<f64> = None;

    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg, None),
        };
        let value = |i: &mut usize| -> Result<String, String> {
            if let Some(v) = &inline {
                return Ok(v.clone());
            }
            match args.get(*i) {
                Some(v) if !v.starts_with("--") => {
                    *i += 1;
                    Ok(v.clone())
                }
                _ => Err(format!("{flag} needs a value")),
            }
        };
        match flag {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--listen" => {
                let v = value(&mut i)?;
                config.listen = v
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("--listen expects HOST:PORT (an IP address), got {v:?}"))?;
            }
            "--plain" => config.tls = false,
            "--cert-out" => cert_out = Some(PathBuf::from(value(&mut i)?)),
            "--symbol" => {
                for s in value(&mut i)?.split(',').filter(|s| !s.is_empty()) {
                    if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(format!("--symbol expects letters and digits, got {s:?}"));
                    }
                    symbols.push(s.to_ascii_lowercase());
                }
            }
            "--replay" => {
                if let Some(v) = inline.clone() {
                    replay.push(v.into());
                }
                while let Some(v) = args.get(i).filter(|v| !v.starts_with("--")) {
                    replay.push(v.into());
                    i += 1;
                }
                if replay.is_empty() {
                    return Err("--replay needs at least one file or directory".into());
                }
            }
            "--rate" => rate = Some(num(flag, &value(&mut i)?)?),
            "--speed" => {
                let v = value(&mut i)?;
                match v.parse::<f64>() {
                    Ok(s) if s.is_finite() && s > 0.0 => speed = Some(s),
                    _ => return Err(format!("--speed expects a positive number, got {v:?}")),
                }
            }
            "--seed" => seed = num(flag, &value(&mut i)?)?,
            "--levels" => config.levels_per_side = num(flag, &value(&mut i)?)?,
            "--weight-limit" => {
                let n: u32 = num(flag, &value(&mut i)?)?;
                config.weight_limit = (n > 0).then_some(n);
            }
            "--ping-interval" => {
                let n: u64 = num(flag, &value(&mut i)?)?;
                faults.ping_interval = (n > 0).then(|| Duration::from_millis(n));
            }
            "--pong-timeout" => faults.pong_timeout = Duration::from_millis(num::<u64>(flag, &value(&mut i)?)?.max(1)),
            "--max-conn-age" => {
                let d = secs(flag, &value(&mut i)?)?;
                faults.max_connection_age = (!d.is_zero()).then_some(d);
            }
            "--max-incoming" => {
                faults.max_incoming_per_sec = Some(num::<u32>(flag, &value(&mut i)?)?).filter(|n| *n > 0)
            }
            "--fragment" => faults.fragment_frames = Some(num(flag, &value(&mut i)?)?),
            "--drop-diff-every" => faults.drop_diff_every = Some(num::<u64>(flag, &value(&mut i)?)?).filter(|n| *n > 0),
            "--malformed-every" => faults.malformed_every = Some(num::<u64>(flag, &value(&mut i)?)?).filter(|n| *n > 0),
            "--unknown-stream-every" => {
                faults.unknown_stream_every = Some(num::<u64>(flag, &value(&mut i)?)?).filter(|n| *n > 0)
            }
            "--binary-every" => faults.binary_every = Some(num::<u64>(flag, &value(&mut i)?)?).filter(|n| *n > 0),
            "--close-after" => faults.close_after = Some(secs(flag, &value(&mut i)?)?),
            "--abort-after" => faults.abort_after = Some(secs(flag, &value(&mut i)?)?),
            "--shutdown-after" => faults.shutdown_after = Some(secs(flag, &value(&mut i)?)?),
            "--rest-429" => faults.rest_429_next = num(flag, &value(&mut i)?)?,
            "--rest-418" => faults.rest_418_next = num(flag, &value(&mut i)?)?,
            "--retry-after" => faults.retry_after_secs = num(flag, &value(&mut i)?)?,
            "--rest-delay" => {
                let n: u64 = num(flag, &value(&mut i)?)?;
                faults.rest_delay = (n > 0).then(|| Duration::from_millis(n));
            }
            other if other.starts_with('-') => return Err(format!("unknown flag {other}")),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if !replay.is_empty() && !symbols.is_empty() {
        return Err("--symbol and --replay cannot be combined (a replay serves the recorded symbols)".into());
    }
    if rate.is_some() && speed.is_some() {
        return Err("--rate and --speed cannot be combined".into());
    }
    config.source = if replay.is_empty() {
        MarketSource::Synthetic { symbols: if symbols.is_empty() { vec!["btcusdt".into()] } else { symbols }, seed }
    } else {
        MarketSource::Replay { paths: replay }
    };
    config.pacing = match (rate, speed) {
        (Some(0), _) => Pacing::AsFastAsRead,
        (Some(n), _) => Pacing::Rate(n),
        (None, Some(s)) => Pacing::Speed(s),
        (None, None) => Pacing::RealTime,
    };
    config.faults = faults;
    Ok(Parsed::Run(Box::new(RunArgs { config, cert_out })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<RunArgs, String> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&v)? {
            Parsed::Run(r) => Ok(*r),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let r = p(&[]).unwrap();
        assert_eq!(r.config.listen.to_string(), "127.0.0.1:9443");
        assert!(r.config.tls);
        assert_eq!(r.config.source, MarketSource::Synthetic { symbols: vec!["btcusdt".into()], seed: 1 });
        assert_eq!(r.config.pacing, Pacing::RealTime);
        assert_eq!(r.config.faults, FaultPlan::default());
    }

    #[test]
    fn flags_parse() {
        let r = p(&[
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
        ])
        .unwrap();
        assert!(!r.config.tls);
        assert_eq!(
            r.config.source,
            MarketSource::Synthetic { symbols: vec!["btcusdt".into(), "ethusdt".into(), "solusdt".into()], seed: 7 }
        );
        assert_eq!(r.config.pacing, Pacing::AsFastAsRead);
        let f = &r.config.faults;
        assert_eq!(f.fragment_frames, Some(3));
        assert_eq!(f.ping_interval, Some(Duration::from_millis(250)));
        assert_eq!(f.pong_timeout, Duration::from_millis(500));
        assert_eq!(f.max_connection_age, Some(Duration::from_millis(1500)));
        assert_eq!((f.rest_429_next, f.retry_after_secs), (2, 9));
        assert_eq!(f.close_after, Some(Duration::from_millis(250)));
        let r = p(&["--replay", "a.gz", "b.gz", "--speed", "10"]).unwrap();
        assert_eq!(r.config.source, MarketSource::Replay { paths: vec!["a.gz".into(), "b.gz".into()] });
        assert_eq!(r.config.pacing, Pacing::Speed(10.0));
        assert_eq!(p(&["--rate", "500"]).unwrap().config.pacing, Pacing::Rate(500));
        assert_eq!(p(&["--max-incoming", "5"]).unwrap().config.faults.max_incoming_per_sec, Some(5));
    }

    #[test]
    fn bad_flags_name_the_problem() {
        for (args, needle) in [
            (&["--bogus"][..], "unknown flag --bogus"),
            (&["--rate"][..], "--rate needs a value"),
            (&["--rate", "fast"][..], "--rate expects"),
            (&["--listen", "localhost"][..], "--listen expects"),
            (&["--symbol", "btc-usdt"][..], "--symbol expects"),
            (&["--replay"][..], "--replay needs"),
            (&["--replay", "x", "--symbol", "btcusdt"][..], "cannot be combined"),
            (&["stray"][..], "unexpected argument"),
            (&["--speed", "0"][..], "--speed expects"),
        ] {
            let e = p(args).err().unwrap();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }
}
