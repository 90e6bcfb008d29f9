//! What `tickfeed run` is configured with, and the defaults the command line shows.

use std::sync::Arc;
use std::time::Duration;

use super::exchange::{AllSymbols, Resolved};
use crate::binance::rest;
use crate::binance::url::BaseUrl;
use crate::binance::StreamKind;
use crate::net::tls::TlsSetup;
use crate::ws::Limits;

/// Everything `tickfeed run` is configured with.
#[derive(Clone)]
pub struct LiveConfig {
    /// Websocket base.
    pub ws: BaseUrl,
    /// More websocket bases (`--ws-url` given again): with `--redundancy`, connection `i` of each
    /// shard goes to the `i`-th base, round robin over `ws` and these.
    pub ws_more: Vec<BaseUrl>,
    /// `--redundancy N`: live connections per shard carrying the same streams; each event is
    /// taken from whichever delivers it first (1: no redundancy).
    pub redundancy: usize,
    /// With redundancy: how long an event that runs ahead of its stream on one connection waits
    /// for the others to deliver what is missing before it is processed (a gap, a resync).
    pub redundancy_hold: Duration,
    /// REST base.
    pub rest: BaseUrl,
    /// Symbols, in pipeline order (with `all_symbols`, filled by [`super::resolve`]).
    pub symbols: Vec<String>,
    /// `--symbol ALL`: every TRADING symbol exchangeInfo lists, narrowed by `--quote`. Needs
    /// [`super::resolve`] before [`super::run`], which fills `symbols` from the answer.
    pub all_symbols: Option<AllSymbols>,
    /// Streams per symbol.
    pub streams: Vec<StreamKind>,
    /// Snapshot `limit`.
    pub depth_limit: u32,
    /// `--depth-limit auto`: [`super::resolve`] sets `depth_limit` to the deepest limit whose
    /// weight lets every book sync within `sync_within` under the planned budget.
    pub depth_auto: bool,
    /// `--sync-within`: how soon every book should have its first snapshot (`depth_auto`).
    pub sync_within: Duration,
    /// REST worker threads: snapshot requests in flight at once.
    pub rest_workers: usize,
    /// TLS roots for wss and https.
    pub tls: TlsSetup,
    /// Pin the loop thread to this core.
    pub core: Option<usize>,
    /// Spin on `poll(0)` instead of blocking.
    pub busy_poll: bool,
    /// Time the hot path's stages (`stages_ns`) with the calibrated TSC.
    pub stage_times: bool,
    /// Stop after this many market events.
    pub max_events: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// No market data for this long: reconnect. Zero disables.
    pub stale: Duration,
    /// Open a new connection (make before break) once a connection is this old.
    pub max_conn_age: Duration,
    /// Websocket frame and message limits.
    pub limits: Limits,
    /// REST weight budget per minute.
    pub weight_per_minute: u32,
    /// Whole-request REST timeout.
    pub rest_timeout: Duration,
    /// TCP connect + TLS + upgrade must finish within this.
    pub connect_timeout: Duration,
    /// Longest overlap before switching to the new connection anyway.
    pub switch_timeout: Duration,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// `--record DIR`: capture what is received.
    pub record: Option<std::path::PathBuf>,
    /// `--dump-book`: SIGUSR1 writes the synced books there while the run goes on.
    pub dump_dir: Option<std::path::PathBuf>,
    /// `--record-compress`: gzip each capture file when it closes (default) or keep it plain.
    pub record_compress: bool,
    /// Streams per websocket connection (at most Binance's 1,024): the symbols are split over as
    /// many connections as needed, each with its own supervisor.
    pub streams_per_conn: usize,
    /// `--print`: the only symbols whose book lines are written; `None`: the default rule
    /// ([`LiveConfig::PRINT_ALL_UP_TO`]).
    pub print: Option<Vec<String>>,
    /// Binance spot or USDⓈ-M futures (`--venue`): hosts, REST paths and weights, stream tiers
    /// and the book procedure.
    pub venue: crate::venue::Venue,
    /// What exchangeInfo said, once [`super::resolve`] asked: [`super::run`] then does not ask again.
    pub(crate) resolved: Option<Arc<Resolved>>,
    /// `--publish`: the fan-out of books and trades (iceoryx2 or NATS), if any.
    pub publish: Option<crate::publish::PublishConfig>,
    /// `--metrics ADDR`: Prometheus / OpenMetrics text served there, if any.
    pub metrics: Option<String>,
    /// `--feed sbe`: market data from the SBE streams at `ws` (with the API key), aggTrade (if in
    /// `streams`) from a JSON connection alongside. `None`: JSON (the default).
    pub sbe: Option<super::sbe::SbeConfig>,
}

