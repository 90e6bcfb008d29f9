//! One websocket stream connection, from the 101 answer to the last frame: takes published events,
//! filters them by subscription, frames them (combined or raw, ms or µs), answers control
//! messages, pings and checks pongs by Binance's rule, and acts on injected faults.
//!
//! A lagged connection (a slow network path) holds everything it writes on the market's behalf
//! (market messages, one-shot faults, injected frames, control replies) in one queue, in order,
//! and writes each item `lag` after it was taken, stamping `E` with the time it was taken: the
//! lag shows up as transport time, as it would on a real slow path. Pings and pongs are not
//! delayed.
//!
//! A connection is one thread with blocking writes (blocking is the back-pressure in
//! as-fast-as-read mode, bounded by the write timeout otherwise). Inbound frames are polled with a
//! short non-blocking read between waits: the thread sleeps on the event condvar for at most
//! `poll_interval`, so an idle connection costs a few wake-ups per second, never a spin. This
//! module does not parse HTTP; the server hands it a stream whose request head was already read.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Bytes, Message};

use crate::control::{self, Subscriptions};
use crate::event::{depth_symbol, MarketEvent, StreamId, StreamKind};
use crate::faults::{ConnFaults, Counters, Disconnect, Inject, OneShot, ONE_SHOTS};
use crate::hub::{lock, now_us, Hub, TakeError};
use crate::io::Io;
use crate::rng::Rng;

/// Per-connection timing knobs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnConfig {
    /// Longest sleep between inbound polls when no events arrive.
    pub poll_interval: Duration,
    /// A blocked write longer than this drops the client.
    pub write_timeout: Duration,
    /// The `stream-sbe` endpoint: market events as SBE binary frames (`SimConfig::sbe`).
    pub sbe: bool,
    /// USDⓈ-M futures (`SimConfig::venue`): `/public` and `/market` path tiers.
    pub futures: bool,
}

/// A USDⓈ-M futures websocket path tier (`fstream.binance.com/public/...`, `/market/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// High-frequency public streams: depth, bookTicker, trade.
    Public,
    /// The others: aggTrade, markPrice, forceOrder, kline...
    Market,
}

impl Tier {
    /// The tier a stream name belongs to.
    pub(crate) fn of_stream(name: &str) -> Tier {
        let rest = name.split_once('@').map_or("", |(_, r)| r);
        if rest.starts_with("depth") || rest == "bookTicker" || rest == "trade" {
            Tier::Public
        } else {
            Tier::Market
        }
    }
}

/// [`parse_target`] on a venue: futures takes `/public/stream?streams=..`, `/market/stream?..`
/// (and `/ws/..` under either) as well as the legacy tierless paths; spot knows no tier.
pub(crate) fn parse_target_for(
    futures: bool,
    path: &str,
    query: &[(String, String)],
) -> Result<WsParams, &'static str> {
    let (tier, rest) = match (path.strip_prefix("/public"), path.strip_prefix("/market")) {
        (Some(r), _) if futures && (r.starts_with("/stream") || r.starts_with("/ws")) => (Some(Tier::Public), r),
        (_, Some(r)) if futures && (r.starts_with("/stream") || r.starts_with("/ws")) => (Some(Tier::Market), r),
        _ => (None, path),
    };
    let mut p = parse_target(rest, query)?;
    p.tier = tier;
    Ok(p)
}

/// On the SBE endpoint, the published stream a subscribed name reads: `@depth` is the fastest
/// diff stream the simulator has (`@depth@100ms`; Binance's is 20 ms), `@bestBidAsk` the
/// bookTicker moments, `@trade` itself. `@depth20` is sent on each `@depth@100ms` diff, from the
/// reference book after it (Binance: every 50 ms). Anything else maps to a name nothing
/// publishes.
fn sbe_source(name: &str) -> String {
    match name.split_once('@') {
        Some((sym, "depth" | "depth20")) => format!("{sym}@depth@100ms"),
        Some((sym, "bestBidAsk")) => format!("{sym}@bookTicker"),
        Some((sym, "trade")) => format!("{sym}@trade"),
        _ => format!("{name}@sbe-unserved"),
    }
}

/// What the URL asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsParams {
    pub subs: Subscriptions,
    pub micros: bool,
    /// USDⓈ-M futures: the path tier (`None`: the legacy path, or spot).
    pub tier: Option<Tier>,
}

/// Parses a websocket target: `/stream?streams=a/b&timeUnit=...` or `/ws/<a>/<b>` or `/ws`.
/// `Err` carries the reason for an HTTP 400.
pub(crate) fn parse_target(path: &str, query: &[(String, String)]) -> Result<WsParams, &'static str> {
    let mut micros = false;
    for (k, v) in query {
        if k == "timeUnit" {
            micros = match v.as_str() {
                "MICROSECOND" | "microsecond" => true,
                "MILLISECOND" | "millisecond" => false,
                _ => return Err("Invalid timeUnit."),
            };
        }
    }
    // Distinct names in order: a repeated stream is one subscription (and one toward the limit).
    let split = |s: &str| {
        let mut names: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in s.split('/').filter(|n| !n.is_empty()) {
            if seen.insert(n) {
                names.push(n.to_string());
            }
        }
        names
    };
    if path == "/stream" {
        let names = query.iter().find(|(k, _)| k == "streams").map(|(_, v)| split(v)).unwrap_or_default();
        return Ok(WsParams { subs: Subscriptions { names, combined: true }, micros, tier: None });
    }
    if path == "/ws" || path.starts_with("/ws/") {
        let names = split(&crate::http::percent_decode(&path[3..]));
        return Ok(WsParams { subs: Subscriptions { names, combined: false }, micros, tier: None });
    }
    Err("Unknown websocket path.")
}

