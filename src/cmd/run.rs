//! `tickfeed run`: the live handler's flags and its driver.
//!
//! The driver turns the flags into a [`LiveConfig`] and a pipeline, checks at start what can only
//! be checked on this machine (the core, the CA file, the exit files), runs the event loop and
//! writes the exit files. `demo` shares everything after the connection flags (`run_live`).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::args::{FeedArgs, OutputArgs};
use super::error::CmdError;
use super::{exit_files, summary};
use crate::binance::url::{self, BaseUrl};
use crate::binance::StreamKind;
use crate::live::sbe::{self, ApiKey, Feed, SbeConfig, StreamName};
use crate::live::{self, EndReason, LiveConfig, LiveReport};
use crate::net::tls::TlsSetup;
use crate::notice::NoticeLog;
use crate::output::OutputMode;
use crate::pipeline::Pipeline;

/// `tickfeed run`'s flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// The market and run flags `run` shares with `demo`.
    #[command(flatten)]
    pub feed: FeedArgs,
    /// Streams per symbol: any of depth,trade,aggTrade,bookTicker (depth is the 100 ms diff stream); with
    /// --feed sbe any of depth,trade,bestBidAsk,depth20,aggTrade (aggTrade from a JSON connection to --json-ws-url)
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "depth,trade", value_parser = sbe::parse_stream_name)]
    pub streams: Vec<StreamName>,
    /// Market data wire: json (text frames from stream.binance.com) or sbe (binary SBE frames from
    /// stream-sbe.binance.com; needs an Ed25519 API key: --api-key-file or BINANCE_API_KEY)
    #[arg(long = "feed", value_name = "FEED", default_value = "json", value_parser = sbe::parse_feed,
          help_heading = "Connection")]
    pub wire: Feed,
    /// --feed sbe: file holding the Binance API key sent as X-MBX-APIKEY (one trailing newline stripped; keep it
    /// mode 600). Wins over the BINANCE_API_KEY environment variable
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub api_key_file: Option<PathBuf>,
    /// Websocket BASE, wss://host:port or ws://host:port; /stream?streams=... is appended (with
    /// &timeUnit=MICROSECOND for JSON). Give it again for more hosts (e.g. wss://data-stream.binance.vision:9443):
    /// with --redundancy, connection i of each shard goes to the i-th [default: wss://stream.binance.com:9443, with
    /// --feed sbe wss://stream-sbe.binance.com:9443]
    #[arg(long, value_name = "URL", value_parser = url::parse_ws_base, action = clap::ArgAction::Append,
          help_heading = "Connection")]
    pub ws_url: Vec<BaseUrl>,
    /// --feed sbe: JSON websocket BASE that aggTrade comes from (SBE has no aggTrade stream)
    #[arg(long, value_name = "URL", default_value = "wss://stream.binance.com:9443", value_parser = url::parse_ws_base,
          help_heading = "Connection")]
    pub json_ws_url: BaseUrl,
    /// REST BASE for /api/v3/exchangeInfo and /api/v3/depth
    #[arg(long, value_name = "URL", default_value = "https://api.binance.com", value_parser = url::parse_rest_base,
          help_heading = "Connection")]
    pub rest_url: BaseUrl,
    /// Extra trusted root certificate(s) for websocket and REST TLS (e.g. the simulator's)
    /// [default: public web roots only]
    #[arg(long, value_name = "PEM", help_heading = "Connection")]
    pub ca_file: Option<PathBuf>,
    /// Block in the poller until the next deadline (at most 100 ms) instead of spinning on poll(0)
    #[arg(long, help_heading = "Connection", overrides_with = "no_busy_poll")]
    pub no_busy_poll: bool,
    /// spot | usdm: Binance spot, or USDⓈ-M futures (hosts wss://fstream.binance.com and
    /// https://fapi.binance.com unless --ws-url/--rest-url say otherwise; /fapi/v1 REST at its
    /// weights within 2400 per minute; depth, trade and bookTicker on /public, aggTrade on /market
    /// connections; books kept by the futures pu procedure; --depth-limit rounded up to 5, 10, 20,
    /// 50, 100, 500 or 1000)
    #[arg(long, value_name = "VENUE", default_value = "spot", value_parser = super::args::venue,
          help_heading = "Connection")]
    pub venue: crate::venue::Venue,
    /// The output flags every command shares.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl RunArgs {
    /// The live configuration these flags describe. Reads the CA file and checks the core: every
    /// mistake is one line (exit 2).
    pub(crate) fn live_config(&self) -> Result<LiveConfig, CmdError> {
        let tls = TlsSetup::new(self.ca_file.as_deref())?;
        let streams = sbe::resolve_streams(self.wire, &self.streams).map_err(CmdError::Feed)?;
        // Without --ws-url: the feed's own endpoint.
        let mut urls = self.ws_url.iter().cloned();
        let first = match urls.next() {
            Some(u) => u,
            // On futures: futures' own host (SBE is spot's only, refused below).
            None if self.venue == crate::venue::Venue::UsdM => url::parse_ws_base(self.venue.default_ws())?,
            None => url::parse_ws_base(self.wire.default_ws())?,
        };
        // A REST base left at spot's default is futures' own on futures.
        let spot_rest = url::parse_rest_base(crate::venue::Venue::Spot.default_rest())?;
        let rest = match self.venue {
            crate::venue::Venue::UsdM if self.rest_url == spot_rest => url::parse_rest_base(self.venue.default_rest())?,
            _ => self.rest_url.clone(),
        };
        if self.venue == crate::venue::Venue::UsdM && self.wire == Feed::Sbe {
            return Err(CmdError::Feed(
                "--feed sbe --venue usdm: Binance's SBE market-data streams are spot's; USDⓈ-M futures is JSON only"
                    .into(),
            ));
        }
        let sbe = match self.wire {
            Feed::Json => None,
            Feed::Sbe => {
                let env = std::env::var("BINANCE_API_KEY").ok();
                let api_key = ApiKey::load(self.api_key_file.as_deref(), env.as_deref())
                    .map_err(|e| CmdError::Feed(e.to_string()))?;
                Some(SbeConfig { api_key, depth20: streams.depth20, json_ws: self.json_ws_url.clone() })
            }
        };
        let mut cfg = live_config(&self.feed, &streams.kinds, first, rest, tls, !self.no_busy_poll, &self.output)?;
        cfg.ws_more = urls.collect();
        cfg.sbe = sbe;
        set_venue(&mut cfg, self.venue)?;
        Ok(cfg)
    }
}

