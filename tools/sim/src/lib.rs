//! tickfeed-sim: a Binance spot (or, with `SimConfig::venue`, USDⓈ-M futures) market-data
//! exchange simulator on loopback.
//!
//! It serves Binance-shaped websocket streams (`/stream?streams=...`, `/ws/<name>`) and REST
//! (`/api/v3/depth`, `/api/v3/exchangeInfo`) on one address, over TLS (a throwaway CA generated at
//! start) or plain TCP, from a seeded synthetic market or a replayed recording, with faults
//! injectable at runtime. It keeps the reference order book a correct client must converge to, so
//! tests can compare a handler's book with it exactly.
//!
//! It is deliberately independent of the `tickfeed` crate: an oracle must not share code with what
//! it judges. It is not a matching engine, accepts no orders, and serves only the market-data
//! surface a feed handler uses.
//!
//! ```no_run
//! use tickfeed_sim::{Sim, SimConfig};
//! let sim = Sim::start(SimConfig { tls: false, ..SimConfig::default() }).unwrap();
//! println!("{} {}", sim.ws_base(), sim.rest_base());
//! let book = sim.current_book("BTCUSDT").unwrap();
//! assert!(book.bids[0].price < book.asks[0].price);
//! ```

#![warn(missing_docs)]

pub mod book;
mod cli;
mod control;
pub mod convert;
pub mod decimal;
mod event;
mod faults;
mod http;
mod hub;
mod io;
mod limits;
mod market;
mod replay;
mod rest;
pub mod rng;
pub mod sbe;
mod server;
pub mod symbols;
mod synth;
mod tls;
mod ws;

use std::io as stdio;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use book::{Book, Level};
pub use cli::{run_args, run_args_with, run_cli, run_cli_with, usage_error_line, SimArgs};
pub use faults::{CounterSnapshot, FaultPlan, Inject, RestReject};
pub use market::Pacing;
pub use symbols::{SymbolSpec, SymbolStatus};

use book::History;
use event::StreamRegistry;
use faults::{ConnFaults, FaultState, OneShot};
use hub::{Hub, SymbolBook};
use limits::{BanRule, RestLimits};
use market::{Source, SynthSource};
use rest::RestState;
use server::Server;
use synth::{Synth, SynthStreams};
use ws::ConnConfig;

/// Which Binance market the simulator plays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Venue {
    /// Binance spot (`stream.binance.com`, `/api/v3`).
    #[default]
    Spot,
    /// Binance USDⓈ-M futures (`fstream.binance.com`, `/fapi/v1`): ids that skip with `pu`,
    /// `T` on depth, trade and bookTicker, contract precisions, `/public` and `/market` path
    /// tiers, futures REST weights and 2,400 a minute, and futures' connection law (ping every
    /// 3 minutes, 10 minutes for the pong, 10 incoming messages a second).
    UsdM,
}

/// Where the market comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketSource {
    /// Seeded synthetic markets, one per symbol (any case; "btcusdt").
    Synthetic {
        /// Symbols to run.
        symbols: Vec<String>,
        /// Seed: the same seed gives the same market.
        seed: u64,
    },
    /// Replay of recordings: files (`<recv ns> <frame>` lines, gzip or plain) or directories
    /// (tickfeed captures, walked recursively), merged by receive time.
    Replay {
        /// Files or directories.
        paths: Vec<PathBuf>,
    },
}

