//! The event loop itself: one thread, one mio poller, the active connection and (during a
//! make-before-break switch) a standby, the REST worker's channel, and the timers. See the
//! [module documentation](super) for what it decides and how a switch works.

use super::held::Held;
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
    depth_path, RestClient, RestGate, SnapshotError, SnapshotWorker, WorkerConfig, WorkerEvent,
};
use crate::binance::schedule::Priority;
use crate::binance::url::stream_path;
use crate::binance::StreamKind;
use crate::capture::{Recorder, RecorderConfig};
use crate::net::backoff::Backoff;
use crate::net::clock::WallClock;
use crate::net::conn::{io_text, Conn, ConnError, ConnEvent, ConnSpec, Phase};
use crate::notice::{Notice, NoticeLog, Sym};
use crate::pipeline::{FrameOutcome, Pipeline, Sequence};
use crate::ws::WsError;

const WAKE: Token = Token(usize::MAX);
/// Longest blocking poll with `--no-busy-poll`: the timer resolution.
const BLOCKING_POLL: Duration = Duration::from_millis(20);
/// A connection that stayed up this long resets the reconnect backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);
/// How often the receive clock is recalibrated against the wall clock.
const RECALIBRATE: Duration = Duration::from_secs(60);

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A websocket upgrade refused with 429 (too many requests) or 418 (IP banned) without a usable
/// `Retry-After` is retried no sooner than this: hammering a rate limit is what turns a 429 into
/// a ban.
const WS_RATE_LIMITED_RETRY: Duration = Duration::from_secs(30);

/// The least wait before reconnecting after `err`: a 429/418 refusal's `Retry-After` (Binance's
/// wait to avoid a ban, or until it ends), else [`WS_RATE_LIMITED_RETRY`].
fn rate_limit_floor(err: &ConnError) -> Duration {
    match err {
        ConnError::Handshake(WsError::HandshakeRefused(r)) if r.status == 429 || r.status == 418 => {
            r.retry_after.map_or(WS_RATE_LIMITED_RETRY, Duration::from_secs)
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
    let client = RestClient::new(&cfg.rest, &cfg.tls, cfg.rest_timeout);
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
    let spec = ConnSpec {
        host: cfg.ws.host.clone(),
        port: cfg.ws.port,
        tls: cfg.ws.tls.then(|| cfg.tls.clone()),
        path: stream_path(&cfg.symbols, &cfg.streams),
        limits: cfg.limits,
    };
    let n = p.symbols().len();
    let mut lp = Loop {
        cfg,
        spec,
        poll,
        waker,
        worker,
        in_flight: vec![false; n],
        active: None,
        standby: None,
        pending: None,
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
            held: Held::default(),
            binary: 0,
        },
        backoff: Backoff::new(cfg.backoff_min, cfg.backoff_max, seed()),
        open_at: Some(started),
        next_serial: 1,
        attempts: 0,
        report,
        deadline,
        mbb_reason: None,
    };
    lp.run(stop)?;
    Ok(lp.finish())
}

/// Which connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Active,
    Standby,
}

/// A connection and what the loop tracks about it.
struct Slot {
    conn: Conn,
    /// Last market frame (or any text frame) received.
    last_data: Instant,
    /// A market frame arrived on this connection.
    data_seen: bool,
}

/// A connection waiting for its DNS answer.
struct Pending {
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
    held: Held,
    binary: u64,
}

/// What one `on_readable` call reported, beyond frames.
#[derive(Default)]
struct Seen {
    opened: bool,
    last_text: Option<Instant>,
    market: bool,
    shutdown: bool,
}

