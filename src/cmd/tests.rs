//! The command line as parsed: flags into configurations, mistakes into one line.

use super::*;
use crate::binance::url::parse_ws_base;
use crate::binance::StreamKind;
use crate::live::LiveConfig;
use crate::net::tls::TlsSetup;
use crate::output::OutputMode;
use crate::pipeline::PipelineConfig;

fn parse(v: &[&str]) -> Result<Cli, String> {
    let argv: Vec<OsString> = std::iter::once("tickfeed").chain(v.iter().copied()).map(OsString::from).collect();
    Cli::try_parse_from(&argv).map_err(|e| usage_line(&e, subcommand_of(&argv).as_deref()))
}

fn replay_args(v: &[&str]) -> Result<ReplayArgs, String> {
    let mut argv = vec!["replay"];
    argv.extend_from_slice(v);
    match parse(&argv)?.command {
        Command::Replay(a) => Ok(a),
        other => panic!("{other:?}"),
    }
}

fn run_args(v: &[&str]) -> Result<RunArgs, String> {
    let mut argv = vec!["run"];
    argv.extend_from_slice(v);
    match parse(&argv)?.command {
        Command::Run(a) => Ok(a),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parses_flags_and_reports_mistakes() {
    let a = replay_args(&["--output", "ndjson", "--symbol=btcusdt,ethusdt", "--symbol", "bnb", "f1", "--quiet", "f2"])
        .unwrap();
    assert_eq!(a.output.output, OutputMode::Ndjson);
    assert_eq!(a.symbol, vec!["btcusdt", "ethusdt", "bnb"]);
    assert!(a.output.quiet);
    assert_eq!(a.paths, vec![std::path::PathBuf::from("f1"), "f2".into()]);
    assert_eq!(
        replay_args(&["--bogus", "f"]).unwrap_err(),
        "replay: unknown flag --bogus (see tickfeed replay --help)"
    );
    assert_eq!(replay_args(&["f", "--output"]).unwrap_err(), "replay: --output needs a value (MODE)");
    assert_eq!(replay_args(&["f", "--quiet=1"]).unwrap_err(), "replay: --quiet takes no value");
    assert_eq!(replay_args(&["f", "--output", "tob", "--output", "none"]).unwrap_err(), "replay: --output given twice");
    assert!(
        replay_args(&["f", "--quiet", "--no-measure", "--quiet", "--no-measure"]).unwrap().output.quiet,
        "switches repeat"
    );
    // A replay reads no clock unless asked; the last of --measure / --no-measure wins.
    assert!(!replay_args(&["f"]).unwrap().measure);
    let m = |v: &[&str]| {
        let a = replay_args(v).unwrap();
        a.measure && !a.no_measure
    };
    assert!(m(&["f", "--measure"]));
    assert!(!m(&["f", "--measure", "--no-measure"]));
    assert!(m(&["f", "--no-measure", "--measure"]));
    assert_eq!(replay_args(&["--max-events", "x", "f"]).unwrap_err(), "--max-events: 'x' is not a valid number");
    let e = replay_args(&["--output", "fancy", "f"]).unwrap_err();
    assert!(e.contains("unknown output mode 'fancy'") && e.starts_with("--output: "), "{e}");
    assert!(replay_args(&[]).unwrap_err().starts_with("replay: missing <FILE_OR_DIR>"));
    let help = Cli::command().find_subcommand_mut("replay").unwrap().render_help().to_string();
    assert!(help.contains("--dump-book <DIR>"), "{help}");
}

#[test]
fn one_line_errors_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--depth-limit", "0"], "--depth-limit: 0 is outside 1..5000"),
        (&["run", "--streams", "depth,kline"], "--streams: unknown stream 'kline'"),
        (&["run", "--streams", ""], "--streams: empty stream name"),
        (&["run", "--symbol", ""], "--symbol: empty symbol"),
        (&["run", "--symbol", "btc/usdt"], "--symbol: invalid symbol 'btc/usdt'"),
        (&["run", "--ws-url", "wss://x:1/ws"], "--ws-url 'wss://x:1/ws': give the base only"),
        (&["run", "--rest-url", "ftp://x"], "--rest-url 'ftp://x': unsupported scheme 'ftp'"),
        (&["run", "--record-compress", "zip"], "--record-compress: 'zip' is not gzip or none"),
        (&["run", "--max-conn-age", "0.01"], "--max-conn-age: at least 0.1 s"),
        (&["run", "--duration", "-1"], "--duration: -1 is not a number of seconds"),
        (&["run", "--weight-budget", "1"], "--weight-budget: 1 is below the lightest request (5)"),
        (&["run", "--window-ticks", "16777216"], "--window-ticks: 16777216 is outside 64..4194304"),
        (&["run", "extra"], "run: unexpected argument 'extra' (see tickfeed run --help)"),
        (&["run", "--max-event", "1"], "run: unknown flag --max-event, did you mean --max-events?"),
        (&["bogus"], "unknown command 'bogus'"),
        (&["--bogus"], "unknown flag --bogus (see tickfeed --help)"),
        (&["completions", "tcsh"], "<SHELL>: invalid value 'tcsh' (expected bash,"),
        (&["replay", "--pace", "slow", "x"], "--pace: unknown mode 'slow'"),
        (&["replay", "--speed", "0", "x"], "--speed: '0' is not a positive number"),
    ];
    for (argv, want) in cases {
        let e = parse(argv).unwrap_err();
        assert!(e.starts_with(want), "{argv:?}: {e}");
        assert!(!e.contains('\n'), "{argv:?}: {e}");
    }
    #[cfg(feature = "sim")]
    {
        let e = parse(&["demo", "--ws-url", "ws://x:1"]).unwrap_err();
        assert!(e.starts_with("demo: unknown flag --ws-url"), "{e}");
    }
}