/// The live configuration of `run` and `demo`: every field the flags own is set from them.
pub(crate) fn live_config(
    feed: &FeedArgs,
    streams: &[StreamKind],
    ws: BaseUrl,
    rest: BaseUrl,
    tls: TlsSetup,
    busy_poll: bool,
    out: &OutputArgs,
) -> Result<LiveConfig, CmdError> {
    if let Some(c) = feed.core {
        live::check_core(c)?;
    }
    let mut cfg = LiveConfig::new(ws, rest, tls);
    feed.apply(&mut cfg, streams, out)?;
    cfg.busy_poll = busy_poll;
    Ok(cfg)
}

/// Makes `cfg` follow `venue`: on USDⓈ-M futures the snapshot limit is rounded up to the next one
/// futures accepts (5, 10, 20, 50, 100, 500, 1000; above 1000 is an error) and the weight budget
/// kept within futures' 2,400 a minute.
pub(crate) fn set_venue(cfg: &mut LiveConfig, venue: crate::venue::Venue) -> Result<(), CmdError> {
    cfg.venue = venue;
    if venue == crate::venue::Venue::Spot {
        return Ok(());
    }
    if !cfg.depth_auto {
        cfg.depth_limit = venue.depth_limit(cfg.depth_limit).ok_or(CmdError::FuturesDepthLimit(cfg.depth_limit))?;
    }
    cfg.weight_per_minute = cfg.weight_per_minute.min(venue.weight_per_minute());
    Ok(())
}

/// `tickfeed run`. Ends on `--duration`, `--max-events`, SIGINT or SIGTERM (summary on stderr,
/// exit files written, exit 0). stdout closing (a pipe into `head`) stops the output but not the
/// run: books, stats and the exit files are still kept.
pub(super) fn run(a: &RunArgs) -> Result<(), CmdError> {
    let cfg = a.live_config()?;
    run_live(&cfg, &a.output)
}

/// The live run once configured: shared by `run` and `demo`. exchangeInfo comes first (with
/// `--symbol ALL` it says which books there are), then the pipeline, then the loop.
pub(crate) fn run_live(cfg: &LiveConfig, out: &OutputArgs) -> Result<(), CmdError> {
    exit_files::check_writable(out)?;
    // The loop pins itself to cfg.core (checked to exist); say first if that core is a poor home.
    if let Some(core) = cfg.core {
        for w in crate::net::cpu::check(core, cfg.busy_poll) {
            eprintln!("tickfeed: warning: {w}");
        }
    }
    let stop = crate::net::signal::install()?;
    let origin_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
    let mut log = NoticeLog::stderr(out.quiet);
    let mut cfg = cfg.clone();
    let started = live::resolve(&mut cfg, &mut log, stop)?;
    let syms: Vec<&str> = cfg.symbols.iter().map(String::as_str).collect();
    let mut pcfg = out.pipeline_config();
    pcfg.venue = cfg.venue;
    let mut p = Pipeline::new(pcfg, &syms);
    let many = cfg.symbols.len() > LiveConfig::PRINT_ALL_UP_TO;
    match &cfg.print {
        Some(list) => p.set_printed(Some(list)),
        // Too many symbols for one line each: live::run writes a summary a second instead.
        None if many && out.output == OutputMode::Tob => p.set_printed(Some(&[])),
        None => {}
    }
    p.set_origin_ns(origin_ns);
    let report = if started {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        live::run(&cfg, &mut p, &mut lock, log, stop)?
    } else {
        // Stopped (a signal, --duration) before exchangeInfo answered.
        let end = if stop.load(Ordering::Relaxed) { EndReason::Signal } else { EndReason::Duration };
        LiveReport { end, ..LiveReport::default() }
    };
    exit_files::write(out, &p, &report.extra(), &report.extra_json())?;
    if !out.quiet {
        eprintln!("tickfeed: run ended ({})", report.end);
        eprint!("{}", summary::summary_text(&p));
    }
    Ok(())
}