impl LiveConfig {
    /// The default snapshot `limit` (`--depth-limit`): weight 50 of the 6000 per minute.
    pub const DEFAULT_DEPTH_LIMIT: u32 = 1000;
    /// The default `--stale-secs`.
    pub const DEFAULT_STALE: Duration = Duration::from_secs(30);
    /// The default `--max-conn-age`: half an hour before Binance's 24 h cut.
    pub const DEFAULT_MAX_CONN_AGE: Duration = Duration::from_secs(23 * 3600 + 1800);
    /// The default `--switch-timeout`.
    pub const DEFAULT_SWITCH_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default streams per connection. Well under Binance's 1,024: the combined-stream URL stays
    /// under 8 KiB (a common request-line limit), a lost connection resyncs at most ~66 symbols of
    /// three streams, and even the whole market (about 1,500 symbols) needs ~23 connections, far
    /// inside the 300 connection attempts per 5 minutes.
    pub const DEFAULT_STREAMS_PER_CONN: usize = 200;
    /// Binance's cap of streams per connection.
    pub const MAX_STREAMS_PER_CONN: usize = 1024;
    /// Without `--print`, `tob` prints every symbol's book lines up to this many symbols; past it,
    /// a line a second summing them up (a thousand symbols' lines are not readable).
    pub const PRINT_ALL_UP_TO: usize = 20;
    /// The default `--sync-within`: every book synced within a minute, one minute's weight budget.
    pub const DEFAULT_SYNC_WITHIN: Duration = Duration::from_secs(60);
    /// The most live connections per shard `--redundancy` takes.
    pub const MAX_REDUNDANCY: usize = 4;
    /// The default `--redundancy-hold`: far above the few milliseconds two Binance hosts differ
    /// by, short enough that a gap both connections really have resyncs at once.
    pub const DEFAULT_REDUNDANCY_HOLD: Duration = Duration::from_millis(250);
    /// REST worker threads: enough to keep snapshots flowing while one waits on a slow answer, few
    /// enough that a burst stays a small share of the exchange's connections per IP.
    pub const DEFAULT_REST_WORKERS: usize = 4;

    /// Defaults for a websocket and REST base.
    pub fn new(ws: BaseUrl, rest: BaseUrl, tls: TlsSetup) -> LiveConfig {
        LiveConfig {
            ws,
            ws_more: Vec::new(),
            redundancy: 1,
            redundancy_hold: Self::DEFAULT_REDUNDANCY_HOLD,
            rest,
            symbols: vec!["BTCUSDT".into()],
            all_symbols: None,
            streams: vec![StreamKind::Depth, StreamKind::Trade],
            depth_limit: Self::DEFAULT_DEPTH_LIMIT,
            depth_auto: false,
            sync_within: Self::DEFAULT_SYNC_WITHIN,
            rest_workers: Self::DEFAULT_REST_WORKERS,
            tls,
            core: None,
            busy_poll: true,
            stage_times: true,
            max_events: None,
            duration: None,
            stale: Self::DEFAULT_STALE,
            max_conn_age: Self::DEFAULT_MAX_CONN_AGE,
            limits: Limits::default(),
            weight_per_minute: rest::DEFAULT_WEIGHT_PER_MINUTE,
            rest_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            switch_timeout: Self::DEFAULT_SWITCH_TIMEOUT,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            record: None,
            dump_dir: None,
            record_compress: true,
            streams_per_conn: Self::DEFAULT_STREAMS_PER_CONN,
            print: None,
            venue: crate::venue::Venue::Spot,
            resolved: None,
            publish: None,
            metrics: None,
            sbe: None,
        }
    }

    /// The websocket base of connection `leg` of each shard (round robin over `--ws-url`s).
    pub fn ws_for(&self, leg: usize) -> &BaseUrl {
        let n = 1 + self.ws_more.len();
        match leg % n {
            0 => &self.ws,
            i => &self.ws_more[i - 1],
        }
    }
}