#[test]
fn the_command_line_defaults_are_the_library_defaults() {
    let a = run_args(&[]).unwrap();
    assert!(a.ws_url.is_empty(), "the feed decides the default");
    let cli = a.live_config().unwrap();
    assert_eq!(cli.ws, parse_ws_base("wss://stream.binance.com:9443").unwrap());
    assert!(cli.sbe.is_none());
    let lib = LiveConfig::new(cli.ws.clone(), cli.rest.clone(), TlsSetup::new(None).unwrap());
    assert_eq!(cli.symbols, lib.symbols);
    assert_eq!(cli.streams, lib.streams);
    assert_eq!(cli.depth_limit, lib.depth_limit);
    assert_eq!(cli.core, lib.core);
    assert_eq!(cli.busy_poll, lib.busy_poll);
    assert_eq!(cli.max_events, lib.max_events);
    assert_eq!(cli.duration, lib.duration);
    assert_eq!(cli.stale, lib.stale);
    assert_eq!(cli.max_conn_age, lib.max_conn_age);
    assert_eq!(cli.limits, lib.limits);
    assert_eq!(cli.weight_per_minute, lib.weight_per_minute);
    assert_eq!(cli.switch_timeout, lib.switch_timeout);
    assert_eq!(cli.record, lib.record);
    assert_eq!(cli.record_compress, lib.record_compress);
    assert_eq!(cli.all_symbols, lib.all_symbols);
    assert_eq!(
        (cli.depth_auto, cli.sync_within, cli.rest_workers),
        (lib.depth_auto, lib.sync_within, lib.rest_workers)
    );
    let same = |c: PipelineConfig| {
        let d = PipelineConfig::default();
        assert_eq!(
            (c.output, c.book, c.auto_symbols, c.out_capacity),
            (d.output, d.book, d.auto_symbols, d.out_capacity)
        );
    };
    same(a.output.pipeline_config());
    let r = replay_args(&["f"]).unwrap();
    same(r.output.pipeline_config());
    assert_eq!(r.pace().unwrap(), crate::capture::Pace::AsFastAsPossible);
}

#[test]
fn flags_fill_the_live_configuration() {
    let a = run_args(&[
        "--symbol",
        "btcusdt,ETHUSDT",
        "--symbol=BTCUSDT",
        "--streams",
        "trade,depth,trade",
        "--depth-limit",
        "5000",
        "--no-busy-poll",
        "--max-events",
        "7",
        "--duration",
        "1.5",
        "--stale-secs",
        "0",
        "--max-conn-age",
        "60",
        "--switch-timeout",
        "2",
        "--max-message",
        "4096",
        "--weight-budget",
        "100",
        "--record",
        "/tmp/rec",
        "--record-compress",
        "none",
        "--quiet",
        "--window-ticks",
        "1024",
    ])
    .unwrap();
    let c = a.live_config().unwrap();
    assert_eq!(c.symbols, vec!["BTCUSDT", "ETHUSDT"]);
    assert_eq!(c.streams, vec![StreamKind::Trade, StreamKind::Depth]);
    assert_eq!((c.depth_limit, c.busy_poll, c.max_events), (5000, false, Some(7)));
    assert_eq!(c.duration, Some(std::time::Duration::from_millis(1500)));
    assert_eq!(c.stale, std::time::Duration::ZERO);
    assert_eq!(c.max_conn_age, std::time::Duration::from_secs(60));
    assert_eq!(c.switch_timeout, std::time::Duration::from_secs(2));
    assert_eq!((c.limits.max_frame, c.limits.max_message, c.weight_per_minute), (4096, 4096, 100));
    assert_eq!((c.record.as_deref(), c.record_compress), (Some(std::path::Path::new("/tmp/rec")), false));
    assert!(a.output.quiet, "--quiet reaches the notice log");
    assert_eq!(a.output.pipeline_config().book.ladder.map(|l| l.window_ticks), Some(1024));
}