/// Everything a simulator starts with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// TLS (wss/https) or plain (ws/http). Default TLS.
    pub tls: bool,
    /// Market source. Default: synthetic BTCUSDT, seed 1.
    pub source: MarketSource,
    /// Pacing. Default real time.
    pub pacing: Pacing,
    /// Synthetic book depth per side at start. Default 3000.
    pub levels_per_side: usize,
    /// Reference states kept per symbol for `reference_book`: at least this many recent diffs.
    /// Default 4096.
    pub history_diffs: usize,
    /// Published events retained for readers; a reader further behind is disconnected as a slow
    /// consumer (except in as-fast-as-read pacing, which waits instead). Default 16384.
    pub log_capacity: usize,
    /// Faults and Binance's connection rules.
    pub faults: FaultPlan,
    /// Extra synthetic symbols for whole-market tests: this many [`SymbolSpec::generated`]
    /// symbols (`SYN0000USDT`, `SYN0001BTC`, ...) after `source`'s own (synthetic markets only).
    /// Activity falls with the index, as on a real exchange where a few pairs carry most of the
    /// flow: `SYN0000` moves like BTCUSDT (about 40 book updates per 100 ms), `SYN0300` about
    /// 4 a second, `SYN1999` one every 2 s; `BREAK`/`HALT` ones never move. Default 0.
    pub generated_symbols: usize,
    /// Book depth per side of each generated symbol at start (at least 100). Default 100. Each
    /// generated symbol keeps at least its last 128 states for `reference_book` (or
    /// `history_diffs`, if smaller) and few checkpoints, so 2,000 of them stay cheap.
    pub generated_levels_per_side: usize,
    /// REST weight per minute before 429 (Binance: 6000). `None`: unlimited. Default 6000.
    pub weight_limit: Option<u32>,
    /// The first REST ban (418) for a request sent within the `Retry-After` of a 429, doubling
    /// for each earlier ban of the same IP (Binance: 2 minutes). `None`: 429s never escalate.
    /// Default 120 s.
    pub rest_ban_first: Option<Duration>,
    /// The longest REST ban (Binance: 3 days). Default 259,200 s.
    pub rest_ban_max: Duration,
    /// Longest an idle connection sleeps before polling for inbound frames. Default 5 ms.
    pub poll_interval: Duration,
    /// A blocked websocket/REST write longer than this drops the client. Default 10 s.
    pub write_timeout: Duration,
    /// Play `stream-sbe.binance.com` instead of `stream.binance.com`: every websocket upgrade
    /// (same `/ws/...` and `/stream?streams=...` paths, as on Binance, where only the host
    /// differs) must carry an `X-MBX-APIKEY` header (else 401 with a JSON body) and market events
    /// go out as SBE binary frames: `<symbol>@depth` (the 100 ms diffs), `@trade`, `@bestBidAsk`
    /// (the bookTicker moments). Control replies and `serverShutdown` stay JSON text. REST is
    /// unchanged. Default false: JSON streams exactly as before.
    pub sbe: bool,
    /// Spot (default) or USDⓈ-M futures. On [`Venue::UsdM`] the ping period, pong timeout,
    /// incoming-message limit and REST weight limit left at spot's defaults become futures'
    /// (180 s, 600 s, 10 a second, 2,400 a minute); values set otherwise are kept (tests ping
    /// faster). Futures needs a synthetic market (not a replay) and JSON streams (not `sbe`).
    pub venue: Venue,
    /// A second listener playing `stream-sbe.binance.com` for the same market, while `listen`
    /// stays what `sbe` makes it (JSON by default): one simulator, one market, two endpoints
    /// (Binance tells them apart by host; on loopback a second port plays that role). Its
    /// websocket upgrades need `X-MBX-APIKEY` and send SBE exactly as with `sbe`; it serves REST
    /// too. Same TLS as `listen`. Default `None`.
    pub sbe_listen: Option<SocketAddr>,
    /// The API keys the SBE endpoints accept; any other gets 401 with Binance's -2015 ("Invalid
    /// API-key, IP, or permissions for action."). Empty (the default): any non-empty key.
    pub sbe_keys: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            tls: true,
            source: MarketSource::Synthetic { symbols: vec!["btcusdt".to_string()], seed: 1 },
            pacing: Pacing::RealTime,
            levels_per_side: 3000,
            history_diffs: 4096,
            log_capacity: 16384,
            faults: FaultPlan::default(),
            generated_symbols: 0,
            generated_levels_per_side: 100,
            weight_limit: Some(6000),
            rest_ban_first: Some(Duration::from_secs(120)),
            rest_ban_max: Duration::from_secs(3 * 24 * 3600),
            poll_interval: Duration::from_millis(5),
            write_timeout: Duration::from_secs(10),
            sbe: false,
            venue: Venue::Spot,
            sbe_listen: None,
            sbe_keys: Vec::new(),
        }
    }
}

/// Entry point.
pub struct Sim;

