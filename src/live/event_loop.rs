//! The event loop itself: one thread, one mio poller, the active connection and (during a
//! make-before-break switch) a standby, the REST worker's channel, and the timers. See the
//! [module documentation](super) for what it decides and how a switch works.

use super::first_seen::FirstSeen;
use super::held::Held;
use super::report::LinkReport;
use super::supervisor::BOOKS_RESYNC;
use super::supervisor::{Action, ConnId, Loss, Role, Supervisor, SupervisorConfig, ATTEMPTS_PER_WINDOW};
use super::{pin, EndReason, LiveConfig, LiveError, LiveReport, RecordSetupError};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use super::exchange;
use crate::binance::rest::{
    venue_depth_path, RestClient, RestGate, SnapshotError, SnapshotWorker, WorkerConfig, WorkerEvent,
};
use crate::binance::schedule::Priority;
use crate::binance::stream_path;
use crate::binance::url::venue_stream_path;
use crate::binance::StreamKind;
use crate::book::SnapshotOutcome;
use crate::capture::{Recorder, RecorderConfig};
use crate::metrics::{ConnectionMetrics, MetricsServer};
use crate::net::clock::WallClock;
use crate::net::conn::{io_text, Conn, ConnError, ConnEvent, ConnSpec, Phase, StageNs};
use crate::net::tsc::StageClock;
use crate::notice::{Notice, NoticeLog, Sym};
use crate::output::Stage;
use crate::pipeline::{Admit, FrameOutcome, Pipeline, Sequence, Wire};
use crate::publish::Publisher;
use crate::wire::tap::{Tap, TapConfig};
use crate::ws::WsError;

const WAKE: Token = Token(usize::MAX);
/// Longest blocking poll with `--no-busy-poll` when no deadline is nearer: how soon a signal that
/// another thread received, or a recorder buffer a second old, is noticed.
const MAX_BLOCK: Duration = Duration::from_millis(100);
/// How often `tob` sums many symbols up in one line.
const SUMMARY_EVERY: Duration = Duration::from_secs(1);
/// The longest lag behind the first copy recorded exactly (longer ones count as this).
const LAG_MAX_US: u64 = 60_000_000;
/// With redundancy: most bytes one lane holds back waiting for another (then they are processed,
/// gaps and all): a connection far ahead of a stalled one cannot grow the process.
pub(crate) const MAX_AHEAD_BYTES: usize = 64 << 20;
/// How often the receive clock is recalibrated against the wall clock.
const RECALIBRATE: Duration = Duration::from_secs(60);

/// A websocket upgrade refused with 429 (too many requests) or 418 (IP banned) without a usable
/// `Retry-After` is retried no sooner than this: hammering a rate limit is what turns a 429 into
/// a ban.
const WS_RATE_LIMITED_RETRY: Duration = Duration::from_secs(30);

/// The least wait before reconnecting after `err`: a 429/418 refusal's `Retry-After` (Binance's
/// wait to avoid a ban, or until it ends), else [`WS_RATE_LIMITED_RETRY`].
fn rate_limit_floor(err: &ConnError) -> Duration {
    match err {
        ConnError::Handshake(WsError::HandshakeRefused(r)) if r.status == 429 || r.status == 418 => {
            // Capped like REST's (3 days, Binance's longest ban): a peer's huge value can neither
            // overflow a deadline nor park the connection for ever.
            r.retry_after
                .map_or(WS_RATE_LIMITED_RETRY, |s| Duration::from_secs(s).min(crate::binance::rest::MAX_RETRY_AFTER))
        }
        _ => Duration::ZERO,
    }
}

/// Applies exchangeInfo before the loop starts: the answer [`super::resolve`] left in `cfg`, or
/// else (an unresolved explicit list) one request for every symbol now. An unknown symbol is a
/// configuration error; a network failure is retried (with backoff) until it works, `stop` or the
/// deadline. Leaves in `gate` what was spent and the budget planned. Returns false when stopped
/// first.
fn load_exchange_info(
    cfg: &LiveConfig,
    client: &RestClient,
    gate: &mut RestGate,
    p: &mut Pipeline,
    log: &mut NoticeLog,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<bool, LiveError> {
    let fetched;
    let resolved = match &cfg.resolved {
        Some(r) => r.as_ref(),
        None => match exchange::fetch(cfg, client, gate, Some(&cfg.symbols), log, stop, deadline)? {
            Some(r) => {
                fetched = r;
                &fetched
            }
            None => return Ok(false),
        },
    };
    *gate = resolved.gate.clone();
    resolved.apply(cfg, p, log);
    Ok(true)
}

/// A shard's connections are named A, B, ... in the log and `--stats`.
fn leg_letter(leg: usize) -> char {
    char::from(b'A' + (leg % 26) as u8)
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 32)
}