/// One-shot faults a connection has yet to act on: how many times each fired (globally or aimed
/// at this connection), the delay between a `serverShutdown` event and its close as set when they
/// fired, and the symbols whose next depth diff to skip.
#[derive(Debug, Clone)]
struct Fired {
    counts: [u64; ONE_SHOTS],
    close_after: Duration,
    /// Lowercase symbols, from `Faults::drop_next_diff_of` / `drop_next_diff_on`.
    drop_symbols: Vec<String>,
}

impl Fired {
    fn any(&self) -> bool {
        self.counts.iter().any(|&n| n > 0) || !self.drop_symbols.is_empty()
    }

    fn has(&self, f: OneShot) -> bool {
        self.counts[f as usize] > 0
    }
}

/// Something a lagged connection holds back.
enum Pending {
    Event(Arc<MarketEvent>),
    Faults(Fired),
    Inject(Inject),
    Reply(String),
}

/// A held-back item: when it is due, and the wall clock (µs) when it was taken, for `E`.
struct Delayed {
    due: Instant,
    taken_us: i64,
    what: Pending,
}

struct Conn<'a> {
    hub: &'a Arc<Hub>,
    id: u64,
    /// This connection's own switches (lag, injected frames).
    own: Arc<ConnFaults>,
    /// Held back by the lag, oldest first; written strictly in this order.
    delayed: VecDeque<Delayed>,
    /// When a `serverShutdown` with a late close closes the connection.
    close_at: Option<Instant>,
    ws: WebSocket<Io>,
    cfg: ConnConfig,
    subs: Subscriptions,
    micros: bool,
    /// USDⓈ-M futures: the connection's path tier (`None`: legacy).
    tier: Option<Tier>,
    names: HashMap<StreamId, Arc<str>>,
    cursor: u64,
    /// Generations of the global one-shot faults already acted on.
    seen: [u64; ONE_SHOTS],
    /// Generations of the one-shot faults aimed at this connection already acted on.
    seen_own: [u64; ONE_SHOTS],
    /// Depth diffs to skip, whatever their stream (global and per-connection `drop_next_diff`).
    pending_drops: u64,
    /// Depth streams whose next diffs to skip, and how many (per-symbol drops: each one armed
    /// skips one diff, as each global `drop_next_diff` does).
    stream_drops: HashMap<StreamId, u64>,
    diffs_seen: u64,
    sent: u64,
    /// Outstanding pings: payload and the deadline for its pong.
    pings: VecDeque<(Vec<u8>, Instant)>,
    ping_every_ms: u64,
    next_ping: Option<Instant>,
    opened: Instant,
    /// When the connection was last caught up with the log, and its `write_wait` then: what a
    /// slow-consumer drop is judged on.
    caught_up: (Instant, Duration),
    /// Arrival times of recent inbound frames, for the messages-per-second limit.
    incoming: VecDeque<Instant>,
    rng: Rng,
    out: String,
    first_symbol_lower: String,
    /// Reused SBE frame buffer.
    sbe_out: Vec<u8>,
    /// Uppercase symbols by market index, for SBE frames.
    symbols: Vec<String>,
    /// SBE endpoint: the diff streams whose diffs each trigger a `@depth20` snapshot.
    depth20: std::collections::HashSet<StreamId>,
    /// SBE endpoint: the trades of one taker collected for one `TradesStreamEvent`.
    trade_group: TradeGroup,
}

/// One taker's trades on the SBE endpoint: a run of `@trade` events of one symbol, one side and
/// consecutive ids taken together goes out as a single `TradesStreamEvent` (the JSON endpoint
/// sends one message per trade). Events of other streams (the bookTicker moments the taker's
/// fills make) are sent as they come, so the group goes out after them, when the run ends.
#[derive(Default)]
struct TradeGroup {
    symbol: usize,
    buyer_is_maker: bool,
    trade_lag_us: i64,
    entries: Vec<crate::sbe::TradeEntry>,
}

impl TradeGroup {
    /// Does a trade `id` of `symbol` on this side continue the run?
    fn continues(&self, symbol: usize, id: u64, buyer_is_maker: bool) -> bool {
        self.entries.last().is_some_and(|l| {
            self.symbol == symbol && self.buyer_is_maker == buyer_is_maker && l.id.checked_add(1) == Some(id)
        })
    }
}