impl Sim {
    /// Binds, builds the market and starts serving. Returns once the port is listening.
    pub fn start(mut config: SimConfig) -> stdio::Result<SimHandle> {
        let invalid = |msg: String| stdio::Error::new(stdio::ErrorKind::InvalidInput, msg);
        let futures = config.venue == Venue::UsdM;
        if futures {
            if config.sbe || config.sbe_listen.is_some() {
                return Err(invalid("USDⓈ-M futures has no SBE stream endpoint in this simulator".into()));
            }
            if matches!(config.source, MarketSource::Replay { .. }) {
                return Err(invalid("USDⓈ-M futures needs a synthetic market, not a replay".into()));
            }
            config.faults = config.faults.for_usdm();
            if config.weight_limit == Some(6000) {
                config.weight_limit = Some(2400);
            }
        }
        let mut streams = StreamRegistry::default();
        let (books, source): (Vec<SymbolBook>, Box<dyn Source>) = match &config.source {
            MarketSource::Synthetic { symbols, seed } => {
                if symbols.is_empty() && config.generated_symbols == 0 {
                    return Err(invalid("no symbols to simulate".into()));
                }
                let mut seen = std::collections::HashSet::new();
                let mut synths = Vec::new();
                let mut books = Vec::new();
                let named = symbols.iter().map(|sym| {
                    if sym.is_empty() || !sym.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(invalid(format!("bad symbol {sym:?}: letters and digits only")));
                    }
                    let spec = SymbolSpec::for_symbol(sym);
                    Ok((if futures { spec.into_futures() } else { spec }, None))
                });
                let generated = (0..config.generated_symbols).map(|i| {
                    let spec = SymbolSpec::generated(i, *seed);
                    let spec = if futures { spec.into_futures() } else { spec };
                    let activity = if spec.status == SymbolStatus::Trading { generated_activity(i) } else { 0 };
                    Ok((spec, Some(activity)))
                });
                for item in named.chain(generated) {
                    let (spec, activity) = item?;
                    if !seen.insert(spec.symbol.clone()) {
                        continue;
                    }
                    // Generated symbols are many and small: a short history with few whole-book
                    // checkpoints keeps 2,000 of them to a modest footprint.
                    let (levels, history, every) = match activity {
                        None => (config.levels_per_side, config.history_diffs, None),
                        Some(_) => {
                            (config.generated_levels_per_side, config.history_diffs.min(GENERATED_HISTORY), Some(64))
                        }
                    };
                    let lower = spec.lower();
                    let ids = SynthStreams {
                        depth: streams.intern(&format!("{lower}@depth")),
                        depth100: streams.intern(&format!("{lower}@depth@100ms")),
                        trade: streams.intern(&format!("{lower}@trade")),
                        agg_trade: streams.intern(&format!("{lower}@aggTrade")),
                        book_ticker: streams.intern(&format!("{lower}@bookTicker")),
                        depth500: futures.then(|| streams.intern(&format!("{lower}@depth@500ms"))),
                    };
                    let mut s = Synth::new(spec.clone(), synths.len(), ids, *seed, levels);
                    if let Some(a) = activity {
                        s = s.with_activity(a);
                    }
                    let h = match every {
                        None => History::new(s.initial_book(), history),
                        Some(every) => History::with_checkpoint_every(s.initial_book(), history, every),
                    };
                    books.push(SymbolBook { spec, history: Some(h) });
                    synths.push(s);
                }
                (books, Box::new(SynthSource::new(synths)))
            }
            MarketSource::Replay { .. } if config.generated_symbols > 0 => {
                return Err(invalid("generated symbols need a synthetic market, not a replay".into()));
            }
            MarketSource::Replay { paths } => {
                let r = replay::load(paths, &mut streams, config.history_diffs).map_err(invalid)?;
                (r.books, Box::new(r.source))
            }
        };
        let symbols = books.iter().map(|b| b.spec.symbol.clone()).collect();