/// Runs the live handler until a stop condition: `stop` set (SIGINT/SIGTERM), `--duration`,
/// `--max-events`. Output goes to `out`, flushed once per socket read; every notice (the
/// pipeline's, the recorder's, the REST worker's and the loop's own) goes through `log`.
pub fn run<W: Write>(
    cfg: &LiveConfig,
    p: &mut Pipeline,
    out: &mut W,
    mut log: NoticeLog,
    stop: &AtomicBool,
) -> Result<LiveReport, LiveError> {
    let started = Instant::now();
    let deadline = cfg.duration.map(|d| started + d);
    let client = RestClient::new(&cfg.rest, &cfg.tls, cfg.rest_timeout).with_venue(cfg.venue);
    let mut gate = RestGate::new(cfg.weight_per_minute);
    let mut report = LiveReport::default();
    let rec = match &cfg.record {
        Some(dir) => {
            // The take folders are created now: an unwritable --record DIR is a configuration
            // error before any connection, not a surprise later.
            let now_ns = WallClock::new().ns(Instant::now());
            let syms: Vec<&str> = cfg.symbols.iter().map(String::as_str).collect();
            let rcfg = RecorderConfig { compress: cfg.record_compress, ..RecorderConfig::new(dir) };
            let record_err = |error| LiveError::Record { dir: dir.clone(), error };
            let mut r = Recorder::new(rcfg, &syms, now_ns).map_err(|e| record_err(RecordSetupError::Config(e)))?;
            r.prepare(now_ns).map_err(|e| record_err(RecordSetupError::Io(e)))?;
            let dirs: Vec<String> =
                (0..syms.len()).filter_map(|i| r.take_dir(i)).map(|d| d.display().to_string()).collect();
            log.emit(&Notice::Link(format!("recording to {}", dirs.join(", "))), Instant::now());
            Some(r)
        }
        None => None,
    };
    // The fan-out and the metrics first: a bad --publish or --metrics is told before any
    // connection (their helper threads start before the pinning, too).
    let publisher = match &cfg.publish {
        Some(pc) => {
            let mut pc = pc.clone();
            pc.venue = cfg.venue.as_str();
            let pb = Publisher::open(&pc).map_err(LiveError::Fanout)?;
            let venue = u8::from(cfg.venue == crate::venue::Venue::UsdM);
            p.set_tap(Some(Tap::new(TapConfig { venue, ..TapConfig::default() }, 1 << 20)));
            Some(pb)
        }
        None => None,
    };
    let metrics = match &cfg.metrics {
        Some(addr) => {
            let m = MetricsServer::start(addr).map_err(LiveError::Fanout)?;
            log.emit(&Notice::Link(format!("metrics at http://{}/metrics", m.addr())), Instant::now());
            Some(m)
        }
        None => None,
    };
    if !load_exchange_info(cfg, &client, &mut gate, p, &mut log, stop, deadline)? {
        report.end = if stop.load(Ordering::Relaxed) { EndReason::Signal } else { EndReason::Duration };
        return Ok(report);
    }
    let local = |what| move |error| LiveError::Local { what, error };
    let poll = Poll::new().map_err(local("create the poller"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE).map_err(local("create the poller's waker"))?);
    let w = waker.clone();
    let worker = SnapshotWorker::spawn(
        client,
        gate,
        WorkerConfig { symbols: cfg.symbols.clone(), limit: cfg.depth_limit, workers: cfg.rest_workers },
        Box::new(move || {
            let _ = w.wake();
        }),
    )
    .map_err(local("start the REST thread"))?;
    // Pinned after the helper thread is spawned, so it does not inherit the core.
    if let Some(core) = cfg.core {
        pin(core).map_err(LiveError::Core)?;
    }
    // Calibrated once, before the loop starts (5 ms): the stages' ticks become ns by it.
    let stage_clock = cfg.stage_times.then(|| StageClock::calibrate(Duration::from_millis(5)));
    p.set_stage_clock(stage_clock);
    let n = p.symbols().len();
    // A shard is a set of symbols and the streams of theirs it carries: on spot every stream;
    // on USDⓈ-M futures one path tier's (depth, trade, bookTicker on /public; aggTrade on
    // /market), so a symbol with streams of both tiers has two shards, one connection each. With
    // --feed sbe the SBE connections carry every stream but aggTrade, which comes from JSON
    // connections alongside (shards of their own, after the SBE ones; `--feed sbe --streams
    // aggTrade` leaves the SBE connections nothing to carry, and none is opened).
    let plan: Vec<PlannedShard> = match &cfg.sbe {
        None => tier_plan(cfg, shard_plan(n, cfg.streams.len(), cfg.streams_per_conn))
            .into_iter()
            .map(|(g, tier, kinds)| (g, tier, kinds, false))
            .collect(),
        Some(s) => {
            let main: Vec<StreamKind> = cfg.streams.iter().copied().filter(|&k| k != StreamKind::AggTrade).collect();
            let per_symbol = main.len() + usize::from(s.depth20);
            let mut plan = Vec::new();
            if per_symbol > 0 {
                for g in shard_plan(n, per_symbol, cfg.streams_per_conn) {
                    plan.push((g, None, main.clone(), false));
                }
            }
            if cfg.streams.contains(&StreamKind::AggTrade) {
                for g in shard_plan(n, 1, cfg.streams_per_conn) {
                    plan.push((g, None, vec![StreamKind::AggTrade], true));
                }
            }
            plan
        }
    };
    let legs = cfg.redundancy.max(1);
    let lanes = plan.len() * legs;
    let mut shards: Vec<Shard> = Vec::with_capacity(lanes);
    for (g, (symbols, tier, kinds, agg_only)) in plan.iter().enumerate() {
        let names: Vec<String> = symbols.iter().map(|&i| cfg.symbols[i].clone()).collect();
        for leg in 0..legs {
            // Lane k is connection `leg` of shard `g`.
            let k = g * legs + leg;
            let (ws, path, api_key, streams) = match (&cfg.sbe, *agg_only) {
                (Some(s), false) => {
                    let path = super::sbe::sbe_stream_path(&names, &cfg.streams, s.depth20);
                    (cfg.ws_for(leg).clone(), path, Some(s.api_key.clone()), kinds.len() + usize::from(s.depth20))
                }
                (Some(s), true) => (s.json_ws.clone(), stream_path(&names, &[StreamKind::AggTrade]), None, 1),
                (None, _) => {
                    let path = venue_stream_path(cfg.venue, *tier, &names, kinds);
                    (cfg.ws_for(leg).clone(), path, None, kinds.len())
                }
            };
            let spec = ConnSpec {
                host: ws.host.clone(),
                port: ws.port,
                tls: ws.tls.then(|| cfg.tls.clone()),
                path,
                limits: cfg.limits,
                stage_clock,
                api_key,
            };
            let sup_cfg = SupervisorConfig {
                connect_timeout: cfg.connect_timeout,
                stale: cfg.stale,
                // Staggered over every lane: neither two shards nor two legs of one are cut at once.
                max_conn_age: staggered_age(cfg.max_conn_age, k, lanes),
                switch_timeout: cfg.switch_timeout,
                backoff_min: cfg.backoff_min,
                backoff_max: cfg.backoff_max,
                // Binance's law is per IP: every connection slot keeps to its share of it.
                attempts_per_window: (ATTEMPTS_PER_WINDOW / lanes).max(1),
            };
            let sup = Supervisor::new(sup_cfg, started, seed() ^ (k as u64) << 48);
            let mut ahead = Held::default();
            if legs > 1 {
                ahead.reset(n);
            }
            shards.push(Shard {
                sup,
                spec,
                ws,
                group: g,
                leg,
                symbols: symbols.clone(),
                held: Held::default(),
                ahead,
                spare: Held::default(),
                link: Link::new(),
                streams: names.len() * streams,
                kinds: kinds.clone(),
                agg_only: *agg_only,
            });
        }
    }
    let mut lp = Loop {
        cfg,
        poll,
        waker,
        worker,
        in_flight: vec![false; n],
        shards,
        conns: Vec::with_capacity(2 * lanes),
        legs,
        groups: plan.len(),
        pending: Vec::new(),
        feed: Feed {
            p,
            out,
            stdout_ok: true,
            clock: WallClock::new(),
            max_events: cfg.max_events,
            stop: false,
            log,
            batch_frames: 0,
            rec,
            publisher,
            binary: 0,
            sbe: cfg.sbe.is_some(),
            // 8,192 recent events per shard: at 50 ms behind, copies are matched up to some
            // 160,000 events a second per shard.
            first_seen: FirstSeen::new(if legs > 1 { (8192 * plan.len()).min(1 << 20) } else { 0 }),
        },
        report,
        deadline,
        metrics,
        fanout_due: started,
        metrics_due: started,
        summary: (cfg.print.is_none() && n > LiveConfig::PRINT_ALL_UP_TO).then_some((started + SUMMARY_EVERY, 0)),
        fatal: None,
    };
    lp.run(stop)?;
    Ok(lp.finish())
}

/// One shard to open: its symbols, its futures path tier (if any), the kinds it carries, and
/// whether it is `--feed sbe`'s JSON aggTrade connection.
type PlannedShard = (Vec<usize>, Option<crate::venue::Tier>, Vec<StreamKind>, bool);

/// The shards of `plan` with the streams each carries: every `--streams` kind on spot; on
/// USDⓈ-M futures each group once per path tier it has streams on.
pub(crate) fn tier_plan(
    cfg: &LiveConfig,
    plan: Vec<Vec<usize>>,
) -> Vec<(Vec<usize>, Option<crate::venue::Tier>, Vec<StreamKind>)> {
    use crate::venue::{Tier, Venue};
    match cfg.venue {
        Venue::Spot => plan.into_iter().map(|g| (g, None, cfg.streams.clone())).collect(),
        Venue::UsdM => {
            let mut out = Vec::new();
            for g in plan {
                for tier in [Tier::Public, Tier::Market] {
                    let kinds: Vec<StreamKind> = cfg.streams.iter().copied().filter(|&k| Tier::of(k) == tier).collect();
                    if !kinds.is_empty() {
                        out.push((g.clone(), Some(tier), kinds));
                    }
                }
            }
            out
        }
    }
}

/// Splits `symbols` symbols of `per_symbol` streams each into shards of at most `per_conn` streams
/// (a symbol's streams always share a connection), in symbol order.
pub(crate) fn shard_plan(symbols: usize, per_symbol: usize, per_conn: usize) -> Vec<Vec<usize>> {
    let per_shard = (per_conn / per_symbol.max(1)).max(1);
    let all: Vec<usize> = (0..symbols).collect();
    all.chunks(per_shard).map(<[usize]>::to_vec).collect()
}

