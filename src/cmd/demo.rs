//! `tickfeed demo`: the built-in simulator on loopback over TLS, and the live handler against it.
//!
//! `demo` takes `run`'s flags except the connection ones (`--ws-url`, `--rest-url`, `--ca-file`,
//! `--no-busy-poll`), which it fills itself: the simulator's address and its throwaway CA. It
//! blocks in the poller by default (`--busy-poll` to spin), since the simulator shares the machine.
//! Only in builds with the `sim` feature.

use clap::Args;

use super::args::{self, FeedArgs, OutputArgs};
use super::error::CmdError;
use super::run;
use crate::binance::url;
use crate::binance::StreamKind;
use crate::net::tls::TlsSetup;

/// `tickfeed demo`'s flags.
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub feed: FeedArgs,
    /// Streams per symbol: any of depth,trade,aggTrade,bookTicker (bookTicker shows the book's online audit)
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "depth,trade,bookTicker",
          value_parser = url::parse_stream)]
    pub streams: Vec<StreamKind>,
    /// Seed of the simulated market
    #[arg(long, value_name = "N", allow_negative_numbers = true, default_value_t = 1, value_parser = args::number::<u64>, help_heading = "Simulator")]
    pub seed: u64,
    /// Simulated market messages per second (0 = as fast as the handler reads) [default: real time]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = args::number::<u32>, help_heading = "Simulator")]
    pub rate: Option<u32>,
    /// Spin on the poller as `run` does by default (the simulator shares this machine, so demo blocks)
    #[arg(long, overrides_with = "busy_poll")]
    pub busy_poll: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `tickfeed demo`.
pub(super) fn demo(a: &DemoArgs) -> Result<(), CmdError> {
    if a.feed.all_symbols()?.is_some() {
        return Err(args::SelectionError::AllInDemo.into());
    }
    let symbols: Vec<String> = a.feed.symbol.iter().map(|s| s.to_ascii_lowercase()).collect();
    let pacing = match a.rate {
        None => tickfeed_sim::Pacing::RealTime,
        Some(0) => tickfeed_sim::Pacing::AsFastAsRead,
        Some(n) => tickfeed_sim::Pacing::Rate(n),
    };
    let cfg = tickfeed_sim::SimConfig {
        source: tickfeed_sim::MarketSource::Synthetic { symbols: symbols.clone(), seed: a.seed },
        pacing,
        ..tickfeed_sim::SimConfig::default()
    };
    let sim = tickfeed_sim::Sim::start(cfg).map_err(CmdError::SimStart)?;
    let pem = sim.ca_pem().ok_or(CmdError::SimNoCertificate)?.to_owned();
    let ca_path = std::env::temp_dir().join(format!("tickfeed-demo-{}.pem", std::process::id()));
    let r = std::fs::write(&ca_path, pem)
        .map_err(|source| CmdError::DemoCaFile { path: ca_path.clone(), source })
        .and_then(|()| {
            let tls = TlsSetup::new(Some(&ca_path))?;
            let ws = url::parse_ws_base(&sim.ws_base())?;
            let rest = url::parse_rest_base(&sim.rest_base())?;
            run::live_config(&a.feed, &a.streams, ws, rest, tls, a.busy_poll, &a.output)
        })
        .and_then(|cfg| {
            if !a.output.quiet {
                eprintln!(
                    "tickfeed demo: simulator on {} (synthetic {}, seed {}, TLS with a throwaway CA); the handler \
                     connects to it as it would to Binance. Ctrl-C stops.",
                    sim.ws_base(),
                    symbols.join(","),
                    a.seed
                );
            }
            run::run_live(&cfg, &a.output)
        });
    let _ = std::fs::remove_file(&ca_path);
    sim.shutdown();
    r
}