        let tls = if config.tls { Some(tls::generate().map_err(stdio::Error::other)?) } else { None };
        let listener = TcpListener::bind(config.listen)?;
        let addr = listener.local_addr()?;
        let sbe_listener = match config.sbe_listen {
            Some(a) => Some(TcpListener::bind(a)?),
            None => None,
        };
        let sbe_addr = match &sbe_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };

        let hub = Arc::new(Hub::new(books, streams, FaultState::new(&config.faults), config.log_capacity));
        let mut server = Server::new(
            hub.clone(),
            tls.as_ref().map(|t| t.config.clone()),
            RestState {
                limits: std::sync::Mutex::new(RestLimits::default()),
                weight_limit: config.weight_limit,
                ban: config
                    .rest_ban_first
                    .filter(|d| !d.is_zero())
                    .map(|first| BanRule { first, max: config.rest_ban_max }),
                futures,
            },
            ConnConfig {
                poll_interval: config.poll_interval.max(Duration::from_millis(1)),
                write_timeout: config.write_timeout,
                sbe: config.sbe,
                futures,
            },
        );
        server.sbe_keys = config.sbe_keys.clone();
        let server = Arc::new(server);

        let mut threads = Vec::new();
        let s = server.clone();
        threads.push(spawn("sim-accept", move || server::accept_loop(s, listener))?);
        let sbe_server = match sbe_listener {
            Some(l) => {
                let rest = RestState {
                    limits: std::sync::Mutex::new(RestLimits::default()),
                    weight_limit: config.weight_limit,
                    ban: config
                        .rest_ban_first
                        .filter(|d| !d.is_zero())
                        .map(|first| BanRule { first, max: config.rest_ban_max }),
                    futures,
                };
                let conn = ConnConfig {
                    poll_interval: config.poll_interval.max(Duration::from_millis(1)),
                    write_timeout: config.write_timeout,
                    sbe: true,
                    futures,
                };
                let mut srv = Server::new(hub.clone(), tls.as_ref().map(|t| t.config.clone()), rest, conn);
                srv.sbe_keys = config.sbe_keys.clone();
                let srv = Arc::new(srv);
                let s = srv.clone();
                threads.push(spawn("sim-accept-sbe", move || server::accept_loop(s, l))?);
                Some(srv)
            }
            None => None,
        };
        let h = hub.clone();
        let pacing = config.pacing;
        threads.push(spawn("sim-market", move || market::run(h, source, pacing))?);
        let mut timed: Vec<(Duration, OneShot)> = [
            (config.faults.close_after, OneShot::Close1001),
            (config.faults.abort_after, OneShot::Abort),
            (config.faults.shutdown_after, OneShot::ServerShutdown),
        ]
        .into_iter()
        .filter_map(|(d, f)| d.map(|d| (d, f)))
        .collect();
        if !timed.is_empty() {
            timed.sort_by_key(|(d, _)| *d);
            let h = hub.clone();
            threads.push(spawn("sim-faults", move || {
                let start = std::time::Instant::now();
                for (at, f) in timed {
                    let now = start.elapsed();
                    if at > now && !h.sleep(at - now) {
                        return;
                    }
                    h.faults.bump(f);
                    h.wake_all();
                }
            })?);
        }

        Ok(SimHandle {
            hub,
            server: Some(server),
            sbe_server,
            sbe_addr,
            addr,
            tls: config.tls,
            ca_pem: tls.as_ref().map(|t| t.ca_pem.clone()),
            ca_der: tls.as_ref().map(|t| t.ca_der.clone()),
            threads,
            symbols,
        })
    }
}

/// Recent states `reference_book` can rebuild for each generated symbol (at most): 12 s of the
/// busiest one, minutes of the quiet ones.
const GENERATED_HISTORY: usize = 128;

/// Mean book updates per 100 ms step of the `index`-th generated symbol, in thousandths: a
/// Zipf-like fall from 40 (a BTCUSDT) so a few symbols carry most of the flow.
fn generated_activity(index: usize) -> u32 {
    u32::try_from(120_000 / (3 + index)).unwrap_or(0)
}

fn spawn<F: FnOnce() + Send + 'static>(name: &str, f: F) -> stdio::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_string()).spawn(f)
}

/// A running simulator. Dropping it stops every thread.
pub struct SimHandle {
    hub: Arc<Hub>,
    server: Option<Arc<Server>>,
    /// `sbe_listen`'s server and address.
    sbe_server: Option<Arc<Server>>,
    sbe_addr: Option<SocketAddr>,
    addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    ca_der: Option<Vec<u8>>,
    threads: Vec<JoinHandle<()>>,
    symbols: Vec<String>,
}