#[test]
fn all_symbols_quote_and_auto_depth() {
    use crate::live::AllSymbols;
    let c = run_args(&["--symbol", "ALL", "--quote", "usdt", "--depth-limit", "auto", "--sync-within", "30"])
        .unwrap()
        .live_config()
        .unwrap();
    assert_eq!(c.all_symbols, Some(AllSymbols { quote: Some("USDT".into()) }));
    assert!(c.symbols.is_empty(), "filled from exchangeInfo");
    assert!(c.depth_auto);
    assert_eq!(c.sync_within, std::time::Duration::from_secs(30));
    let c = run_args(&["--symbol", "all"]).unwrap().live_config().unwrap();
    assert_eq!(c.all_symbols, Some(AllSymbols { quote: None }), "any case");
    let c = run_args(&["--depth-limit", "500"]).unwrap().live_config().unwrap();
    assert_eq!((c.depth_limit, c.depth_auto, c.all_symbols), (500, false, None));
    let err = |v: &[&str]| run_args(v).unwrap().live_config().err().map(|e| e.to_string());
    assert_eq!(
        err(&["--symbol", "ALL,btcusdt"]).as_deref(),
        Some("--symbol ALL means every symbol: give it alone, not in a list")
    );
    assert_eq!(
        err(&["--symbol", "btcusdt", "--quote", "USDT"]).as_deref(),
        Some("--quote narrows --symbol ALL: give --symbol ALL with it")
    );
    assert_eq!(
        run_args(&["--depth-limit", "deep"]).unwrap_err(),
        "--depth-limit: 'deep' is neither a number of levels nor auto"
    );
    assert!(run_args(&["--quote", "us-dt"]).unwrap_err().starts_with("--quote: 'us-dt' is not an asset name"));
    #[cfg(feature = "sim")]
    {
        let Command::Demo(d) = parse(&["demo", "--symbol", "ALL"]).unwrap().command else { panic!() };
        assert!(demo::demo(&d).unwrap_err().to_string().starts_with("demo: --symbol ALL needs"));
    }
}

#[test]
fn replay_pace_and_speed() {
    use crate::capture::Pace;
    assert_eq!(replay_args(&["--pace", "recorded", "f"]).unwrap().pace().unwrap(), Pace::Recorded { speed: 1.0 });
    assert_eq!(replay_args(&["--speed", "4", "f"]).unwrap().pace().unwrap(), Pace::Recorded { speed: 4.0 });
    let e = replay_args(&["--pace", "fast", "--speed", "2", "f"]).unwrap().pace().unwrap_err().to_string();
    assert_eq!(e, "--speed needs --pace recorded (it was given --pace fast)");
}

#[test]
fn help_shows_defaults_and_bounds() {
    let mut cmd = Cli::command();
    let run = cmd.find_subcommand_mut("run").unwrap().render_long_help().to_string();
    for want in [
        "[default: btcusdt]",
        "[default: depth,trade]",
        "[default: wss://stream.binance.com:9443]",
        "[default: 1000]",
        "[default: 84600]",
        "[default: each book sized from its first snapshot",
        "64..4194304",
        "[default: tob]",
        "[default: gzip]",
        "[default: 60]",
        "or auto: the deepest of 5000/1000/500/100",
        "ALL: every TRADING symbol exchangeInfo lists",
        "--quote <Q>",
        "90% of the smaller of this and exchangeInfo's REQUEST_WEIGHT limit",
    ] {
        assert!(run.contains(want), "{want} missing from:\n{run}");
    }
    cmd.debug_assert();
}

#[cfg(feature = "sim")]
#[test]
fn sim_takes_the_simulators_own_flags() {
    let Command::Sim(a) = parse(&["sim", "--listen", "127.0.0.1:0", "--plain", "--rate", "0"]).unwrap().command else {
        panic!()
    };
    assert_eq!(a.listen, "127.0.0.1:0".parse().unwrap());
    assert!(a.plain);
    assert_eq!(parse(&["sim", "--bogus"]).unwrap_err(), "sim: unknown flag --bogus (see tickfeed sim --help)");
}