/// Shard `k` of `n` is replaced this old: the 24-hour cuts of different shards are spread over up
/// to an hour before `max_age` (never more than half of it), so they never coincide.
pub(crate) fn staggered_age(max_age: Duration, k: usize, n: usize) -> Duration {
    if n <= 1 {
        return max_age;
    }
    let spread = (max_age / 2).min(Duration::from_secs(3600));
    max_age - spread / n as u32 * k as u32
}

/// One connection slot of a shard (a "lane"): a slice of the symbols whose streams share a
/// connection (two during a switch), with its own supervisor and its own held frames. Without
/// redundancy a shard has one lane; with `--redundancy N`, N lanes carry the same streams.
struct Shard {
    sup: Supervisor,
    spec: ConnSpec,
    /// The websocket base it connects to.
    ws: crate::binance::url::BaseUrl,
    /// The shard it is a connection of, and which of its connections (0 = A, 1 = B, ...).
    group: usize,
    leg: usize,
    /// Pipeline indices of its symbols.
    symbols: Vec<usize>,
    /// A standby's frames held during a make-before-break switch.
    held: Held,
    /// With redundancy: frames of the active connection that ran ahead of their stream, waiting
    /// for another lane of the shard to deliver what is missing (`spare` is the buffer a release
    /// sweep refills, kept for its capacity).
    ahead: Held,
    spare: Held,
    /// What this lane's connections delivered, for `--stats`.
    link: Link,
    /// Streams it carries.
    streams: usize,
    /// The kinds of its symbols' streams it carries (every `--streams` kind, but on futures
    /// one path tier's).
    kinds: Vec<StreamKind>,
    /// `--feed sbe`: a JSON connection carrying only aggTrade alongside the SBE ones. Losing it
    /// does not touch the books (the SBE connections carry them), only the aggTrade ids.
    agg_only: bool,
}

/// What one lane's connections delivered: text frames, events taken first, copies dropped, frames
/// held back, and how far behind the first copy its copies arrived.
struct Link {
    frames: u64,
    first: u64,
    duplicates: u64,
    held: u64,
    lag_us: hdrhistogram::Histogram<u64>,
}

impl Link {
    fn new() -> Link {
        // Two significant figures up to a minute (longer is recorded as a minute): about 50 kB,
        // allocated once, so recording never allocates. The bounds are constants hdrhistogram
        // accepts, so this cannot fail.
        let lag_us = hdrhistogram::Histogram::new_with_bounds(1, LAG_MAX_US, 2).expect("valid histogram bounds");
        Link { frames: 0, first: 0, duplicates: 0, held: 0, lag_us }
    }

    /// Counts what the pipeline made of one of this lane's frames; `first_seen` (with redundancy)
    /// remembers when the first copy of each recent event arrived.
    #[inline]
    fn count(&mut self, o: &FrameOutcome, recv_ns: i64, first_seen: &mut FirstSeen) {
        match *o {
            FrameOutcome::Market { symbol, kind, ids } => {
                self.first += 1;
                first_seen.insert(symbol, kind, ids.last, recv_ns);
            }
            FrameOutcome::Duplicate { symbol, kind, ids } => {
                self.duplicates += 1;
                // Known while the table still holds the first copy (a copy of an event long
                // overwritten is not measured). A diff's copy is matched by its last id.
                if let Some(at) = first_seen.get(symbol, kind, ids.last) {
                    self.lag_us.saturating_record(u64::try_from((recv_ns - at) / 1000).unwrap_or(0));
                }
            }
            _ => {}
        }
    }
}

/// Shard and connection id in one mio token.
fn token(shard: usize, id: ConnId) -> Token {
    Token((shard << 32) | (id as usize & 0xffff_ffff))
}

/// A connection waiting for its DNS answer.
struct Pending {
    shard: usize,
    id: ConnId,
    rx: Receiver<Result<Vec<SocketAddr>, DnsError>>,
}

/// A DNS lookup of the websocket host that gave no address.
#[derive(Debug)]
struct DnsError {
    host: String,
    /// The resolver's error; `None` when it answered with no address.
    reason: Option<io::Error>,
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            Some(e) => write!(f, "DNS lookup of {} failed: {}", self.host, io_text(e)),
            None => write!(f, "DNS lookup of {}: no address", self.host),
        }
    }
}

/// Everything the frame sink touches (split from the connections so both can be borrowed).
struct Feed<'a, W: Write> {
    p: &'a mut Pipeline,
    out: &'a mut W,
    stdout_ok: bool,
    clock: WallClock,
    max_events: Option<u64>,
    stop: bool,
    log: NoticeLog,
    batch_frames: u32,
    rec: Option<Recorder>,
    /// `--publish`: where the tap's records go after each batch.
    publisher: Option<Publisher>,
    binary: u64,
    /// `--feed sbe`: binary frames are SBE market data (else each is a counted bad message).
    sbe: bool,
    /// With redundancy: when the first copy of each recent event arrived, to measure how far
    /// behind it the other copies arrive. Empty without redundancy.
    first_seen: FirstSeen,
}