impl SimHandle {
    /// The bound address (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn host_port(&self) -> String {
        connectable(self.addr).to_string()
    }

    /// `sbe_listen`'s bound address, if one was asked for.
    pub fn sbe_addr(&self) -> Option<SocketAddr> {
        self.sbe_addr
    }

    /// `sbe_listen`'s websocket base (`wss://127.0.0.1:PORT`, or `ws://`), if one was asked for.
    pub fn sbe_ws_base(&self) -> Option<String> {
        self.sbe_addr.map(|a| format!("{}://{}", if self.tls { "wss" } else { "ws" }, connectable(a)))
    }

    /// Websocket base: `wss://127.0.0.1:PORT` (or `ws://` when plain).
    pub fn ws_base(&self) -> String {
        format!("{}://{}", if self.tls { "wss" } else { "ws" }, self.host_port())
    }

    /// REST base: `https://127.0.0.1:PORT` (or `http://`).
    pub fn rest_base(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.host_port())
    }

    /// PEM of the CA a client must trust (`None` when plain).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// DER of the same CA.
    pub fn ca_der(&self) -> Option<&[u8]> {
        self.ca_der.as_deref()
    }

    /// Uppercase symbols served.
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// Runtime fault switches.
    pub fn faults(&self) -> Faults {
        Faults { hub: self.hub.clone() }
    }

    /// Every counter, now.
    pub fn counters(&self) -> CounterSnapshot {
        self.hub.counters.snapshot()
    }

    /// Websocket connections open now.
    pub fn open_connections(&self) -> usize {
        hub::lock(&self.hub.conns).len()
    }

    /// The reference book of `symbol` (any case) exactly after the diff whose final id is
    /// `update_id` (or at the replay snapshot's id). `None` if that id is not a diff boundary,
    /// has left the bounded history, or the book is unknown.
    pub fn reference_book(&self, symbol: &str, update_id: u64) -> Option<Book> {
        self.hub.reference_book(symbol, update_id)
    }

    /// The current reference book of `symbol`, every level: what REST depth serves (untruncated).
    pub fn current_book(&self, symbol: &str) -> Option<Book> {
        self.hub.current_book(symbol, None)
    }

    /// The current reference update id of `symbol`.
    pub fn last_update_id(&self, symbol: &str) -> Option<u64> {
        self.hub.current_book(symbol, Some(0)).map(|b| b.last_update_id)
    }

    /// True once a replay has published its last event (never for a synthetic market).
    pub fn market_finished(&self) -> bool {
        self.hub.market_done.load(Ordering::Acquire)
    }

    /// Stops every thread and closes every connection. Also done on drop.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        self.hub.request_stop();
        // Wake the blocking accept() so the accept thread sees the stop flag.
        let wake = SocketAddr::new(
            match self.addr.ip() {
                IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                ip => ip,
            },
            self.addr.port(),
        );
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(a) = self.sbe_addr {
            let _ = TcpStream::connect_timeout(&connectable(a), Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        server.close_all();
        if let Some(s) = self.sbe_server.take() {
            s.close_all();
        }
    }
}

/// A bound address a client can connect to (an unspecified IP becomes loopback).
fn connectable(a: SocketAddr) -> SocketAddr {
    let ip = match a.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, a.port())
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One live websocket connection, as [`Faults::connections`] lists it: what a test needs to aim a
/// fault at one connection of a handler that holds several (shards, or A/B copies of the same
/// streams).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnInfo {
    /// The connection's id, what the per-connection faults ([`Faults::abort_connection`] & co.)
    /// take. Ids grow with each accepted TCP connection, so a newer connection has a larger id.
    pub id: u64,
    /// The stream names it is subscribed to now (`btcusdt@depth@100ms`), in subscription order:
    /// the URL's, then as SUBSCRIBE/UNSUBSCRIBE changed them.
    pub streams: Vec<String>,
    /// How late it writes what it sends on the market's behalf ([`Faults::lag_connection`]);
    /// zero when not lagged.
    pub lag: Duration,
}

/// Runtime fault switches for a running simulator. Cheap to clone. One-shot injections act on
/// every websocket connection alive at the call, within `poll_interval`; the `*_connection` and
/// `drop_next_diff_of`/`_on` variants aim the same faults at one connection or at chosen symbols.
#[derive(Clone)]
pub struct Faults {
    hub: Arc<Hub>,
}