#[test]
fn venue_usdm_takes_futures_hosts_limits_and_budget() {
    use crate::binance::url::parse_rest_base;
    use crate::venue::Venue;
    let cfg = run_args(&["--venue", "usdm"]).unwrap().live_config().unwrap();
    assert_eq!(cfg.venue, Venue::UsdM);
    assert_eq!(cfg.ws, parse_ws_base("wss://fstream.binance.com").unwrap());
    assert_eq!(cfg.rest, parse_rest_base("https://fapi.binance.com").unwrap());
    assert_eq!(cfg.depth_limit, 1000);
    assert_eq!(cfg.weight_per_minute, 2400, "spot's 6000 default is above futures' law");
    // Given bases are kept; a limit futures does not take is rounded up to the next it does.
    let cfg = run_args(&["--venue", "usdm", "--ws-url", "ws://127.0.0.1:9", "--rest-url", "http://127.0.0.1:9"])
        .unwrap()
        .live_config()
        .unwrap();
    assert_eq!(cfg.ws, parse_ws_base("ws://127.0.0.1:9").unwrap());
    assert_eq!(cfg.rest, parse_rest_base("http://127.0.0.1:9").unwrap());
    for (given, sent) in [("1", 5), ("5", 5), ("21", 50), ("300", 500), ("1000", 1000)] {
        let cfg = run_args(&["--venue", "usdm", "--depth-limit", given]).unwrap().live_config().unwrap();
        assert_eq!(cfg.depth_limit, sent, "--depth-limit {given}");
    }
    let e = run_args(&["--venue", "usdm", "--depth-limit", "5000"]).unwrap().live_config().err().unwrap().to_string();
    assert_eq!(
        e,
        "--depth-limit 5000: USDⓈ-M futures snapshots take at most 1000 levels (limits 5, 10, 20, 50, 100, 500, 1000)"
    );
    let cfg = run_args(&["--venue", "usdm", "--weight-budget", "1000"]).unwrap().live_config().unwrap();
    assert_eq!(cfg.weight_per_minute, 1000);
    // Spot is as it was.
    let cfg = run_args(&["--depth-limit", "300"]).unwrap().live_config().unwrap();
    assert_eq!((cfg.venue, cfg.depth_limit, cfg.weight_per_minute), (Venue::Spot, 300, 6000));
    assert!(parse(&["run", "--venue", "coinm"]).unwrap_err().contains("unknown venue 'coinm' (expected spot or usdm)"));
}

#[test]
fn feed_sbe_flags() {
    let dir = std::env::temp_dir().join(format!("tickfeed-sbe-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, "K3yThatIsSecret\n").unwrap();
    let k = key.to_str().unwrap();
    let a = run_args(&["--feed", "sbe", "--api-key-file", k, "--streams", "depth,trade,bestBidAsk,depth20,aggTrade"])
        .unwrap();
    let c = a.live_config().unwrap();
    assert_eq!(c.ws, parse_ws_base("wss://stream-sbe.binance.com:9443").unwrap());
    let s = c.sbe.as_ref().unwrap();
    assert!(s.depth20);
    assert_eq!(s.json_ws, parse_ws_base("wss://stream.binance.com:9443").unwrap());
    assert_eq!(c.streams, [StreamKind::Depth, StreamKind::Trade, StreamKind::BookTicker, StreamKind::AggTrade]);
    assert!(!format!("{s:?}").contains("K3yThatIsSecret"), "the key is never in a Debug");
    let err = |v: &[&str]| run_args(v).unwrap().live_config().map(|_| ()).unwrap_err().to_string();
    let e = err(&["--feed", "sbe", "--api-key-file", k, "--streams", "depth,bookTicker"]);
    assert!(e.contains("bestBidAsk") && !e.contains('\n'), "{e}");
    let e = err(&["--streams", "depth,bestBidAsk"]);
    assert!(e.contains("--feed sbe"), "{e}");
    let missing = dir.join("nope");
    let e = err(&["--feed", "sbe", "--api-key-file", missing.to_str().unwrap()]);
    assert!(e.starts_with("--api-key-file") && !e.contains('\n'), "{e}");
    std::fs::write(&key, "\n").unwrap();
    let e = err(&["--feed", "sbe", "--api-key-file", k]);
    assert!(e.contains("empty"), "{e}");
    if std::env::var_os("BINANCE_API_KEY").is_none() {
        let e = err(&["--feed", "sbe"]);
        assert!(e.contains("--api-key-file") && e.contains("BINANCE_API_KEY"), "{e}");
    }
    assert!(parse(&["run", "--feed", "xml"]).unwrap_err().contains("--feed"));
    std::fs::remove_dir_all(&dir).unwrap();
}