/// Which frames of a connection may be processed at once.
enum Admission<'h> {
    /// Every frame (the only connection of its shard).
    All,
    /// A standby during a make-before-break switch: frames ahead of the active connection wait
    /// in its shard's held frames.
    Standby(&'h mut Held),
    /// One of a shard's redundant connections: a frame ahead of its stream waits in the lane's
    /// `ahead` frames while `hold` (another lane is up and may deliver what is missing).
    Redundant { ahead: &'h mut Held, hold: bool },
}

/// Into the capture (if any) when `frame` was a market event processed now.
#[inline]
fn record(rec: &mut Option<Recorder>, recv_ns: i64, wire: Wire, frame: &[u8], o: &FrameOutcome) {
    let Some(r) = rec else { return };
    let (symbol, kind) = match *o {
        FrameOutcome::Market { symbol, kind, .. } => (symbol, kind),
        // depth20 goes with the book's lines (orderbook/).
        FrameOutcome::Depth20 { symbol, duplicate: false, .. } => (symbol, StreamKind::Depth),
        _ => return,
    };
    match wire {
        Wire::Text => r.record(recv_ns, kind, symbol, frame),
        Wire::Binary => r.record_binary(recv_ns, kind, symbol, frame),
    }
}

/// What one `on_readable` call reported, beyond frames.
#[derive(Default)]
struct Seen {
    opened: bool,
    last_text: Option<Instant>,
    market: bool,
    /// A market event was processed (not a duplicate, not held).
    fresh: bool,
    shutdown: bool,
}

impl<W: Write> Feed<'_, W> {
    /// One event of a connection of a lane whose counters are `link`.
    fn on_event(&mut self, ev: ConnEvent<'_>, admission: &mut Admission<'_>, link: &mut Link, seen: &mut Seen) {
        match ev {
            ConnEvent::Text(frame, t) => self.on_message(Wire::Text, frame, t, admission, link, seen),
            // SBE market data (`--feed sbe`); on a JSON connection Binance sends none.
            ConnEvent::Binary(frame, t) if self.sbe => self.on_message(Wire::Binary, frame, t, admission, link, seen),
            ConnEvent::Binary(b, _) => {
                self.binary += 1;
                self.p.stats_mut().bad_messages += 1;
                self.p.notices().push(Notice::BinaryFrame { len: b.len(), total: self.binary });
            }
            ConnEvent::Ping { answered } => {
                let s = self.p.stats_mut();
                s.pings += 1;
                if answered {
                    s.pongs += 1;
                }
            }
            ConnEvent::Opened => seen.opened = true,
            ConnEvent::BatchEnd(t, stages) => {
                if stages != StageNs::default() {
                    let s = &mut self.p.stats_mut().stages;
                    s.record(Stage::Read, stages.read);
                    if stages.tls > 0 {
                        s.record(Stage::Tls, stages.tls);
                    }
                    s.record(Stage::Ws, stages.ws);
                }
                self.flush_output();
                if let Some(r) = &mut self.rec {
                    // Writes a capture buffer only when one is due (two compares otherwise).
                    r.tick(self.clock.ns(t));
                }
                if self.batch_frames > 0 {
                    self.batch_frames = 0;
                    self.p.stats_mut().record_process_ns(t.elapsed().as_nanos() as u64);
                }
            }
        }
    }

    /// One text (JSON) or binary (SBE) message of a connection of a lane whose counters are `link`.
    #[inline]
    fn on_message(
        &mut self,
        wire: Wire,
        frame: &[u8],
        t: Instant,
        admission: &mut Admission<'_>,
        link: &mut Link,
        seen: &mut Seen,
    ) {
        {
            {
                seen.last_text = Some(t);
                if self.stop {
                    return;
                }
                if self.max_events.is_some_and(|m| self.p.stats().events >= m) {
                    self.stop = true;
                    return;
                }
                link.frames += 1;
                let recv_ns = self.clock.ns(t);
                let o = match admission {
                    Admission::All => self.p.on_message_with(recv_ns, wire, frame, &mut |_| Admit::Process),
                    // A frame of the new connection is processed now only if it does not run
                    // ahead of what the old one delivered (see the module documentation).
                    Admission::Standby(held) => {
                        let o = self.p.on_message_with(recv_ns, wire, frame, &mut |ev| held.admit(ev));
                        if let FrameOutcome::Held { .. } = o {
                            held.push_as(wire, frame, t);
                            seen.market = true;
                            return;
                        }
                        o
                    }
                    // A frame ahead of its stream waits for another connection to fill the gap.
                    Admission::Redundant { ahead, hold } => {
                        let hold = *hold && ahead.bytes.len() < MAX_AHEAD_BYTES;
                        let o = self.p.on_message_with(recv_ns, wire, frame, &mut |ev| ahead.admit_ahead(ev, hold));
                        if let FrameOutcome::Held { .. } = o {
                            ahead.push_as(wire, frame, t);
                            link.held += 1;
                            seen.market = true;
                            return;
                        }
                        o
                    }
                };
                link.count(&o, recv_ns, &mut self.first_seen);
                self.record(recv_ns, wire, frame, &o);
                match o {
                    FrameOutcome::Market { .. } => {
                        seen.market = true;
                        seen.fresh = true;
                    }
                    FrameOutcome::Duplicate { .. } | FrameOutcome::Depth20 { .. } => seen.market = true,
                    FrameOutcome::ServerShutdown => seen.shutdown = true,
                    _ => {}
                }
                self.batch_frames += 1;
            }
        }
    }

    /// Into the capture when `frame` was a market event processed now (duplicates from a second
    /// connection are not recorded twice, held frames when they are processed).
    #[inline]
    fn record(&mut self, recv_ns: i64, wire: Wire, frame: &[u8], o: &FrameOutcome) {
        record(&mut self.rec, recv_ns, wire, frame, o);
    }

    /// One frame through the pipeline and into the capture.
    fn process(&mut self, recv_ns: i64, wire: Wire, frame: &[u8]) -> FrameOutcome {
        let o = self.p.on_message_with(recv_ns, wire, frame, &mut |_| Admit::Process);
        self.record(recv_ns, wire, frame, &o);
        o
    }

    /// Writes the output buffer in one call (a failed stdout stops output for good), then the
    /// notices the batch produced.
    fn flush_output(&mut self) {
        self.publish();
        if self.p.output().pending() > 0 {
            if self.stdout_ok {
                let r = self.p.output().flush_to(self.out).and_then(|()| self.out.flush());
                if let Err(e) = r {
                    self.stdout_ok = false;
                    self.p.notices().push(Notice::StdoutFailed(io_text(&e)));
                }
            }
            self.p.output().discard();
        }
        self.tell();
    }

    /// Hands the records the batch made to the publisher (one copy into shared memory or the
    /// ring; nothing to do without `--publish`).
    #[inline]
    fn publish(&mut self) {
        let Some(pb) = self.publisher.as_mut() else { return };
        if let Some(tap) = self.p.tap_mut() {
            if !tap.pending().is_empty() {
                pb.send_counted(tap.pending(), tap.pending_records());
                tap.clear();
            }
        }
    }

    /// Writes what the pipeline and the recorder have to say (nothing to do, no clock read, when
    /// they are silent).
    fn tell(&mut self) {
        let rec = self.rec.as_mut().and_then(Recorder::poll_notice);
        if rec.is_none() && self.p.notices().is_empty() {
            return;
        }
        let now = Instant::now();
        self.log.drain(self.p.notices(), now);
        if let Some(n) = rec {
            self.log.emit(&n, now);
        }
    }
}

struct Loop<'a, W: Write> {
    cfg: &'a LiveConfig,
    poll: Poll,
    waker: Arc<Waker>,
    worker: SnapshotWorker,
    in_flight: Vec<bool>,
    /// The symbols split over connections; each shard's supervisor decides about its own.
    shards: Vec<Shard>,
    /// The open sockets, with their lane (an index into `shards`).
    conns: Vec<(usize, Conn)>,
    /// Lanes per shard (`--redundancy`), and shards: lane `k` is connection `k % legs` of shard
    /// `k / legs`.
    legs: usize,
    groups: usize,
    /// Connections waiting for their DNS answer.
    pending: Vec<Pending>,
    feed: Feed<'a, W>,
    report: LiveReport,
    deadline: Option<Instant>,
    /// Many symbols and no `--print`: when the next one-line summary is due, and the event count
    /// at the last one.
    summary: Option<(Instant, u64)>,
    /// `--metrics`: the server the figures are copied to once a second.
    metrics: Option<MetricsServer>,
    /// When the publisher is next asked whether it wants snapshots (every 50 ms).
    fanout_due: Instant,
    /// When the metrics are next copied.
    metrics_due: Instant,
    /// A failure retrying cannot mend (the SBE endpoint refused the API key): the run ends with it.
    fatal: Option<LiveError>,
}