/// Serves an upgraded connection until it ends; returns why it ended (already counted). `own`
/// is its entry in the hub's registry of live connections.
pub(crate) fn serve(
    hub: &Arc<Hub>,
    io: Io,
    id: u64,
    params: WsParams,
    cfg: ConnConfig,
    own: Arc<ConnFaults>,
) -> Disconnect {
    let _ = io.set_timeouts(None, Some(cfg.write_timeout));
    let ws = WebSocket::from_raw_socket(io, Role::Server, None);
    let cursor = hub.join_reader(id);
    let first_symbol_lower = lock(&hub.books).first().map(|b| b.spec.lower()).unwrap_or_else(|| "btcusdt".into());
    let symbols = if cfg.sbe { lock(&hub.books).iter().map(|b| b.spec.symbol.clone()).collect() } else { Vec::new() };
    let mut conn = Conn {
        hub,
        id,
        own,
        delayed: VecDeque::new(),
        close_at: None,
        ws,
        cfg,
        subs: params.subs,
        micros: params.micros,
        tier: params.tier,
        names: HashMap::new(),
        cursor,
        seen: hub.faults.gens(),
        // Its own entry is new: anything aimed at it since registration is still to act on.
        seen_own: [0; ONE_SHOTS],
        pending_drops: 0,
        stream_drops: HashMap::new(),
        diffs_seen: 0,
        sent: 0,
        pings: VecDeque::new(),
        ping_every_ms: 0,
        next_ping: None,
        opened: Instant::now(),
        caught_up: (Instant::now(), Duration::ZERO),
        incoming: VecDeque::new(),
        rng: Rng::new(id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now_us() as u64),
        out: String::with_capacity(4096),
        first_symbol_lower,
        sbe_out: Vec::new(),
        symbols,
        depth20: std::collections::HashSet::new(),
        trade_group: TradeGroup::default(),
    };
    Counters::bump(&hub.counters.ws_connections);
    conn.resolve();
    let why = conn.run();
    hub.leave_reader(id);
    hub.counters.disconnect(why);
    why
}