impl<W: Write> Feed<'_, W> {
    fn on_event(&mut self, ev: ConnEvent<'_>, overlap: bool, seen: &mut Seen) {
        match ev {
            ConnEvent::Text(frame, t) => {
                seen.last_text = Some(t);
                if self.stop {
                    return;
                }
                if self.max_events.is_some_and(|m| self.p.stats().events >= m) {
                    self.stop = true;
                    return;
                }
                let recv_ns = self.clock.ns(t);
                let o = if overlap {
                    // A frame of the new connection is processed now only if it does not run
                    // ahead of what the old one delivered (see the module documentation).
                    let held = &mut self.held;
                    self.p.on_frame_with(recv_ns, frame, &mut |ev| held.admit(ev))
                } else {
                    self.p.on_frame(recv_ns, frame)
                };
                self.record(recv_ns, frame, &o);
                match o {
                    FrameOutcome::Held { .. } => {
                        self.held.push(frame, t);
                        seen.market = true;
                        return;
                    }
                    FrameOutcome::Market { .. } | FrameOutcome::Duplicate { .. } => seen.market = true,
                    FrameOutcome::ServerShutdown => seen.shutdown = true,
                    _ => {}
                }
                self.batch_frames += 1;
            }
            ConnEvent::Binary(b) => {
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
            ConnEvent::BatchEnd(t) => {
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

    /// Into the capture when `frame` was a market event processed now (duplicates from a second
    /// connection are not recorded twice, held frames when they are processed).
    #[inline]
    fn record(&mut self, recv_ns: i64, frame: &[u8], o: &FrameOutcome) {
        if let (Some(r), FrameOutcome::Market { symbol, kind, .. }) = (&mut self.rec, o) {
            r.record(recv_ns, *kind, *symbol, frame);
        }
    }

    /// One frame through the pipeline and into the capture.
    fn process(&mut self, recv_ns: i64, frame: &[u8]) -> FrameOutcome {
        let o = self.p.on_frame(recv_ns, frame);
        self.record(recv_ns, frame, &o);
        o
    }

    /// Writes the output buffer in one call (a failed stdout stops output for good), then the
    /// notices the batch produced.
    fn flush_output(&mut self) {
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
    spec: ConnSpec,
    poll: Poll,
    waker: Arc<Waker>,
    worker: SnapshotWorker,
    in_flight: Vec<bool>,
    active: Option<Slot>,
    standby: Option<Slot>,
    pending: Option<Pending>,
    feed: Feed<'a, W>,
    backoff: Backoff,
    /// When to open the next connection (active when there is none, else a standby).
    open_at: Option<Instant>,
    next_serial: u64,
    attempts: u64,
    report: LiveReport,
    deadline: Option<Instant>,
    /// Why a standby is wanted (make before break), for the log.
    mbb_reason: Option<&'static str>,
}

impl<W: Write> Loop<'_, W> {
    /// A connection event, worded for a person, through the one notice log.
    fn log(&mut self, msg: String) {
        self.feed.log.emit(&Notice::Link(msg), Instant::now());
    }

    /// `host:port`, with the address when the host is a name.
    fn where_(&self, addr: SocketAddr) -> String {
        let a = self.cfg.ws.authority();
        if self.cfg.ws.bare_host().parse::<IpAddr>().is_ok() {
            a
        } else {
            format!("{a} ({addr})")
        }
    }

    fn slot(&mut self, which: Which) -> Option<&mut Slot> {
        match which {
            Which::Active => self.active.as_mut(),
            Which::Standby => self.standby.as_mut(),
        }
    }

    fn run(&mut self, stop: &AtomicBool) -> Result<(), LiveError> {
        let mut events = Events::with_capacity(64);
        let mut calibrated = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                self.report.end = EndReason::Signal;
                return Ok(());
            }
            if self.feed.stop {
                self.report.end = EndReason::MaxEvents;
                return Ok(());
            }
            let pending_read =
                [&self.active, &self.standby].iter().any(|s| s.as_ref().is_some_and(|s| s.conn.is_readable()));
            let timeout = if self.cfg.busy_poll || pending_read { Duration::ZERO } else { BLOCKING_POLL };
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
                for which in [Which::Active, Which::Standby] {
                    let Some(slot) = self.slot(which) else { continue };
                    if slot.conn.token() != t {
                        continue;
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        slot.conn.set_readable();
                    }
                    if ev.is_writable() || ev.is_error() {
                        let was = slot.conn.phase();
                        if let Err(e) = slot.conn.on_writable() {
                            self.lost(which, e, Instant::now());
                        } else if was == Phase::Connecting {
                            // Connected: the upgrade request is out; look for the answer.
                            if let Some(s) = self.slot(which) {
                                s.conn.set_readable();
                            }
                        }
                    }
                }
            }
            self.service(Which::Active);
            self.service(Which::Standby);
            self.snapshots();
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

    /// Reads a connection that has data pending and feeds what it delivers.
    fn service(&mut self, which: Which) {
        let overlap = which == Which::Standby;
        let Loop { active, standby, feed, .. } = self;
        let Some(slot) = (match which {
            Which::Active => active.as_mut(),
            Which::Standby => standby.as_mut(),
        }) else {
            return;
        };
        if !slot.conn.is_readable() {
            return;
        }
        let mut seen = Seen::default();
        let r = slot.conn.on_readable(&mut |ev| feed.on_event(ev, overlap, &mut seen));
        if let Some(t) = seen.last_text {
            slot.last_data = t;
        }
        slot.data_seen |= seen.market;
        let serial = slot.conn.serial;
        if seen.opened {
            slot.last_data = Instant::now();
            self.on_opened(which);
        }
        if seen.shutdown && which == Which::Active && self.standby.is_none() && self.pending.is_none() {
            self.log(format!("serverShutdown on connection #{serial}: opening a new one before closing it"));
            self.mbb_reason = Some("serverShutdown");
            self.open_at = Some(Instant::now());
        }
        if let Err(e) = r {
            self.lost(which, e, Instant::now());
        }
    }

    fn on_opened(&mut self, which: Which) {
        self.report.connections += 1;
        if self.report.connections > 1 {
            self.feed.p.stats_mut().reconnects += 1;
        }
        let Some(s) = self.slot(which) else { return };
        let (serial, addr) = (s.conn.serial, s.conn.addr());
        let scheme = if self.cfg.ws.tls { "wss" } else { "ws" };
        match which {
            Which::Active => self.log(format!(
                "connected #{serial} {scheme}://{}, {} symbols x {} streams",
                self.where_(addr),
                self.cfg.symbols.len(),
                self.cfg.streams.len()
            )),
            Which::Standby => self.log(format!(
                "connected #{serial} {scheme}://{} alongside #{}: switching once it is in flow",
                self.where_(addr),
                self.active.as_ref().map_or(0, |a| a.conn.serial)
            )),
        }
    }

    /// A connection ended: log why, and either switch to the standby or schedule a reconnect.
    fn lost(&mut self, which: Which, err: ConnError, now: Instant) {
        let Some(slot) = (match which {
            Which::Active => self.active.take(),
            Which::Standby => self.standby.take(),
        }) else {
            return;
        };
        let serial = slot.conn.serial;
        let opened = slot.conn.opened;
        let where_ = self.where_(slot.conn.addr());
        let graceful = matches!(err, ConnError::Closed { .. });
        if graceful {
            slot.conn.shutdown(self.poll.registry());
        } else {
            slot.conn.abort(self.poll.registry());
        }
        if opened.is_some_and(|o| now.duration_since(o) >= HEALTHY_AFTER) {
            self.backoff.reset();
        }
        let what = match &err {
            ConnError::Connect(e) => format!("connect {where_} failed: {}", io_text(e)),
            ConnError::Tls(e) => format!("TLS with {where_} failed: {e}"),
            e if opened.is_none() => format!("websocket to {where_} failed: {e}"),
            e => format!("connection #{serial} to {where_}: {e}"),
        };
        if opened.is_none() {
            self.report.connect_failures += 1;
        }
        match which {
            Which::Active => {
                // A planned replacement (serverShutdown, --max-conn-age) of a connection that was
                // live: the books are kept, and the sync engine's own check on the next
                // connection's first diff (`U <= id + 1`, else a gap and a resync) decides
                // whether anything was missed in between, as the Binance docs allow.
                let planned = opened.is_some() && self.mbb_reason.take().is_some();
                if let Some(sb) = self.standby.as_ref() {
                    let sserial = sb.conn.serial;
                    if sb.conn.phase() == Phase::Open {
                        self.log(format!("{what}"));
                        self.switch("the old connection ended");
                    } else {
                        self.active = self.standby.take();
                        self.feed.held.reset(0);
                        self.log(format!(
                            "{what}; continuing with #{sserial} (connecting): books continue if its first diffs are \
                             contiguous, else resync"
                        ));
                    }
                } else if planned {
                    if self.pending.is_none() {
                        self.open_at = Some(now);
                    }
                    self.log(format!(
                        "{what}; reconnecting now: books continue if the new connection's first diffs are contiguous, \
                         else resync"
                    ));
                } else if self.pending.is_some() {
                    // A new connection is being resolved: it becomes the active one.
                    self.feed.p.reset_books();
                    self.log(format!("{what}; continuing with the connection being opened, books resync"));
                } else {
                    self.feed.p.reset_books();
                    let d = self.backoff.next_delay().max(rate_limit_floor(&err));
                    self.open_at = Some(now + d);
                    if opened.is_some() {
                        self.log(format!("{what}; reconnecting in {} (books resync)", secs(d)));
                    } else {
                        self.log(format!("{what}; retrying in {}", secs(d)));
                    }
                }
            }
            Which::Standby => {
                self.feed.held.reset(0);
                let d = self.backoff.next_delay().max(rate_limit_floor(&err));
                self.open_at = Some(now + d);
                self.log(format!("{what}; new connection retried in {}", secs(d)));
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
                        let line = format!("GET {}", depth_path(&self.cfg.symbols[r.symbol], self.cfg.depth_limit));
                        rec.record_snapshot(r.recv_ns, r.symbol, &line, &body);
                    }
                    // An unusable body is told by the pipeline, which asks again.
                    let _ = self.feed.p.on_snapshot(r.symbol, r.recv_ns, &body);
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
        if let Some(r) = &mut self.feed.rec {
            // Flushes a capture buffer whose oldest line is a second old, rotates files on the hour.
            r.tick(self.feed.clock.ns(now));
        }
        // Connections that do not get through connect + TLS + upgrade in time.
        let limit = self.cfg.connect_timeout;
        for which in [Which::Active, Which::Standby] {
            let late = self
                .slot(which)
                .filter(|s| s.conn.phase() != Phase::Open && now.duration_since(s.conn.started) > limit)
                .map(|s| s.conn.phase());
            if let Some(phase) = late {
                let e = if phase == Phase::Connecting {
                    ConnError::Connect(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("timed out after {}", secs(limit)),
                    ))
                } else {
                    ConnError::Timeout(format!("TLS/websocket upgrade not done after {}", secs(limit)))
                };
                self.lost(which, e, now);
            }
        }
        // A silent stream.
        let stale = self.cfg.stale;
        let silent = self
            .active
            .as_ref()
            .filter(|a| !stale.is_zero() && a.conn.phase() == Phase::Open)
            .map(|a| now.duration_since(a.last_data))
            .filter(|&d| d > stale);
        if let Some(d) = silent {
            self.report.stale_reconnects += 1;
            self.lost(Which::Active, ConnError::Timeout(format!("no data for {} (--stale-secs)", secs(d))), now);
        }
        // The 24-hour rule: start a new connection before the old one is cut.
        if let Some(a) = &self.active {
            if a.conn.phase() == Phase::Open
                && self.standby.is_none()
                && self.pending.is_none()
                && self.open_at.is_none()
                && a.conn.opened.is_some_and(|o| now.duration_since(o) >= self.cfg.max_conn_age)
            {
                let serial = a.conn.serial;
                self.log(format!(
                    "connection #{serial} reached --max-conn-age {}: opening a new one before closing it",
                    secs(self.cfg.max_conn_age)
                ));
                self.mbb_reason = Some("max-conn-age");
                self.open_at = Some(now);
            }
        }
        // Switch once the new connection is in flow and the old one has caught up with it.
        let decision = self.standby.as_ref().filter(|s| s.conn.phase() == Phase::Open).and_then(|s| {
            if s.data_seen && self.caught_up() {
                Some("the old connection caught up with it")
            } else if s.conn.opened.is_some_and(|o| now.duration_since(o) >= self.cfg.switch_timeout) {
                Some("switch timeout")
            } else {
                None
            }
        });
        if let Some(why) = decision {
            self.switch(why);
        }
        // Open a connection when one is due.
        if self.open_at.is_some_and(|t| now >= t) && self.pending.is_none() {
            let which = if self.active.is_none() { Which::Active } else { Which::Standby };
            if which == Which::Standby && (self.standby.is_some() || self.mbb_reason.is_none()) {
                self.open_at = None;
            } else {
                self.open_at = None;
                self.start_open(now);
            }
        }
        if let Some(p) = &self.pending {
            match p.rx.try_recv() {
                Ok(r) => {
                    self.pending = None;
                    match r {
                        Ok(addrs) => self.connect(&addrs, now),
                        Err(m) => {
                            self.report.connect_failures += 1;
                            let d = self.backoff.next_delay();
                            self.open_at = Some(now + d);
                            self.log(format!("{m}; retrying in {}", secs(d)));
                        }
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.pending = None,
            }
        }
    }

    /// Ready to switch: the new connection is not behind (every synced book has taken a diff
    /// from it that moved the book, or it held diffs back), and the old connection has delivered
    /// everything up to the first held frame of every stream. Unsynced books are not waited for:
    /// they resync anyway.
    fn caught_up(&self) -> bool {
        let held = &self.feed.held;
        let depth = self.cfg.streams.contains(&StreamKind::Depth);
        if !depth && !held.fresh {
            return false;
        }
        self.feed.p.symbols().iter().zip(&held.first).zip(&held.front).all(|((sym, first), &front)| {
            let synced = sym.book().is_synced();
            let depth_ok = match first[StreamKind::Depth] {
                Some(u) => !synced || sym.book().last_update_id().saturating_add(1) >= u,
                None => !depth || !synced || front,
            };
            // The old connection delivered every id before the first held one.
            let ids_ok = |k| {
                first[k].is_none_or(|id: u64| {
                    sym.sequence(k).and_then(Sequence::last).is_some_and(|l| l.saturating_add(1) >= id)
                })
            };
            depth_ok && ids_ok(StreamKind::Trade) && ids_ok(StreamKind::AggTrade)
        })
    }

    /// Makes the standby the active connection, feeds the frames it held back and closes the old
    /// active connection, if any is left.
    fn switch(&mut self, why: &str) {
        let Some(new) = self.standby.take() else { return };
        let serial = new.conn.serial;
        let old = self.active.replace(new);
        self.report.switches += 1;
        self.mbb_reason = None;
        let held = std::mem::take(&mut self.feed.held);
        let n = held.frames.len();
        for &(start, len, t) in &held.frames {
            let frame = &held.bytes[start..start + len];
            let recv_ns = self.feed.clock.ns(t);
            if let FrameOutcome::ServerShutdown = self.feed.process(recv_ns, frame) {
                self.mbb_reason = Some("serverShutdown");
            }
        }
        self.feed.held = held;
        self.feed.held.reset(0);
        self.feed.flush_output();
        if self.mbb_reason.is_some() {
            self.open_at = Some(Instant::now());
        }
        match old {
            Some(o) => {
                let old_serial = o.conn.serial;
                o.conn.shutdown(self.poll.registry());
                self.log(format!(
                    "switched #{old_serial} -> #{serial} ({why}), closed #{old_serial}; {n} held-back frames replayed"
                ));
            }
            None => self.log(format!("switched to #{serial} ({why}); {n} held-back frames replayed")),
        }
    }

    /// Resolves the host (on a helper thread unless it is an IP literal), then connects.
    fn start_open(&mut self, now: Instant) {
        let host = self.cfg.ws.bare_host().to_owned();
        let port = self.cfg.ws.port;
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.connect(&[SocketAddr::new(ip, port)], now);
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
            Ok(_) => self.pending = Some(Pending { rx }),
            Err(e) => {
                let d = self.backoff.next_delay();
                self.open_at = Some(now + d);
                self.log(format!("cannot start a DNS lookup ({e}); retrying in {}", secs(d)));
            }
        }
    }

    fn connect(&mut self, addrs: &[SocketAddr], now: Instant) {
        // The role is decided now: the active connection may have gone while resolving.
        let which = if self.active.is_none() { Which::Active } else { Which::Standby };
        // Rotate through the addresses across attempts.
        let addr = addrs[(self.attempts as usize) % addrs.len()];
        self.attempts += 1;
        let serial = self.next_serial;
        self.next_serial += 1;
        let token = Token(serial as usize);
        match Conn::connect(&self.spec, addr, serial, token, self.poll.registry(), now, seed() ^ serial) {
            Ok(conn) => {
                let n = self.feed.p.symbols().len();
                let slot = Slot { conn, last_data: now, data_seen: false };
                match which {
                    Which::Active => self.active = Some(slot),
                    Which::Standby => {
                        self.feed.held.reset(n);
                        self.standby = Some(slot);
                    }
                }
            }
            Err(e) => {
                self.report.connect_failures += 1;
                let d = self.backoff.next_delay();
                self.open_at = Some(now + d);
                let w = self.where_(addr);
                let m = match &e {
                    ConnError::Connect(e) => format!("connect {w} failed: {}", io_text(e)),
                    e => format!("connect {w} failed: {e}"),
                };
                self.log(format!("{m}; retrying in {}", secs(d)));
            }
        }
    }

    fn finish(mut self) -> LiveReport {
        self.feed.flush_output();
        if let Some(r) = &mut self.feed.rec {
            let c = r.finish();
            self.report.recorded_lines = c.lines;
            self.report.record_errors = c.write_errors;
        }
        let _ = self.feed.out.flush();
        for s in [self.standby.take(), self.active.take()].into_iter().flatten() {
            s.conn.shutdown(self.poll.registry());
        }
        let c = self.worker.counters();
        self.report.rest_rate_limited = c.rate_limited.load(Ordering::Relaxed);
        self.report.rest_429 = c.http_429.load(Ordering::Relaxed);
        self.report.rest_418 = c.http_418.load(Ordering::Relaxed);
        self.report.rest_weight_spent = c.weight.load(Ordering::Relaxed);
        self.report.snapshots = c.requests.load(Ordering::Relaxed);
        self.report.rest_delayed = c.delayed.load(Ordering::Relaxed);
        self.report.depth_limit = u64::from(self.cfg.depth_limit);
        self.report.held_back = self.feed.held.total;
        self.report.binary_frames = self.feed.binary;
        self.report.stdout_closed = !self.feed.stdout_ok;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