impl<W: Write> Loop<'_, W> {
    /// The one-line summary `tob` prints each second instead of a thousand symbols' book lines.
    fn summarize(&mut self, now: Instant) {
        let Some((due, events)) = self.summary else { return };
        if now < due {
            return;
        }
        let p = &self.feed.p;
        let syms = p.symbols();
        let synced = syms.iter().filter(|s| s.book().is_synced()).count();
        let s = p.stats();
        let gaps: u64 = syms.iter().map(|s| s.book().counters().gaps).sum();
        let resyncs: u64 = syms.iter().map(|s| s.book().counters().resyncs).sum();
        let mismatches: u64 = syms.iter().map(|s| s.audit().counters().mismatches).sum();
        let q = |h: &hdrhistogram::Histogram<u64>, x: f64| if h.is_empty() { 0 } else { h.value_at_quantile(x) };
        let text = format!(
            "{} symbols: {synced} synced | {} events/s | gaps {gaps} resyncs {resyncs} mismatches {mismatches} | \
             latency_us p50 {} p99 {} (--print SYM,... for book lines)",
            syms.len(),
            s.events - events,
            q(&s.latency_us, 0.5),
            q(&s.latency_us, 0.99)
        );
        let events = s.events;
        self.feed.p.output().summary_line(&text);
        self.feed.flush_output();
        self.summary = Some((due.max(now - SUMMARY_EVERY) + SUMMARY_EVERY, events));
    }

    /// SIGUSR1: the synced books to `--dump-book` now (the run goes on), told in one line.
    fn dump_now(&mut self) {
        let Some(dir) = &self.cfg.dump_dir else {
            self.log("SIGUSR1 ignored: no --dump-book folder to write to".to_owned());
            return;
        };
        let msg = match super::dumps::write_dumps(dir, self.feed.p) {
            Ok(d) => format!(
                "SIGUSR1: {} book{} dumped to {}{}",
                d.written.len(),
                if d.written.len() == 1 { "" } else { "s" },
                dir.display(),
                if d.skipped.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} not synced: {})",
                        d.skipped.len(),
                        d.skipped.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(", ")
                    )
                }
            ),
            Err((path, e)) => format!("SIGUSR1: cannot write {}: {e}", path.display()),
        };
        self.log(msg);
    }

    /// A connection event, worded for a person, through the one notice log.
    fn log(&mut self, msg: String) {
        self.feed.log.emit(&Notice::Link(msg), Instant::now());
    }

    /// `host:port` of lane `k`'s websocket base, with the address when the host is a name.
    fn where_(&self, k: usize, addr: SocketAddr) -> String {
        let ws = &self.shards[k].ws;
        let a = ws.authority();
        if ws.bare_host().parse::<IpAddr>().is_ok() {
            a
        } else {
            format!("{a} ({addr})")
        }
    }

    /// How lane `k` is named in the log: `shard 3B: ` with redundancy, `shard 3: ` with several
    /// shards, nothing for the one connection of a run.
    fn label(&self, k: usize) -> String {
        let sh = &self.shards[k];
        let what = if sh.agg_only { "aggTrade shard" } else { "shard" };
        match (self.legs > 1, self.groups > 1) {
            (true, _) => format!("{what} {}{}: ", sh.group, leg_letter(sh.leg)),
            (false, true) => format!("{what} {}: ", sh.group),
            (false, false) => String::new(),
        }
    }

    /// Another lane of lane `k`'s shard has an active connection that is open: it may deliver
    /// what `k` misses, and carries the shard's books while `k` is down.
    fn other_up(&self, k: usize) -> bool {
        if self.legs < 2 {
            return false;
        }
        let g = self.shards[k].group;
        self.conns.iter().any(|(j, c)| {
            *j != k
                && self.shards[*j].group == g
                && c.phase() == Phase::Open
                && self.shards[*j].sup.active() == Some(c.serial)
        })
    }

    /// Processes what lane `k` held ahead that can go now: what another lane has since filled in
    /// (now next, or a duplicate), and everything held longer than `--redundancy-hold` or while no
    /// other lane is up (a real gap: the book resyncs). The rest stays held, in order.
    fn release(&mut self, k: usize, now: Instant) {
        if self.shards[k].ahead.frames.is_empty() {
            return;
        }
        let hold = self.other_up(k) && self.shards[k].ahead.bytes.len() < MAX_AHEAD_BYTES;
        let limit = self.cfg.redundancy_hold;
        let n = self.feed.p.symbols().len();
        let shard = &mut self.shards[k];
        let mut old = std::mem::take(&mut shard.ahead);
        let mut keep = std::mem::take(&mut shard.spare);
        let Feed { p, clock, first_seen, rec, .. } = &mut self.feed;
        let link = &mut shard.link;
        // A frame let go now is stamped now: it could not be used before (its latency counts the
        // wait, and the capture stays in time order).
        let now_ns = clock.ns(now);
        old.release_into(
            &mut keep,
            n,
            p,
            |_| now_ns,
            |t| hold && now.saturating_duration_since(t) < limit,
            |_, wire, frame, ns, o| {
                link.count(o, ns, first_seen);
                record(rec, ns, wire, frame, o);
            },
        );
        shard.spare = old;
        shard.ahead = keep;
        self.feed.flush_output();
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<(), LiveError> {
        let mut events = Events::with_capacity(64);
        let mut calibrated = Instant::now();
        for k in 0..self.shards.len() {
            self.apply(k, Instant::now());
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                self.report.end = EndReason::Signal;
                return Ok(());
            }
            if self.feed.stop {
                self.report.end = EndReason::MaxEvents;
                return Ok(());
            }
            if let Some(e) = self.fatal.take() {
                self.feed.flush_output();
                return Err(e);
            }
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(LiveError::Local { what: "poll", error }),
            }
            for ev in events.iter() {
                let t = ev.token();
                if t == WAKE {
                    continue;
                }
                let Some(i) = self.conns.iter().position(|(_, c)| c.token() == t) else { continue };
                let c = &mut self.conns[i].1;
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    c.set_readable();
                }
                if ev.is_writable() || ev.is_error() {
                    let was = c.phase();
                    match c.on_writable() {
                        Err(e) => self.lost(i, e, Instant::now()),
                        // Connected: the upgrade request is out; look for the answer.
                        Ok(()) if was == Phase::Connecting => c.set_readable(),
                        Ok(()) => {}
                    }
                }
            }
            let mut i = 0;
            while i < self.conns.len() {
                if self.service(i) {
                    i += 1;
                }
            }
            self.snapshots();
            if crate::net::signal::dump_requested().swap(false, Ordering::Relaxed) {
                self.dump_now();
            }
            let now = Instant::now();
            if now.duration_since(calibrated) >= RECALIBRATE {
                self.feed.clock = WallClock::new();
                calibrated = now;
            }
            if self.deadline.is_some_and(|d| now >= d) {
                self.report.end = EndReason::Duration;
                return Ok(());
            }
            self.timers(now);
        }
    }

    /// How long the poller may wait: nothing while a socket still has data or when busy-polling,
    /// else until a supervisor's next deadline, the run's end, or a short cap (a signal delivered
    /// to another thread does not interrupt the poll; the recorder flushes once a second).
    fn poll_timeout(&self) -> Duration {
        if self.cfg.busy_poll || self.conns.iter().any(|(_, c)| c.is_readable()) {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut until = now + MAX_BLOCK;
        let hold = self.cfg.redundancy_hold;
        let held = self.shards.iter().map(|s| s.ahead.oldest().map(|t| t + hold));
        for t in self.shards.iter().map(|s| s.sup.poll_timeout()).chain(held).chain([self.deadline]).flatten() {
            until = until.min(t);
        }
        until.saturating_duration_since(now)
    }

    /// Reads connection `i` if it has data pending and feeds what it delivers. False when the
    /// connection ended (it is removed, so index `i` now names the next one).
    fn service(&mut self, i: usize) -> bool {
        let (k, conn) = &self.conns[i];
        if !conn.is_readable() {
            return true;
        }
        let (k, id) = (*k, conn.serial);
        let other_up = self.other_up(k);
        let Loop { conns, feed, shards, legs, .. } = self;
        let conn = &mut conns[i].1;
        let shard = &mut shards[k];
        let mut admission = if shard.sup.role(id) == Some(Role::Standby) {
            Admission::Standby(&mut shard.held)
        } else if *legs > 1 {
            Admission::Redundant { ahead: &mut shard.ahead, hold: other_up }
        } else {
            Admission::All
        };
        let link = &mut shard.link;
        let mut seen = Seen::default();
        let r = conn.on_readable(&mut |ev| feed.on_event(ev, &mut admission, link, &mut seen));
        if let Some(t) = seen.last_text {
            shard.sup.handle_data(id, seen.market, t);
        }
        let now = Instant::now();
        if self.legs > 1 && seen.fresh {
            // What this lane delivered may fill what the shard's other lanes hold back; a lane
            // holding too much lets go of it.
            let g = self.shards[k].group;
            for j in g * self.legs..(g + 1) * self.legs {
                if j != k || self.shards[j].ahead.bytes.len() >= MAX_AHEAD_BYTES {
                    self.release(j, now);
                }
            }
        }
        if seen.opened {
            self.on_opened(i, now);
        }
        if seen.shutdown {
            self.shards[k].sup.handle_server_shutdown(id, now);
        }
        // A standby holding too much switches now (see `MAX_HELD_BYTES`).
        if r.is_ok() && self.shards[k].held.is_full() {
            let bytes = self.shards[k].held.held_bytes();
            self.shards[k].sup.handle_held_full(id, bytes);
        }
        let alive = match r {
            Ok(()) => true,
            Err(e) => {
                self.lost(i, e, now);
                false
            }
        };
        self.apply(k, now);
        alive
    }

    fn on_opened(&mut self, i: usize, now: Instant) {
        let (k, id, addr) = (self.conns[i].0, self.conns[i].1.serial, self.conns[i].1.addr());
        let scheme = if self.shards[k].ws.tls { "wss" } else { "ws" };
        let mut where_ = format!("{scheme}://{}", self.where_(k, addr));
        let shard = &self.shards[k];
        if shard.sup.role(id) == Some(Role::Active) {
            where_.push_str(&format!(
                ", {} symbols x {} streams",
                shard.symbols.len(),
                shard.streams / shard.symbols.len().max(1)
            ));
        }
        // A reconnect is any connection of a shard after its first.
        if self.shards[k].sup.counters().connections > 0 {
            self.feed.p.stats_mut().reconnects += 1;
        }
        self.shards[k].sup.handle_opened(id, &where_, now);
    }

    /// Connection `i` failed: its socket is dropped, and its shard's supervisor decides what comes
    /// next.
    fn lost(&mut self, i: usize, err: ConnError, now: Instant) {
        let (k, conn) = self.conns.remove(i);
        let (id, opened) = (conn.serial, conn.opened);
        let where_ = self.where_(k, conn.addr());
        // The SBE endpoint refusing the key (401): no retry can mend a wrong or missing key.
        if let (ConnError::Handshake(WsError::HandshakeRefused(r)), Some(_)) = (&err, &self.shards[k].spec.api_key) {
            if r.status == 401 {
                conn.abort(self.poll.registry());
                self.fatal = Some(LiveError::ApiKeyRefused {
                    endpoint: self.shards[k].ws.authority(),
                    status: r.status,
                    body: r.body.to_string(),
                });
                return;
            }
        }
        let graceful = matches!(err, ConnError::Closed { .. });
        if matches!(err, ConnError::WriteBacklog { .. }) {
            self.report.write_backlogs += 1;
        }
        if graceful {
            conn.shutdown(self.poll.registry());
        } else {
            conn.abort(self.poll.registry());
        }
        let what = match &err {
            ConnError::Connect(e) => format!("connect {where_} failed: {}", io_text(e)),
            ConnError::Tls(e) => format!("TLS with {where_} failed: {e}"),
            e if opened.is_none() => format!("websocket to {where_} failed: {e}"),
            e => format!("connection #{id} to {where_}: {e}"),
        };
        self.shards[k].sup.handle_lost(id, Loss { what, graceful, retry_floor: rate_limit_floor(&err) }, now);
        self.apply(k, now);
    }

    /// Carries out what shard `k`'s supervisor asked for.
    fn apply(&mut self, k: usize, now: Instant) {
        let mut kept = false;
        while let Some(a) = self.shards[k].sup.poll_action() {
            match a {
                Action::Open(id) => self.start_open(k, id, now),
                Action::Close { id, graceful } => {
                    self.pending.retain(|p| (p.shard, p.id) != (k, id));
                    if let Some(i) = self.conns.iter().position(|(s, c)| (*s, c.serial) == (k, id)) {
                        let (_, c) = self.conns.remove(i);
                        if graceful {
                            c.shutdown(self.poll.registry());
                        } else {
                            c.abort(self.poll.registry());
                        }
                    }
                }
                Action::Switch { to } => self.switch(k, to, now),
                Action::DropHeld => self.shards[k].held.reset(0),
                // With redundancy the books are kept while another connection of the shard is
                // up: it delivers what this one misses.
                Action::ResetBooks if self.other_up(k) => kept = true,
                // A connection that carries no depth (a futures /market one, or the JSON aggTrade
                // connection of --feed sbe): its symbols' books stay, only its streams' ids are
                // forgotten.
                Action::ResetBooks if !self.shards[k].kinds.contains(&StreamKind::Depth) => {
                    for &i in &self.shards[k].symbols {
                        for &kind in &self.shards[k].kinds {
                            self.feed.p.reset_stream(i, kind);
                        }
                    }
                }
                Action::ResetBooks => {
                    for &i in &self.shards[k].symbols {
                        self.feed.p.reset_symbol(i);
                    }
                }
                Action::Tell(text) => {
                    let text = if self.shards[k].agg_only {
                        text.replace(BOOKS_RESYNC, " (aggTrade ids reset; the books are on the SBE connections)")
                    } else if kept {
                        let other = leg_letter(1 - self.shards[k].leg.min(1));
                        text.replace(BOOKS_RESYNC, &format!(" (books kept: connection {other} of the shard is up)"))
                    } else {
                        text
                    };
                    let text = format!("{}{text}", self.label(k));
                    self.log(text);
                }
            }
        }
    }

    /// Feeds finished snapshots to the pipeline and hands the pipeline's new requests to the REST
    /// pool, whose scheduler decides when each goes: books never synced before resyncs.
    fn snapshots(&mut self) {
        let mut any = false;
        while let Some(ev) = self.worker.try_recv() {
            let r = match ev {
                WorkerEvent::Snapshot(r) => r,
                WorkerEvent::Waiting { symbol, wait, reason } => {
                    let symbol = Sym::new(self.feed.p.symbols()[symbol].symbol());
                    self.feed.log.emit(&Notice::SnapshotWait { symbol, wait, reason }, Instant::now());
                    continue;
                }
            };
            any = true;
            if let Some(f) = self.in_flight.get_mut(r.symbol) {
                *f = false;
            }
            match r.body {
                Ok(body) => {
                    if let Some(rec) = &mut self.feed.rec {
                        let line = format!(
                            "GET {}",
                            venue_depth_path(self.cfg.venue, &self.cfg.symbols[r.symbol], self.cfg.depth_limit)
                        );
                        rec.record_snapshot(r.recv_ns, r.symbol, &line, &body);
                    }
                    // An unusable body is told by the pipeline, which asks again; the scheduler
                    // backs off a symbol whose snapshots keep being unusable.
                    let usable = match self.feed.p.on_snapshot(r.symbol, r.recv_ns, &body) {
                        Ok(SnapshotOutcome::TooOld | SnapshotOutcome::Malformed | SnapshotOutcome::Failed) | Err(_) => {
                            false
                        }
                        Ok(SnapshotOutcome::Synced { .. } | SnapshotOutcome::NotNeeded) => true,
                    };
                    self.worker.used(r.symbol, usable);
                }
                Err(SnapshotError { error, retry_in }) => {
                    self.report.snapshot_failures += 1;
                    let symbol = Sym::new(self.feed.p.symbols()[r.symbol].symbol());
                    self.feed.p.notices().push(Notice::SnapshotFailed { symbol, error, retry_in });
                    self.feed.p.snapshot_failed(r.symbol);
                }
            }
        }
        if any {
            self.feed.flush_output();
        }
        while let Some(sym) = self.feed.p.poll_snapshot_request() {
            // One fetch per symbol at a time: a request while one is out is answered by it (the
            // book judges whatever snapshot arrives and asks again if it is too old).
            if !self.in_flight[sym] {
                self.in_flight[sym] = true;
                self.report.snapshot_requests += 1;
                let never_synced = self.feed.p.symbols()[sym].book().counters().snapshots == 0;
                self.worker.request(sym, if never_synced { Priority::Initial } else { Priority::Resync });
            }
        }
        // A capture that moved to a new date wants a snapshot of its own (for a replayable
        // folder); the book does not need it (a synced book ignores it), the recording does.
        while let Some(sym) = self.feed.rec.as_mut().and_then(Recorder::poll_snapshot_wanted) {
            if !self.in_flight[sym] {
                self.in_flight[sym] = true;
                self.report.snapshot_requests += 1;
                self.worker.request(sym, Priority::Resync);
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        self.summarize(now);
        self.fanout(now);
        if let Some(r) = &mut self.feed.rec {
            // Flushes a capture buffer whose oldest line is a second old, rotates files on the hour.
            r.tick(self.feed.clock.ns(now));
        }
        // DNS answers.
        let mut j = 0;
        while j < self.pending.len() {
            let answer = match self.pending[j].rx.try_recv() {
                Ok(r) => Some(r.map_err(|e| e.to_string())),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Err("DNS lookup thread ended".to_owned())),
            };
            let Some(answer) = answer else {
                j += 1;
                continue;
            };
            let p = self.pending.remove(j);
            match answer {
                Ok(addrs) => self.connect(p.shard, p.id, &addrs, now),
                Err(what) => {
                    let loss = Loss { what, graceful: false, retry_floor: Duration::ZERO };
                    self.shards[p.shard].sup.handle_lost(p.id, loss, now);
                }
            }
            self.apply(p.shard, now);
        }
        for k in 0..self.shards.len() {
            // A standby may switch once it has caught up with its shard's active connection.
            let shard = &self.shards[k];
            let standby_open = self
                .conns
                .iter()
                .any(|(s, c)| *s == k && c.phase() == Phase::Open && shard.sup.role(c.serial) == Some(Role::Standby));
            if standby_open {
                let caught_up = self.caught_up(k);
                self.shards[k].sup.handle_caught_up(caught_up, now);
            }
            if self.shards[k].sup.poll_timeout().is_some_and(|t| t <= now) {
                self.shards[k].sup.handle_timeout(now);
            }
            self.apply(k, now);
            // Frames held ahead past --redundancy-hold, or with no other lane up any more, go now.
            if let Some(t) = self.shards[k].ahead.oldest() {
                if now.saturating_duration_since(t) >= self.cfg.redundancy_hold || !self.other_up(k) {
                    self.release(k, now);
                }
            }
        }
    }

    /// Ready to switch: the new connection of shard `k` is not behind (every synced book has taken
    /// a diff from it that moved the book, or it held diffs back), and the old connection has
    /// delivered everything up to the first held frame of every stream. Unsynced books are not
    /// waited for: they resync anyway.
    fn caught_up(&self, k: usize) -> bool {
        let shard = &self.shards[k];
        let held = &shard.held;
        let depth = shard.kinds.contains(&StreamKind::Depth);
        if !depth && !held.fresh {
            return false;
        }
        let syms = self.feed.p.symbols();
        shard.symbols.iter().all(|&i| {
            let (Some(sym), Some(first), Some(&front)) = (syms.get(i), held.first.get(i), held.front.get(i)) else {
                return true;
            };
            let synced = sym.book().is_synced();
            let depth_ok = match first[StreamKind::Depth] {
                Some(u) => !synced || sym.book().last_update_id().saturating_add(1) >= u,
                None => !depth || !synced || front,
            };
            // The old connection delivered every id before the first held one.
            let ids_ok = |kind| {
                first[kind].is_none_or(|id: u64| {
                    sym.sequence(kind).and_then(Sequence::last).is_some_and(|l| l.saturating_add(1) >= id)
                })
            };
            depth_ok && ids_ok(StreamKind::Trade) && ids_ok(StreamKind::AggTrade)
        })
    }

    /// Shard `k`'s supervisor made `to` its active connection: feed the frames it held back
    /// (duplicates are skipped, the rest are contiguous).
    fn switch(&mut self, k: usize, to: ConnId, now: Instant) {
        let held = std::mem::take(&mut self.shards[k].held);
        let n = held.frames.len();
        let mut shutdown = false;
        for &(start, len, t, wire) in &held.frames {
            let frame = &held.bytes[start..start + len];
            let recv_ns = self.feed.clock.ns(t);
            shutdown |= matches!(self.feed.process(recv_ns, wire, frame), FrameOutcome::ServerShutdown);
        }
        let total = held.total;
        self.shards[k].held = held;
        self.shards[k].held.reset(0);
        self.shards[k].held.total = total;
        self.feed.flush_output();
        if n > 0 {
            let text = format!("{}#{to}: {n} held-back frames replayed", self.label(k));
            self.log(text);
        }
        if shutdown {
            self.shards[k].sup.handle_server_shutdown(to, now);
        }
    }

    /// Resolves the host (on a helper thread unless it is an IP literal), then connects.
    fn start_open(&mut self, k: usize, id: ConnId, now: Instant) {
        if self.shards[k].sup.role(id) == Some(Role::Standby) {
            let n = self.feed.p.symbols().len();
            self.shards[k].held.reset(n);
        }
        // The lane's own base: with several --ws-url (or SBE with aggTrade from JSON alongside)
        // lanes connect to different hosts and ports.
        let host = self.shards[k].ws.bare_host().to_owned();
        let port = self.shards[k].ws.port;
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.connect(k, id, &[SocketAddr::new(ip, port)], now);
            return;
        }
        let (tx, rx) = mpsc::channel();
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new().name("tickfeed-dns".into()).spawn(move || {
            let r = match (host.as_str(), port).to_socket_addrs() {
                Ok(a) => Some(a.collect::<Vec<_>>()).filter(|a| !a.is_empty()).ok_or(DnsError { host, reason: None }),
                Err(e) => Err(DnsError { host, reason: Some(e) }),
            };
            let _ = tx.send(r);
            let _ = waker.wake();
        });
        match spawned {
            Ok(_) => self.pending.push(Pending { shard: k, id, rx }),
            Err(e) => {
                let loss = Loss {
                    what: format!("cannot start a DNS lookup ({e})"),
                    graceful: false,
                    retry_floor: Duration::ZERO,
                };
                self.shards[k].sup.handle_lost(id, loss, now);
            }
        }
    }

    fn connect(&mut self, k: usize, id: ConnId, addrs: &[SocketAddr], now: Instant) {
        if self.shards[k].sup.role(id).is_none() {
            return; // given up on while resolving
        }
        // Rotate through the addresses across attempts.
        let addr = addrs[(id as usize) % addrs.len()];
        let r = Conn::connect(&self.shards[k].spec, addr, id, token(k, id), self.poll.registry(), now, seed() ^ id);
        match r {
            Ok(conn) => self.conns.push((k, conn)),
            Err(e) => {
                let w = self.where_(k, addr);
                let what = match &e {
                    ConnError::Connect(e) => format!("connect {w} failed: {}", io_text(e)),
                    e => format!("connect {w} failed: {e}"),
                };
                self.shards[k].sup.handle_lost(id, Loss { what, graceful: false, retry_floor: Duration::ZERO }, now);
            }
        }
    }

    /// Every 50 ms, whether the publisher wants every synced book as a snapshot (a subscriber
    /// joined, the periodic round, room again after drops); every second, the metrics' copy.
    fn fanout(&mut self, now: Instant) {
        if now >= self.fanout_due && self.feed.publisher.is_some() {
            self.fanout_due = now + Duration::from_millis(50);
            let now_ns = self.feed.clock.ns(now);
            if self.feed.publisher.as_mut().is_some_and(|pb| pb.wants_snapshots(now_ns)) {
                self.feed.p.publish_snapshots(now_ns);
                self.feed.publish();
            }
        }
        if now >= self.metrics_due && self.metrics.is_some() {
            self.metrics_due = now + Duration::from_secs(1);
            let (p, shards, legs) = (&*self.feed.p, &self.shards, self.legs);
            if let Some(m) = self.metrics.as_mut() {
                m.update(|snap| {
                    crate::metrics::fill_from_pipeline(p, snap);
                    snap.connections.resize_with(shards.len(), ConnectionMetrics::default);
                    for (c, sh) in snap.connections.iter_mut().zip(shards) {
                        if c.label.is_empty() {
                            c.label = if legs > 1 {
                                format!("{}{}", sh.group, leg_letter(sh.leg))
                            } else {
                                sh.group.to_string()
                            };
                        }
                        c.up = sh.sup.active().is_some();
                        c.connections = sh.sup.counters().connections;
                        c.frames = sh.link.frames;
                    }
                });
            }
        }
    }

    fn finish(mut self) -> LiveReport {
        self.feed.flush_output();
        if let Some(pb) = self.feed.publisher.take() {
            self.report.publish = Some(pb.close(Duration::from_secs(2)));
        }
        if let Some(m) = self.metrics.take() {
            self.report.metrics_scrapes = Some(m.scrapes());
            m.stop();
        }
        if let Some(r) = &mut self.feed.rec {
            let c = r.finish();
            self.report.recorded_lines = c.lines;
            self.report.record_errors = c.write_errors;
        }
        let _ = self.feed.out.flush();
        for (_, c) in std::mem::take(&mut self.conns) {
            c.shutdown(self.poll.registry());
        }
        let c = self.worker.counters();
        self.report.rest_rate_limited = c.rate_limited.load(Ordering::Relaxed);
        self.report.rest_429 = c.http_429.load(Ordering::Relaxed);
        self.report.rest_418 = c.http_418.load(Ordering::Relaxed);
        self.report.rest_weight_spent = c.weight.load(Ordering::Relaxed);
        self.report.snapshots = c.requests.load(Ordering::Relaxed);
        self.report.rest_delayed = c.delayed.load(Ordering::Relaxed);
        for shard in &self.shards {
            let s = shard.sup.counters();
            self.report.connections += s.connections;
            self.report.switches += s.switches;
            self.report.stale_reconnects += s.stale_reconnects;
            self.report.connect_failures += s.connect_failures;
            self.report.connect_attempts += s.attempts;
            self.report.connect_attempts_delayed += s.attempts_delayed;
            self.report.server_shutdowns_ignored += s.shutdowns_ignored;
            self.report.held_back += shard.held.total;
            self.report.held_overflows += s.held_overflows;
        }
        self.report.shards = self.groups as u64;
        if self.legs > 1 {
            self.report.links = self
                .shards
                .iter()
                .map(|sh| {
                    let q = |x: f64| if sh.link.lag_us.is_empty() { 0 } else { sh.link.lag_us.value_at_quantile(x) };
                    LinkReport {
                        shard: sh.group,
                        leg: leg_letter(sh.leg),
                        url: format!("{}://{}", if sh.ws.tls { "wss" } else { "ws" }, sh.ws.authority()),
                        connections: sh.sup.counters().connections,
                        frames: sh.link.frames,
                        first: sh.link.first,
                        duplicates: sh.link.duplicates,
                        held: sh.link.held,
                        lag_samples: sh.link.lag_us.len(),
                        lag_us_p50: q(0.5),
                        lag_us_p99: q(0.99),
                    }
                })
                .collect();
            self.report.redundancy = self.legs as u64;
            self.report.held_ahead = self.shards.iter().map(|sh| sh.link.held).sum();
        }
        self.report.depth_limit = u64::from(self.cfg.depth_limit);
        self.report.binary_frames = self.feed.binary;
        self.report.stdout_closed = !self.feed.stdout_ok;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_keep_a_symbols_streams_together_and_never_pass_the_cap() {
        assert_eq!(shard_plan(5, 3, 200), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(shard_plan(5, 2, 4), vec![vec![0, 1], vec![2, 3], vec![4]]);
        // 1,000 symbols x 3 streams at the default: 16 connections of at most 198 streams.
        let plan = shard_plan(1000, 3, LiveConfig::DEFAULT_STREAMS_PER_CONN);
        assert_eq!(plan.len(), 16);
        assert!(plan.iter().all(|s| s.len() * 3 <= LiveConfig::DEFAULT_STREAMS_PER_CONN));
        assert_eq!(plan.iter().map(Vec::len).sum::<usize>(), 1000);
        // More streams per symbol than a connection takes: one symbol per connection.
        assert_eq!(shard_plan(2, 4, 3), vec![vec![0], vec![1]]);
        assert!(shard_plan(0, 3, 200).is_empty());
    }

    #[test]
    fn futures_shards_carry_one_path_tier_each() {
        use crate::venue::{Tier, Venue};
        let (ws, rest) = (crate::binance::url::parse_ws_base("ws://h:1").unwrap(), "http://h:1");
        let rest = crate::binance::url::parse_rest_base(rest).unwrap();
        let mut cfg = LiveConfig::new(ws, rest, crate::net::tls::TlsSetup::new(None).unwrap());
        cfg.streams = vec![StreamKind::Depth, StreamKind::AggTrade, StreamKind::BookTicker];
        let groups = shard_plan(3, 3, 4);
        assert_eq!(tier_plan(&cfg, groups.clone()).len(), 3, "spot: a shard carries every stream");
        assert!(tier_plan(&cfg, groups.clone()).iter().all(|(_, t, k)| t.is_none() && k == &cfg.streams));
        cfg.venue = Venue::UsdM;
        let plan = tier_plan(&cfg, groups);
        let (pubk, mktk) = (vec![StreamKind::Depth, StreamKind::BookTicker], vec![StreamKind::AggTrade]);
        assert_eq!(
            plan,
            vec![
                (vec![0], Some(Tier::Public), pubk.clone()),
                (vec![0], Some(Tier::Market), mktk.clone()),
                (vec![1], Some(Tier::Public), pubk.clone()),
                (vec![1], Some(Tier::Market), mktk.clone()),
                (vec![2], Some(Tier::Public), pubk),
                (vec![2], Some(Tier::Market), mktk),
            ]
        );
        // Streams of one tier only: one connection per group.
        cfg.streams = vec![StreamKind::Depth, StreamKind::Trade];
        assert_eq!(tier_plan(&cfg, vec![vec![0, 1]]), vec![(vec![0, 1], Some(Tier::Public), cfg.streams.clone())]);
    }

    #[test]
    fn the_24_hour_cuts_of_different_shards_never_coincide() {
        let age = Duration::from_secs(23 * 3600 + 1800);
        assert_eq!(staggered_age(age, 0, 1), age);
        let ages: Vec<Duration> = (0..16).map(|k| staggered_age(age, k, 16)).collect();
        assert_eq!(ages[0], age);
        assert!(ages.windows(2).all(|w| w[0] - w[1] == Duration::from_secs(225)), "{ages:?}");
        assert!(*ages.last().unwrap() > age - Duration::from_secs(3600));
        // A short age (tests) spreads over at most half of it.
        let short = Duration::from_secs(2);
        assert!((0..4).all(|k| staggered_age(short, k, 4) >= short / 2));
    }

    #[test]
    fn rate_limited_upgrade_waits_its_retry_after_else_30s() {
        use crate::ws::Refusal;
        let refused = |status, retry_after| {
            ConnError::Handshake(WsError::HandshakeRefused(Box::new(Refusal {
                status,
                status_line: "HTTP/1.1".into(),
                body: "".into(),
                retry_after,
            })))
        };
        assert_eq!(rate_limit_floor(&refused(418, Some(120))), Duration::from_secs(120));
        assert_eq!(rate_limit_floor(&refused(429, None)), WS_RATE_LIMITED_RETRY);
        assert_eq!(rate_limit_floor(&refused(404, Some(5))), Duration::ZERO);
        assert_eq!(rate_limit_floor(&refused(429, Some(u64::MAX))), crate::binance::rest::MAX_RETRY_AFTER);
    }
}