impl Conn<'_> {
    /// Interns the subscribed names (ids for the per-event check) and publishes them to the
    /// registry entry, where `Faults::connections` and per-symbol drops read them.
    fn resolve(&mut self) {
        let mut reg = lock(&self.hub.streams);
        let sbe = self.cfg.sbe;
        let is_depth20 = |n: &str| sbe && n.split_once('@').is_some_and(|(_, s)| s == "depth20");
        self.depth20 = self.subs.names.iter().filter(|n| is_depth20(n)).map(|n| reg.intern(&sbe_source(n))).collect();
        // Futures: a stream on the other tier is taken (it is listed) but never delivered, and
        // the legacy path carries only /public streams (its /market ones stopped on 2026-04-23).
        let (futures, tier) = (self.cfg.futures, self.tier.unwrap_or(Tier::Public));
        let on_tier = |n: &String| !futures || Tier::of_stream(n) == tier;
        let off = self.subs.names.iter().filter(|n| !on_tier(n)).count() as u64;
        if off > 0 {
            self.hub.counters.wrong_tier_streams.fetch_add(off, std::sync::atomic::Ordering::Relaxed);
        }
        self.names = self
            .subs
            .names
            .iter()
            .filter(|n| !is_depth20(n) && on_tier(n))
            .map(|n| {
                let id = if self.cfg.sbe { reg.intern(&sbe_source(n)) } else { reg.intern(n) };
                (id, Arc::from(n.as_str()))
            })
            .collect();
        drop(reg);
        // A drop armed on a stream no longer taken would otherwise wait for a resubscription.
        self.stream_drops.retain(|id, _| self.names.contains_key(id));
        lock(&self.own.streams).clone_from(&self.subs.names);
    }

    fn run(&mut self) -> Disconnect {
        loop {
            let timeout = self.wait_budget();
            let batch = match self.hub.take(self.id, &mut self.cursor, 1024, timeout) {
                Ok((b, left)) => {
                    if left == 0 {
                        self.caught_up = (Instant::now(), self.ws.get_ref().write_wait());
                    }
                    b
                }
                Err(TakeError::Lagged) => {
                    let (since, wait_then) = self.caught_up;
                    let waited = self.ws.get_ref().write_wait().saturating_sub(wait_then);
                    if client_not_to_blame(since.elapsed(), waited) {
                        Counters::bump(&self.hub.counters.slow_consumer_sim_behind);
                    }
                    return self.close_with(CloseCode::Policy, "Slow consumer", Disconnect::SlowConsumer);
                }
                Err(TakeError::Stopped) => {
                    return self.close_with(CloseCode::Away, "Simulator shutting down", Disconnect::SimShutdown)
                }
            };
            let fired = self.observe_faults();
            let injected = std::mem::take(&mut *lock(&self.own.inbox));
            let lag = self.lag();
            if lag.is_zero() && self.delayed.is_empty() {
                if let Some(why) = self.act_on(fired) {
                    return why;
                }
                if let Err(why) = self.write_injected(injected, false) {
                    return why;
                }
                if let Err(why) = self.send_events(&batch, now_us(), false) {
                    return why;
                }
            } else {
                self.hold_back(lag, fired, injected, batch);
                if let Err(why) = self.release_due() {
                    return why;
                }
            }
            if let Some(why) = self.timers() {
                return why;
            }
            if let Some(why) = self.drain_reads() {
                return why;
            }
        }
    }

    /// How long to wait for events: until the next timer, at most `poll_interval`.
    fn wait_budget(&self) -> Duration {
        let now = Instant::now();
        let mut d = self.cfg.poll_interval;
        if let Some(p) = self.next_ping {
            d = d.min(p.saturating_duration_since(now));
        }
        if let Some((_, dl)) = self.pings.front() {
            d = d.min(dl.saturating_duration_since(now));
        }
        if let Some(h) = self.delayed.front() {
            d = d.min(h.due.saturating_duration_since(now));
        }
        if let Some(c) = self.close_at {
            d = d.min(c.saturating_duration_since(now));
        }
        d.max(Duration::from_micros(100))
    }

    /// The connection's current lag.
    fn lag(&self) -> Duration {
        Duration::from_micros(self.own.lag_us.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// One-shot faults fired since the last look, global ones and those aimed at this
    /// connection together: either kind is acted on the same way, in the same place in the lag
    /// queue.
    fn observe_faults(&mut self) -> Fired {
        let gens = self.hub.faults.gens();
        let own = self.own.gens();
        let global: [u64; ONE_SHOTS] = std::array::from_fn(|i| gens[i].saturating_sub(self.seen[i]));
        let mine: [u64; ONE_SHOTS] = std::array::from_fn(|i| own[i].saturating_sub(self.seen_own[i]));
        self.seen = gens;
        self.seen_own = own;
        let counts = std::array::from_fn(|i| global[i] + mine[i]);
        let ms = |a: &std::sync::atomic::AtomicU64| Duration::from_millis(a.load(std::sync::atomic::Ordering::SeqCst));
        let shutdown = OneShot::ServerShutdown as usize;
        // Both fired at once: one event, and the earlier of the two closes.
        let close_after = match (global[shutdown] > 0, mine[shutdown] > 0) {
            (true, true) => ms(&self.hub.faults.shutdown_close_after_ms).min(ms(&self.own.shutdown_close_after_ms)),
            (false, true) => ms(&self.own.shutdown_close_after_ms),
            _ => ms(&self.hub.faults.shutdown_close_after_ms),
        };
        let drop_symbols = std::mem::take(&mut *lock(&self.own.drop_symbols));
        Fired { counts, close_after, drop_symbols }
    }

    fn act_on(&mut self, fired: Fired) -> Option<Disconnect> {
        if !fired.any() {
            return None;
        }
        self.pending_drops += fired.counts[OneShot::DropDiff as usize];
        for sym in &fired.drop_symbols {
            let of_sym = |n: &Arc<str>| depth_symbol(n).is_some_and(|s| s.eq_ignore_ascii_case(sym));
            for (&id, _) in self.names.iter().filter(|(_, n)| of_sym(n)) {
                *self.stream_drops.entry(id).or_default() += 1;
            }
        }
        if fired.has(OneShot::Malformed) && self.send_malformed().is_err() {
            return Some(Disconnect::IoError);
        }
        if fired.has(OneShot::UnknownStream) && self.send_unknown_stream().is_err() {
            return Some(Disconnect::IoError);
        }
        if fired.has(OneShot::Binary) && self.send_binary().is_err() {
            return Some(Disconnect::IoError);
        }
        if fired.has(OneShot::Abort) {
            return Some(self.abort());
        }
        if fired.has(OneShot::ServerShutdown) {
            if let Some(why) = self.server_shutdown(fired.close_after) {
                return Some(why);
            }
        }
        if fired.has(OneShot::Close1001) {
            return Some(self.close_with(CloseCode::Away, "Going away", Disconnect::Close1001));
        }
        None
    }

    /// Queues what this wake-up brought behind what is already held back, each due `lag` from
    /// now. Events of streams the connection does not take are not kept.
    fn hold_back(&mut self, lag: Duration, fired: Fired, injected: Vec<Inject>, batch: Vec<Arc<MarketEvent>>) {
        let due = Instant::now() + lag;
        let taken_us = now_us();
        if fired.any() {
            self.delayed.push_back(Delayed { due, taken_us, what: Pending::Faults(fired) });
        }
        for f in injected {
            self.delayed.push_back(Delayed { due, taken_us, what: Pending::Inject(f) });
        }
        for ev in batch {
            if self.names.contains_key(&ev.stream) || self.depth20.contains(&ev.stream) {
                self.delayed.push_back(Delayed { due, taken_us, what: Pending::Event(ev) });
            }
        }
    }

    /// Writes every held-back item that is due, in order (market events taken together go out
    /// together, as they would have without the lag).
    fn release_due(&mut self) -> Result<(), Disconnect> {
        let now = Instant::now();
        let mut run: Vec<Arc<MarketEvent>> = Vec::new();
        let mut run_us = 0;
        while self.delayed.front().is_some_and(|d| d.due <= now) {
            let Some(d) = self.delayed.pop_front() else { break };
            match d.what {
                Pending::Event(ev) => {
                    if !run.is_empty() && run_us != d.taken_us {
                        self.send_events(&run, run_us, true)?;
                        run.clear();
                    }
                    run_us = d.taken_us;
                    run.push(ev);
                }
                other => {
                    if !run.is_empty() {
                        self.send_events(&run, run_us, true)?;
                        run.clear();
                    }
                    match other {
                        Pending::Event(ev) => self.send_events(&[ev], d.taken_us, true)?,
                        Pending::Faults(f) => {
                            if let Some(why) = self.act_on(f) {
                                return Err(why);
                            }
                        }
                        Pending::Inject(f) => self.write_injected(vec![f], true)?,
                        Pending::Reply(r) => {
                            self.ws.send(Message::text(r)).map_err(|e| write_failed(&e))?;
                            Counters::bump(&self.hub.counters.lagged_messages);
                        }
                    }
                }
            }
        }
        if !run.is_empty() {
            self.send_events(&run, run_us, true)?;
        }
        Ok(())
    }

    /// Writes injected frames (`late`: held back by the lag).
    fn write_injected(&mut self, frames: Vec<Inject>, late: bool) -> Result<(), Disconnect> {
        for f in frames {
            self.write_inject(f).map_err(|e| write_failed(&e))?;
            Counters::bump(&self.hub.counters.frames_injected);
            if late {
                Counters::bump(&self.hub.counters.lagged_messages);
            }
        }
        Ok(())
    }

    fn write_inject(&mut self, f: Inject) -> tungstenite::Result<()> {
        match f {
            Inject::Text(t) => self.ws.write(Message::text(t))?,
            Inject::Fragmented(t, n) => {
                self.write_split(&t, n)?;
            }
            Inject::Binary(b) => self.ws.write(Message::Binary(Bytes::from(b)))?,
            Inject::Ping(p) => {
                self.ws.write(Message::Ping(Bytes::from(p.clone())))?;
                let limit = self.hub.faults.pong_timeout_ms.load(std::sync::atomic::Ordering::Relaxed).max(1);
                self.pings.push_back((p, Instant::now() + Duration::from_millis(limit)));
            }
            Inject::Raw(bytes) => {
                // Whatever tungstenite holds goes first, so the raw bytes land between frames.
                self.ws.flush()?;
                self.ws.get_mut().write_all(&bytes)?;
            }
        }
        self.ws.flush()
    }

    /// Writes `batch` (events taken at `taken_us`, the wall clock stamped into `E`); `late`: they
    /// were held back by the lag.
    fn send_events(&mut self, batch: &[Arc<MarketEvent>], taken_us: i64, late: bool) -> Result<(), Disconnect> {
        if batch.is_empty() {
            return Ok(());
        }
        let f = &self.hub.faults;
        let drop_every = f.drop_every.load(std::sync::atomic::Ordering::Relaxed);
        let malformed_every = f.malformed_every.load(std::sync::atomic::Ordering::Relaxed);
        let unknown_every = f.unknown_every.load(std::sync::atomic::Ordering::Relaxed);
        let binary_every = f.binary_every.load(std::sync::atomic::Ordering::Relaxed);
        let now = taken_us;
        let mut wrote = false;
        for ev in batch {
            if self.depth20.contains(&ev.stream) && self.send_depth20(ev, now)? {
                wrote = true;
                self.sent += 1;
                Counters::bump(&self.hub.counters.messages_sent);
            }
            let Some(name) = self.names.get(&ev.stream).cloned() else {
                continue;
            };
            if ev.kind == StreamKind::Depth {
                self.diffs_seen += 1;
                if let Some(n) = self.stream_drops.get_mut(&ev.stream) {
                    // Entries are at least 1: the last drop removes its entry.
                    *n -= 1;
                    if *n == 0 {
                        self.stream_drops.remove(&ev.stream);
                    }
                    Counters::bump(&self.hub.counters.gaps_injected);
                    continue;
                }
                let periodic = drop_every > 0 && self.diffs_seen % drop_every == 0;
                if self.pending_drops > 0 || periodic {
                    if !periodic {
                        self.pending_drops -= 1;
                    }
                    Counters::bump(&self.hub.counters.gaps_injected);
                    continue;
                }
            }
            if self.cfg.sbe {
                if let crate::event::Fields::Trade { id, price, qty, buyer_is_maker, trade_lag_us } = ev.fields {
                    if !self.trade_group.continues(ev.symbol, id, buyer_is_maker) {
                        wrote |= self.send_trade_group(now, late)?;
                    }
                    let g = &mut self.trade_group;
                    (g.symbol, g.buyer_is_maker, g.trade_lag_us) = (ev.symbol, buyer_is_maker, trade_lag_us);
                    g.entries.push(crate::sbe::TradeEntry { id, price, qty, buyer_is_maker });
                    continue;
                }
                let symbol = self.symbols.get(ev.symbol).map_or("", String::as_str);
                let mut buf = std::mem::take(&mut self.sbe_out);
                let ok = matches!(
                    crate::sbe::encode_event(ev, symbol, now, crate::sbe::Scale::Coarsest, &mut buf),
                    Some(Ok(()))
                );
                let r = if ok { self.ws.write(Message::Binary(Bytes::copy_from_slice(&buf))) } else { Ok(()) };
                self.sbe_out = buf;
                r.map_err(|e| write_failed(&e))?;
                if ok {
                    wrote = true;
                    self.sent += 1;
                    Counters::bump(&self.hub.counters.messages_sent);
                    if late {
                        Counters::bump(&self.hub.counters.lagged_messages);
                    }
                }
                continue;
            }
            let mut out = std::mem::take(&mut self.out);
            out.clear();
            if self.subs.combined {
                out.push_str("{\"stream\":\"");
                out.push_str(&name);
                out.push_str("\",\"data\":");
                ev.payload.render_into(&mut out, now, self.micros);
                out.push('}');
            } else {
                ev.payload.render_into(&mut out, now, self.micros);
            }
            let r = self.send_text(&out);
            self.out = out;
            r.map_err(|e| write_failed(&e))?;
            wrote = true;
            self.sent += 1;
            Counters::bump(&self.hub.counters.messages_sent);
            if late {
                Counters::bump(&self.hub.counters.lagged_messages);
            }
            let sent = self.sent;
            let every = |n: u64| n > 0 && sent % n == 0;
            if every(malformed_every) {
                self.send_malformed().map_err(|e| write_failed(&e))?;
            }
            if every(unknown_every) {
                self.send_unknown_stream().map_err(|e| write_failed(&e))?;
            }
            if every(binary_every) {
                self.send_binary().map_err(|e| write_failed(&e))?;
            }
        }
        wrote |= self.send_trade_group(now, late)?;
        if wrote {
            self.ws.flush().map_err(|e| write_failed(&e))?;
        }
        Ok(())
    }

    /// SBE endpoint: writes the collected trades as one `TradesStreamEvent` stamped `now_us`
    /// (none collected: nothing). True when a frame was written.
    fn send_trade_group(&mut self, now_us: i64, late: bool) -> Result<bool, Disconnect> {
        if self.trade_group.entries.is_empty() {
            return Ok(false);
        }
        let g = std::mem::take(&mut self.trade_group);
        let symbol = self.symbols.get(g.symbol).map_or("", String::as_str);
        let m = crate::sbe::Trades {
            event_time_us: now_us,
            transact_time_us: now_us - g.trade_lag_us,
            symbol,
            trades: &g.entries,
        };
        let mut buf = std::mem::take(&mut self.sbe_out);
        let ok = crate::sbe::encode_trades(&m, crate::sbe::Scale::Coarsest, &mut buf).is_ok();
        let r = if ok { self.ws.write(Message::Binary(Bytes::copy_from_slice(&buf))) } else { Ok(()) };
        self.sbe_out = buf;
        // The group's buffer is kept for the next one.
        let mut entries = g.entries;
        entries.clear();
        self.trade_group.entries = entries;
        r.map_err(|e| write_failed(&e))?;
        if ok {
            self.sent += 1;
            Counters::bump(&self.hub.counters.messages_sent);
            if late {
                Counters::bump(&self.hub.counters.lagged_messages);
            }
        }
        Ok(ok)
    }

    /// SBE endpoint: writes the `@depth20` snapshot (`DepthSnapshotStreamEvent`) of the reference
    /// book right after the diff `ev`, stamped `now_us`. False when nothing was written (not a
    /// diff, or the reference state is no longer held).
    fn send_depth20(&mut self, ev: &MarketEvent, now_us: i64) -> Result<bool, Disconnect> {
        let crate::event::Fields::Depth(diff) = &ev.fields else { return Ok(false) };
        let Some(symbol) = self.symbols.get(ev.symbol) else { return Ok(false) };
        let Some(book) = self.hub.reference_book(symbol, diff.last_id) else { return Ok(false) };
        let snap = crate::sbe::DepthSnapshot::of_book(&book, crate::sbe::DEPTH20_LEVELS, now_us);
        let mut buf = std::mem::take(&mut self.sbe_out);
        buf.clear();
        let ok = crate::sbe::encode_depth_snapshot(&snap, crate::sbe::Scale::Coarsest, &mut buf).is_ok();
        let r = if ok { self.ws.write(Message::Binary(Bytes::copy_from_slice(&buf))) } else { Ok(()) };
        self.sbe_out = buf;
        r.map_err(|e| write_failed(&e))?;
        Ok(ok)
    }

    /// Writes one text message, split into frames when the fragmentation fault is on.
    fn send_text(&mut self, text: &str) -> tungstenite::Result<()> {
        let n = self.hub.faults.fragment.load(std::sync::atomic::Ordering::Relaxed) as usize;
        self.write_split(text, n)
    }

    /// Writes one text message in `n` frames (one frame when `n` < 2).
    fn write_split(&mut self, text: &str, n: usize) -> tungstenite::Result<()> {
        let n = n.min(text.len());
        if n < 2 {
            return self.ws.write(Message::text(text));
        }
        let bytes = text.as_bytes();
        let chunk = bytes.len().div_ceil(n);
        let mut parts = bytes.chunks(chunk).peekable();
        let mut first = true;
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            let op = if first { OpCode::Data(OpData::Text) } else { OpCode::Data(OpData::Continue) };
            first = false;
            self.ws.write(Message::Frame(Frame::message(Bytes::copy_from_slice(part), op, last)))?;
        }
        Counters::bump(&self.hub.counters.fragmented_messages);
        Ok(())
    }

    fn send_malformed(&mut self) -> tungstenite::Result<()> {
        let e = now_us() / 1000;
        let text = if self.subs.combined {
            format!("{{\"stream\":\"{}@trade\",\"data\":{{\"e\":\"trade\",\"E\":{e},\"s\":", self.first_symbol_lower)
        } else {
            format!("{{\"e\":\"trade\",\"E\":{e},\"s\":\"BTC")
        };
        self.ws.write(Message::text(text))?;
        self.ws.flush()?;
        Counters::bump(&self.hub.counters.malformed_sent);
        Ok(())
    }

    fn send_unknown_stream(&mut self) -> tungstenite::Result<()> {
        let e = now_us() / 1000;
        let sym = self.first_symbol_lower.clone();
        let upper = sym.to_ascii_uppercase();
        let data = format!(
            "{{\"e\":\"kline\",\"E\":{e},\"s\":\"{upper}\",\"k\":{{\"t\":{e},\"T\":{e},\"s\":\"{upper}\",\"i\":\"1m\",\"f\":1,\"L\":1,\"o\":\"1.00000000\",\"c\":\"1.00000000\",\"h\":\"1.00000000\",\"l\":\"1.00000000\",\"v\":\"0.00000000\",\"n\":0,\"x\":false,\"q\":\"0.00000000\",\"V\":\"0.00000000\",\"Q\":\"0.00000000\",\"B\":\"0\"}}}}"
        );
        let text = if self.subs.combined { format!("{{\"stream\":\"{sym}@kline_1m\",\"data\":{data}}}") } else { data };
        self.ws.write(Message::text(text))?;
        self.ws.flush()?;
        Counters::bump(&self.hub.counters.unknown_stream_sent);
        Ok(())
    }

    fn send_binary(&mut self) -> tungstenite::Result<()> {
        let mut b = vec![0u8, 1, 2, 0xff];
        b.extend_from_slice(b"tickfeed-sim binary frame");
        self.ws.write(Message::Binary(Bytes::from(b)))?;
        self.ws.flush()?;
        Counters::bump(&self.hub.counters.binary_sent);
        Ok(())
    }

    /// Sends the `serverShutdown` event, then closes at once or (`close_after` > 0) that much
    /// later, streaming meanwhile. `None` while the close is still to come.
    fn server_shutdown(&mut self, close_after: Duration) -> Option<Disconnect> {
        let now = now_us();
        let e = if self.micros { now } else { now / 1000 };
        let data = format!("{{\"e\":\"serverShutdown\",\"E\":{e}}}");
        let text =
            if self.subs.combined { format!("{{\"stream\":\"!serverShutdown\",\"data\":{data}}}") } else { data };
        if self.ws.send(Message::text(text)).is_err() {
            return Some(Disconnect::IoError);
        }
        Counters::bump(&self.hub.counters.server_shutdowns_sent);
        if close_after.is_zero() {
            return Some(self.close_with(CloseCode::Away, "Server shutdown", Disconnect::ServerShutdown));
        }
        let at = Instant::now() + close_after;
        self.close_at = Some(self.close_at.map_or(at, |c| c.min(at)));
        None
    }

    /// SO_LINGER 0 and no shutdown(): the socket's last descriptor closes when this connection's
    /// thread ends (the server drops its clone right after), and the kernel sends RST, not FIN.
    fn abort(&mut self) -> Disconnect {
        let _ = self.ws.flush();
        crate::io::set_linger_zero(self.ws.get_ref().tcp());
        Disconnect::Abort
    }

    /// Sends a close frame, waits briefly for the client's close reply, then ends.
    fn close_with(&mut self, code: CloseCode, reason: &str, why: Disconnect) -> Disconnect {
        let frame = CloseFrame { code, reason: reason.into() };
        if self.ws.close(Some(frame)).is_ok() {
            let _ = self.ws.flush();
            let io = self.ws.get_ref();
            let _ = io.set_nonblocking(false);
            let _ = io.set_timeouts(Some(Duration::from_millis(500)), Some(Duration::from_millis(500)));
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                match self.ws.read() {
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
        }
        let _ = self.ws.get_ref().tcp().shutdown(std::net::Shutdown::Both);
        why
    }

    fn timers(&mut self) -> Option<Disconnect> {
        let now = Instant::now();
        if self.close_at.is_some_and(|t| now >= t) {
            return Some(self.close_with(CloseCode::Away, "Server shutdown", Disconnect::ServerShutdown));
        }
        let f = &self.hub.faults;
        let max_age = f.max_age_ms.load(std::sync::atomic::Ordering::Relaxed);
        if max_age > 0 && now.duration_since(self.opened) >= Duration::from_millis(max_age) {
            return Some(self.close_with(CloseCode::Normal, "Connection age limit", Disconnect::MaxAge));
        }
        if let Some((_, deadline)) = self.pings.front() {
            if now >= *deadline {
                return Some(self.close_with(CloseCode::Policy, "Pong timeout", Disconnect::PongTimeout));
            }
        }
        let every = f.ping_interval_ms.load(std::sync::atomic::Ordering::Relaxed);
        if every != self.ping_every_ms {
            self.ping_every_ms = every;
            self.next_ping = (every > 0).then(|| now + Duration::from_millis(every));
        }
        if let Some(due) = self.next_ping {
            if now >= due {
                let payload: Vec<u8> = self.rng.next_u64().to_le_bytes().to_vec();
                if self.ws.send(Message::Ping(Bytes::from(payload.clone()))).is_err() {
                    return Some(Disconnect::IoError);
                }
                Counters::bump(&self.hub.counters.pings_sent);
                let limit = f.pong_timeout_ms.load(std::sync::atomic::Ordering::Relaxed).max(1);
                self.pings.push_back((payload, now + Duration::from_millis(limit)));
                self.next_ping = Some(now + Duration::from_millis(every));
            }
        }
        None
    }

    /// Reads whatever the client sent, without blocking.
    fn drain_reads(&mut self) -> Option<Disconnect> {
        if self.ws.get_ref().set_nonblocking(true).is_err() {
            return Some(Disconnect::IoError);
        }
        let mut replies = Vec::new();
        let mut outcome = None;
        loop {
            let msg = self.ws.read();
            // Binance counts every one of these, pongs to its own pings included.
            let counted =
                matches!(&msg, Ok(Message::Text(_) | Message::Binary(_) | Message::Ping(_) | Message::Pong(_)));
            if counted && self.over_limit() {
                outcome = Some(Disconnect::RateLimit);
                break;
            }
            match msg {
                Ok(Message::Text(t)) => {
                    Counters::bump(&self.hub.counters.control_requests);
                    let max_streams = self.hub.faults.max_streams.load(std::sync::atomic::Ordering::Relaxed);
                    let o = control::handle(t.as_str(), &mut self.subs, max_streams as usize, self.cfg.sbe);
                    if o.error {
                        Counters::bump(&self.hub.counters.control_errors);
                    }
                    if o.too_many_streams {
                        Counters::bump(&self.hub.counters.streams_refused);
                    }
                    if o.changed {
                        self.resolve();
                    }
                    replies.push(o.reply);
                }
                Ok(Message::Ping(_)) => Counters::bump(&self.hub.counters.client_pings),
                Ok(Message::Pong(p)) => {
                    if let Some(why) = self.on_pong(&p) {
                        outcome = Some(why);
                        break;
                    }
                }
                Ok(Message::Close(_)) => {
                    outcome = Some(Disconnect::ClientClose);
                    break;
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                    outcome = Some(Disconnect::ClientClose);
                    break;
                }
                Err(_) => {
                    outcome = Some(Disconnect::IoError);
                    break;
                }
            }
        }
        let _ = self.ws.get_ref().set_nonblocking(false);
        match outcome {
            Some(Disconnect::ClientClose) => {
                let _ = self.ws.flush();
                return Some(Disconnect::ClientClose);
            }
            Some(Disconnect::PongMismatch) => {
                return Some(self.close_with(CloseCode::Policy, "Pong payload mismatch", Disconnect::PongMismatch));
            }
            Some(Disconnect::RateLimit) => {
                return Some(self.close_with(CloseCode::Policy, "Too many messages", Disconnect::RateLimit));
            }
            Some(other) => return Some(other),
            None => {}
        }
        if !self.lag().is_zero() || !self.delayed.is_empty() {
            let due = Instant::now() + self.lag();
            let taken_us = now_us();
            self.delayed.extend(replies.drain(..).map(|r| Delayed { due, taken_us, what: Pending::Reply(r) }));
        }
        for r in replies {
            if self.ws.write(Message::text(r)).is_err() {
                return Some(Disconnect::IoError);
            }
        }
        // Also sends tungstenite's queued automatic pongs to client pings.
        match self.ws.flush() {
            Ok(()) => None,
            Err(_) => Some(Disconnect::IoError),
        }
    }

    /// Records one inbound frame; true if that exceeds the messages-per-second limit.
    fn over_limit(&mut self) -> bool {
        let limit = self.hub.faults.max_incoming.load(std::sync::atomic::Ordering::Relaxed) as usize;
        if limit == 0 {
            return false;
        }
        let now = Instant::now();
        while self.incoming.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            self.incoming.pop_front();
        }
        self.incoming.push_back(now);
        self.incoming.len() > limit
    }

    /// Binance's rule: a pong must carry a copy of the ping payload. Empty pongs are unsolicited
    /// keep-alives (allowed, but they satisfy nothing); a non-empty pong matching no outstanding
    /// ping is a protocol violation.
    fn on_pong(&mut self, payload: &[u8]) -> Option<Disconnect> {
        Counters::bump(&self.hub.counters.pongs_received);
        if let Some(i) = self.pings.iter().position(|(p, _)| p.as_slice() == payload) {
            self.pings.drain(..=i);
            Counters::bump(&self.hub.counters.pongs_matched);
            return None;
        }
        if payload.is_empty() || self.pings.is_empty() {
            Counters::bump(&self.hub.counters.pongs_unsolicited);
            return None;
        }
        Some(Disconnect::PongMismatch)
    }
}