/// Lowercase, distinct symbol names, for the per-symbol drops (symbols match in any case).
fn lower_symbols(symbols: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in symbols {
        let s = s.to_ascii_lowercase();
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Arms, on connection `c`, a skip of the next diff of each of `symbols` (lowercase) whose depth
/// stream it is subscribed to now; returns how many were armed.
fn arm_symbol_drops(c: &ConnFaults, symbols: &[String]) -> usize {
    let streams = hub::lock(&c.streams);
    let carried: Vec<String> = symbols
        .iter()
        .filter(|sym| streams.iter().any(|n| event::depth_symbol(n).is_some_and(|s| s.eq_ignore_ascii_case(sym))))
        .cloned()
        .collect();
    drop(streams);
    let n = carried.len();
    if n > 0 {
        hub::lock(&c.drop_symbols).extend(carried);
    }
    n
}

impl Faults {
    fn fire(&self, f: OneShot) {
        self.hub.faults.bump(f);
        self.hub.wake_all();
    }

    /// Fires `f` on live connection `id` only; false if there is none. `before` runs first on
    /// its entry (to store what the fault reads when it fires, such as a close delay).
    fn fire_on(&self, id: u64, f: OneShot, before: impl FnOnce(&ConnFaults)) -> bool {
        let Some(c) = self.hub.conn(id) else {
            return false;
        };
        before(&c);
        c.bump(f);
        self.hub.wake_all();
        true
    }

    /// Every live websocket connection, oldest first: its id (for the per-connection faults), the
    /// streams it is subscribed to now and its lag. A connection is listed from just before its
    /// 101 answer is written until its thread ends.
    pub fn connections(&self) -> Vec<ConnInfo> {
        let conns: Vec<(u64, Arc<ConnFaults>)> =
            hub::lock(&self.hub.conns).iter().map(|(&id, c)| (id, c.clone())).collect();
        let mut out: Vec<ConnInfo> = conns
            .into_iter()
            .map(|(id, c)| ConnInfo {
                id,
                streams: hub::lock(&c.streams).clone(),
                lag: Duration::from_micros(c.lag_us.load(Ordering::Relaxed)),
            })
            .collect();
        out.sort_by_key(|c| c.id);
        out
    }

    /// Resets (TCP RST) live websocket connection `id` only, as [`Faults::abort_connections`]
    /// does to all (`disconnects_abort`). False if no such connection is live.
    pub fn abort_connection(&self, id: u64) -> bool {
        self.fire_on(id, OneShot::Abort, |_| {})
    }

    /// Sends close 1001 (going away) to live websocket connection `id` only
    /// (`disconnects_close_1001`). False if no such connection is live.
    pub fn close_connection(&self, id: u64) -> bool {
        self.fire_on(id, OneShot::Close1001, |_| {})
    }

    /// Sends the `serverShutdown` event to live websocket connection `id` only and closes it
    /// (1001) `close_after` later, as [`Faults::server_shutdown_then_close`] does to all
    /// (`server_shutdowns_sent`, `disconnects_server_shutdown`); `Duration::ZERO` closes at once.
    /// The delay is this connection's own and leaves the global one alone. False if no such
    /// connection is live.
    pub fn server_shutdown_connection(&self, id: u64, close_after: Duration) -> bool {
        let ms = u64::try_from(close_after.as_millis()).unwrap_or(u64::MAX);
        // Stored before the bump (both SeqCst): the connection that sees the new generation reads
        // this delay, not an older one.
        self.fire_on(id, OneShot::ServerShutdown, |c| c.shutdown_close_after_ms.store(ms, Ordering::SeqCst))
    }

    /// Lags live websocket connection `id` only, as [`Faults::lag_open_connections`] lags all:
    /// from now on it writes what it sends on the market's behalf `lag` late, in order, with `E`
    /// stamped at the original time; `Duration::ZERO` removes the lag. False if no such
    /// connection is live.
    pub fn lag_connection(&self, id: u64, lag: Duration) -> bool {
        let Some(c) = self.hub.conn(id) else {
            return false;
        };
        c.lag_us.store(faults::us(Some(lag)), Ordering::Relaxed);
        self.hub.wake_all();
        true
    }

    /// Writes `frame` on live websocket connection `id` only (see [`Faults::inject`]). False if
    /// no such connection is live.
    pub fn inject_connection(&self, id: u64, frame: Inject) -> bool {
        let Some(c) = self.hub.conn(id) else {
            return false;
        };
        hub::lock(&c.inbox).push(frame);
        self.hub.wake_all();
        true
    }

    /// A gap on chosen symbols: every live connection subscribed to the depth stream of one of
    /// `symbols` (any case; `@depth` or `@depth@100ms`) skips that symbol's next diff on that
    /// stream, and no other symbol's, so the client sees `U > previous u + 1` for that symbol
    /// only. Acted on at the connection's next wake-up, behind its lag like every one-shot fault;
    /// each skipped diff counts in `gaps_injected`, and arming a symbol twice before the
    /// connection acts skips two of its diffs. Returns how many (connection, symbol) drops were
    /// armed: 0 when no live connection carries any of them.
    pub fn drop_next_diff_of(&self, symbols: &[&str]) -> usize {
        let symbols = lower_symbols(symbols);
        let conns: Vec<Arc<ConnFaults>> = hub::lock(&self.hub.conns).values().cloned().collect();
        let n = conns.iter().map(|c| arm_symbol_drops(c, &symbols)).sum();
        if n > 0 {
            self.hub.wake_all();
        }
        n
    }

    /// [`Faults::drop_next_diff_of`] on live connection `id` only: with A/B connections carrying
    /// the same streams, one copy has the gap and the other does not. Returns how many of
    /// `symbols` were armed (those whose depth stream the connection carries; 0 if it is not
    /// live).
    pub fn drop_next_diff_on(&self, id: u64, symbols: &[&str]) -> usize {
        let Some(c) = self.hub.conn(id) else {
            return 0;
        };
        let n = arm_symbol_drops(&c, &lower_symbols(symbols));
        if n > 0 {
            self.hub.wake_all();
        }
        n
    }

    /// Each live connection skips its next depth diff: the client sees `U > prev u + 1`.
    pub fn drop_next_diff(&self) {
        self.fire(OneShot::DropDiff);
    }

    /// Resets (TCP RST) every live websocket connection.
    pub fn abort_connections(&self) {
        self.fire(OneShot::Abort);
    }

    /// Sends close 1001 (going away) to every live websocket connection.
    pub fn close_connections(&self) {
        self.fire(OneShot::Close1001);
    }

    /// Sends the `serverShutdown` event, then close 1001, to every live websocket connection.
    pub fn server_shutdown(&self) {
        self.server_shutdown_then_close(Duration::ZERO);
    }

    /// Sends the `serverShutdown` event to every live websocket connection now and closes each
    /// (1001) `close_after` later; market data keeps flowing meanwhile, which is the window a
    /// handler has to move to a new connection. The plan's `shutdown_after` uses the delay of the
    /// latest call (none by default).
    pub fn server_shutdown_then_close(&self, close_after: Duration) {
        let ms = u64::try_from(close_after.as_millis()).unwrap_or(u64::MAX);
        self.hub.faults.shutdown_close_after_ms.store(ms, Ordering::SeqCst);
        self.fire(OneShot::ServerShutdown);
    }

    /// From now on, every connection open now writes what it sends on the market's behalf
    /// (market messages, one-shot faults, injected frames, control replies) `lag` after it would
    /// have, in order, with `E` still stamped at the original time: a slow network path, so one
    /// connection can be behind another. `Duration::ZERO` removes the lag (what is already held
    /// back still goes out in order). Connections opened later are not affected. Returns how many
    /// connections were lagged.
    pub fn lag_open_connections(&self, lag: Duration) -> usize {
        let us = faults::us(Some(lag));
        let conns = hub::lock(&self.hub.conns);
        for c in conns.values() {
            c.lag_us.store(us, Ordering::Relaxed);
        }
        let n = conns.len();
        drop(conns);
        self.hub.wake_all();
        n
    }

    /// Connections opened from now on are lagged by `lag` for their whole life (see
    /// [`Faults::lag_open_connections`]); `Duration::ZERO`: new connections are not lagged.
    pub fn lag_new_connections(&self, lag: Duration) {
        self.hub.faults.new_conn_lag_us.store(faults::us(Some(lag)), Ordering::Relaxed);
    }

    /// Stops the market (`true`) or lets it go on (`false`). While paused nothing is published:
    /// connections stay open and silent (pings aside), REST serves the book as it stands, and the
    /// pacing clock stops too, so the market resumes at its normal pace rather than in a burst.
    pub fn set_market_paused(&self, paused: bool) {
        self.hub.faults.paused.store(paused, Ordering::Release);
        self.hub.wake_sleepers();
    }

    /// Writes `frame` on every websocket connection open now (within `poll_interval`, behind any
    /// lag). Returns how many connections it was queued to; `frames_injected` counts the writes.
    pub fn inject(&self, frame: Inject) -> usize {
        let conns = hub::lock(&self.hub.conns);
        for c in conns.values() {
            hub::lock(&c.inbox).push(frame.clone());
        }
        let n = conns.len();
        drop(conns);
        self.hub.wake_all();
        n
    }

    /// Sends one malformed JSON text message to every live websocket connection.
    pub fn send_malformed(&self) {
        self.fire(OneShot::Malformed);
    }

    /// Sends one message of a stream nobody subscribed (`<sym>@kline_1m`).
    pub fn send_unknown_stream(&self) {
        self.fire(OneShot::UnknownStream);
    }

    /// Sends one binary frame.
    pub fn send_binary(&self) {
        self.fire(OneShot::Binary);
    }

    /// Splits every text message into `frames` frames (`None`/1: off).
    pub fn set_fragment(&self, frames: Option<usize>) {
        self.hub.faults.fragment.store(frames.unwrap_or(0) as u64, Ordering::Relaxed);
        self.hub.wake_all();
    }

    /// Pings every `interval` (`None`: off) and disconnects when no matching pong arrives within
    /// `pong_timeout`.
    pub fn set_ping(&self, interval: Option<Duration>, pong_timeout: Duration) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        self.hub.faults.pong_timeout_ms.store(ms(pong_timeout), Ordering::Relaxed);
        self.hub.faults.ping_interval_ms.store(interval.map_or(0, ms), Ordering::Relaxed);
        self.hub.wake_all();
    }

    /// Disconnects websockets older than `age` (the 24-hour rule, shortened). `None`: never.
    pub fn set_max_connection_age(&self, age: Option<Duration>) {
        let v = age.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
        self.hub.faults.max_age_ms.store(v, Ordering::Relaxed);
        self.hub.wake_all();
    }

    /// Closes connections that send more than `n` frames (text, binary, ping, pong) within any
    /// one second (Binance: 5, the default). `None`: no limit.
    pub fn set_max_incoming_per_sec(&self, n: Option<u32>) {
        self.hub.faults.max_incoming.store(u64::from(n.unwrap_or(0)), Ordering::Relaxed);
    }

    /// Refuses upgrades and SUBSCRIBEs that would take a connection past `n` streams (Binance:
    /// 1024, the default). Connections already past it keep their streams. `None`: no limit.
    pub fn set_max_streams_per_connection(&self, n: Option<usize>) {
        self.hub.faults.max_streams.store(n.unwrap_or(0) as u64, Ordering::Relaxed);
    }

    /// Answers 429 to websocket upgrade attempts past `n` within the sliding `window` from one IP
    /// (Binance: 300 per 5 minutes, the default). Attempts already made still count. `None`: no
    /// limit.
    pub fn set_connect_attempt_limit(&self, n: Option<u32>, window: Duration) {
        let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        self.hub.faults.connect_window_ms.store(ms, Ordering::Relaxed);
        self.hub.faults.connect_limit.store(u64::from(n.unwrap_or(0)), Ordering::Relaxed);
    }

    /// Drops one of every `n` depth diffs on each connection (`None`: off).
    pub fn set_drop_diff_every(&self, n: Option<u64>) {
        self.hub.faults.drop_every.store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// A malformed message after every `n` market messages (`None`: off).
    pub fn set_malformed_every(&self, n: Option<u64>) {
        self.hub.faults.malformed_every.store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// An unknown-stream message after every `n` market messages (`None`: off).
    pub fn set_unknown_stream_every(&self, n: Option<u64>) {
        self.hub.faults.unknown_every.store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// A binary frame after every `n` market messages (`None`: off).
    pub fn set_binary_every(&self, n: Option<u64>) {
        self.hub.faults.binary_every.store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// Answers the next `count` REST requests with 429 or 418 and `Retry-After: retry_after_secs`.
    pub fn reject_rest(&self, kind: RestReject, count: u32, retry_after_secs: u32) {
        let mut f = hub::lock(&self.hub.faults.rest);
        f.retry_after_secs = retry_after_secs;
        match kind {
            RestReject::TooManyRequests => f.reject_429 = count,
            RestReject::Banned => f.reject_418 = count,
        }
    }

    /// Delays every REST answer by `delay` (`None`: off). The depth snapshot is taken when the
    /// request arrives, so a slow answer is also a stale one, as on a loaded exchange.
    pub fn set_rest_delay(&self, delay: Option<Duration>) {
        hub::lock(&self.hub.faults.rest).delay = delay;
    }
}