/// Whether a connection that fell behind the log since it was last caught up (`since` ago) fell
/// behind through no fault of its client: it spent less than half that time waiting on writes to
/// the client (`waited`), so the rest went to the simulator itself (its own work, or a thread that
/// was not scheduled, or a market burst bigger than the log).
fn client_not_to_blame(since: Duration, waited: Duration) -> bool {
    waited * 2 < since
}

/// A write that times out means the client stopped reading: a slow consumer, as Binance would
/// call it. Anything else is an I/O failure.
fn write_failed(e: &tungstenite::Error) -> Disconnect {
    match e {
        tungstenite::Error::Io(io) if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            Disconnect::SlowConsumer
        }
        _ => Disconnect::IoError,
    }
}

/// Writes the 101 answer for a websocket upgrade.
pub(crate) fn write_upgrade<W: Write>(w: &mut W, key: &str) -> io::Result<()> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let resp = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
    w.write_all(resp.as_bytes())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn a_slow_consumer_is_blamed_on_whoever_took_the_time() {
        let s = Duration::from_secs(1);
        assert!(!client_not_to_blame(s * 2, s * 2), "blocked writing all along: the client");
        assert!(!client_not_to_blame(s * 2, s), "half the time writing: still the client");
        assert!(client_not_to_blame(s * 2, s / 10), "hardly writing: the simulator");
    }

    #[test]
    fn parses_targets() {
        let p = parse_target(
            "/stream",
            &q(&[("streams", "btcusdt@depth@100ms/btcusdt@trade"), ("timeUnit", "MICROSECOND")]),
        )
        .unwrap();
        assert!(p.subs.combined && p.micros);
        assert_eq!(p.subs.names, vec!["btcusdt@depth@100ms", "btcusdt@trade"]);
        let p = parse_target("/ws/btcusdt@trade", &[]).unwrap();
        assert!(!p.subs.combined && !p.micros);
        assert_eq!(p.subs.names, vec!["btcusdt@trade"]);
        assert_eq!(parse_target("/ws", &[]).unwrap().subs.names, Vec::<String>::new());
        let p = parse_target("/stream", &q(&[("streams", "a@trade/b@trade/a@trade")])).unwrap();
        assert_eq!(p.subs.names, vec!["a@trade", "b@trade"], "a repeated stream is one subscription");
        assert!(parse_target("/stream", &q(&[("timeUnit", "Microsecond")])).is_err());
        assert!(parse_target("/wsx", &[]).is_err());
        assert!(parse_target("/ws/x", &q(&[("timeUnit", "millisecond")])).is_ok());
    }
}
