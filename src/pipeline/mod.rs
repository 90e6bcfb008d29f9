//! One frame in, books updated, lines out: the path shared by the live handler and replay.
//!
//! [`Pipeline::on_frame`] takes a complete websocket text payload (or a recorded line's JSON) and
//! its local receive time, and does everything up to appending output lines: envelope split,
//! typed decode, latency, sync engine, ladder, bookTicker audit, counters. Snapshots are I/O the
//! pipeline does not do: it reports which symbol wants one ([`Pipeline::poll_snapshot_request`])
//! and takes the body when the caller has it ([`Pipeline::on_snapshot`]). Neither clock nor
//! socket is touched here, so live, replay, tests and benches all run exactly this code.

use std::collections::HashMap;

use crate::binance::{
    self, parse_futures_stream_name, parse_stream_name, split_envelope, DecodeError, Envelope, LevelBuf, RawEvent,
    StreamKind,
};
use crate::book::audit::{Audit, Mismatch};
use crate::book::fixed::{TickSize, Units};
use crate::book::sync::{BookConfig, DiffOutcome, OrderBook, SnapshotOutcome};
use crate::book::top::{self, Top};
mod sbe;
mod sequence;

pub use sbe::{Wire, DEPTH20_LEVELS};

pub use sequence::{book_position, futures_book_position, Ids, Position, Sequence};

use crate::net::tsc::StageClock;
use crate::notice::{Excerpt, Notice, Notices, ResyncCause, Sym};
use crate::output::stats::Stage;
use crate::output::stats::{Stats, SymbolSummary};
use crate::output::{BookLine, Output, OutputMode};
use crate::venue::Venue;
use crate::wire::tap::Tap;

/// How the pipeline is set up.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// Output format.
    pub output: OutputMode,
    /// Book sizing.
    pub book: BookConfig,
    /// Add a book for every new symbol seen (replay) instead of counting it as a bad message.
    pub auto_symbols: bool,
    /// Bytes reserved for the output buffer.
    pub out_capacity: usize,
    /// The market the frames come from: on [`Venue::UsdM`] diff depth is decoded as futures
    /// (`T`, `pu` required: a depth frame without them is a bad message) and every book follows
    /// the futures procedure, whatever `book.procedure` says.
    pub venue: Venue,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            output: OutputMode::Tob,
            book: BookConfig::default(),
            auto_symbols: false,
            out_capacity: 256 * 1024,
            venue: Venue::Spot,
        }
    }
}

/// One symbol's state.
pub struct SymbolState {
    symbol: String,
    /// The symbol for notices (inline: building a notice does not allocate).
    name: Sym,
    lower: String,
    book: OrderBook,
    audit: Audit,
    trades: u64,
    /// Its book lines are written (`--print`).
    printed: bool,
    /// Trade ids processed (duplicates are at or below the last).
    trade_ids: Sequence,
    /// Aggregate trade ids processed.
    agg_ids: Sequence,
    /// bookTicker update ids processed (a repeat is a second connection's copy).
    ticker_ids: Sequence,
    last_price: Units,
    /// Receive time (wall ns) of the snapshot that first synced the book.
    first_synced_ns: Option<i64>,
    /// Price decimals of its book lines when exchangeInfo gave them (futures' `pricePrecision`);
    /// `None`: the tick's.
    price_decimals: Option<u32>,
    /// SBE `@depth20` audit.
    depth20: sbe::Depth20,
}

impl SymbolState {
    /// Uppercase symbol.
    pub fn symbol(&self) -> &str {
        &self.symbol
    }
    /// The book.
    pub fn book(&self) -> &OrderBook {
        &self.book
    }
    /// The audit.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }
    /// The last traded or updated price seen, in units (0 before any).
    pub fn last_price(&self) -> Units {
        self.last_price
    }
    /// The id sequence of an id-per-event stream (trades, aggTrades); `None` for the others
    /// (a book is its own sequence: see [`sequence::book_position`]).
    pub fn sequence(&self, kind: StreamKind) -> Option<&Sequence> {
        match kind {
            StreamKind::Trade => Some(&self.trade_ids),
            StreamKind::AggTrade => Some(&self.agg_ids),
            StreamKind::Depth | StreamKind::BookTicker => None,
        }
    }
}

/// What a frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameOutcome {
    /// A market event for symbol index `symbol`, processed.
    Market {
        /// Index into [`Pipeline::symbols`].
        symbol: usize,
        /// Which stream.
        kind: StreamKind,
        /// The ids it carried.
        ids: Ids,
    },
    /// A market event already processed (the same ids seen on another connection): skipped.
    Duplicate {
        /// Index into [`Pipeline::symbols`].
        symbol: usize,
        /// Which stream.
        kind: StreamKind,
        /// The ids it carried.
        ids: Ids,
    },
    /// A market event the admission callback held back: not processed, nothing counted; the
    /// caller keeps the frame and feeds it again later.
    Held {
        /// Index into [`Pipeline::symbols`].
        symbol: usize,
        /// Which stream.
        kind: StreamKind,
        /// The ids it carried.
        ids: Ids,
    },
    /// An unwrapped REST depth body: the caller knows which symbol it is for and calls
    /// [`Pipeline::on_snapshot`].
    Snapshot,
    /// serverShutdown: this connection is about to close.
    ServerShutdown,
    /// A reply to a control request.
    Control,
    /// Not decodable or not subscribed: counted in `bad_messages`.
    Bad(DecodeError),
    /// An SBE `@depth20` message (an audit of the book, not a sequenced stream); `duplicate`: its
    /// id was taken already (another connection's copy), skipped.
    Depth20 {
        /// Index into [`Pipeline::symbols`].
        symbol: usize,
        /// Its bookUpdateId.
        id: u64,
        /// A repeat of an id already taken.
        duplicate: bool,
    },
}

/// A market event as decoded, before it is processed: what an admission callback is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    /// Index into [`Pipeline::symbols`].
    pub symbol: usize,
    /// Which stream.
    pub kind: StreamKind,
    /// The ids it carries.
    pub ids: Ids,
    /// Where it stands against what its stream has processed (bookTickers: `Duplicate` or
    /// `Next`).
    pub position: Position,
    /// A diff: its book is synced (false while it buffers for a snapshot). True for other streams.
    pub synced: bool,
    /// A USDⓈ-M futures diff's `pu` (the previous diff's `u`); `None` on spot and for other
    /// streams.
    pub prev_final: Option<u64>,
}

impl Sequenced {
    /// The first id its stream must have processed up to (less one) for it to continue: `U` on
    /// spot (`id + 1 >= U`), `pu + 1` on futures, whose ids skip (`id >= pu`).
    pub fn first_needed(&self) -> u64 {
        self.prev_final.map_or(self.ids.first, |pu| pu.saturating_add(1))
    }
}

/// An admission callback's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Process the event now.
    Process,
    /// Do not process it now ([`FrameOutcome::Held`]).
    Hold,
}

/// A decoded market event, before it is processed.
struct Decoded {
    ids: Ids,
    position: Position,
    /// Exchange event time `E`, for latency (a bookTicker has none).
    event_time: Option<i64>,
    /// A trade's price (0 for the others).
    price: Units,
    /// A trade's quantity, whether the buyer was the maker, and its trade time `T` (for the
    /// fan-out records; zeros for the others).
    trade: (Units, bool, i64),
    /// A futures diff's `pu` (the previous diff's `u`); `None` on spot.
    prev_final: Option<u64>,
    /// A bookTicker's best bid and ask.
    ticker: ((Units, Units), (Units, Units)),
}

const NO_TICKER: ((Units, Units), (Units, Units)) = ((0, 0), (0, 0));
const NO_TRADE: (Units, bool, i64) = (0, false, 0);

/// The shared frame-processing path.
pub struct Pipeline {
    symbols: Vec<SymbolState>,
    /// Each symbol's index by its lowercase name (a stream name's symbol), for many symbols.
    by_name: HashMap<String, usize>,
    levels: LevelBuf,
    out: Output,
    stats: Stats,
    cfg: PipelineConfig,
    notices: Notices,
    /// Some book may want a snapshot: set by every call that can make one want it, cleared by a
    /// scan that finds none, so polling a thousand quiet books costs one load.
    snapshot_wanted: bool,
    /// The run's start (wall ns), for `synced_after_ms`.
    origin_ns: Option<i64>,
    /// Times the JSON, book and output stages of each message when set (see
    /// [`Pipeline::set_stage_clock`]).
    stage_clock: Option<StageClock>,
    /// Ticks spent writing output during the current message.
    out_ticks: u64,
    /// The fan-out records' writer (`--publish`), when set.
    tap: Option<Box<Tap>>,
    /// The current event's exchange time, µs (0 when it has none), for the records.
    event_us: i64,
    /// The last receive time seen, for records written outside a frame (a reset).
    last_recv_ns: i64,
    /// The SBE path's reused buffers.
    sbe: sbe::SbeScratch,
}

/// Exchange event time to microseconds: with `timeUnit=MICROSECOND` E is ~1.7e15, else ~1.7e12.
#[inline]
pub(crate) fn event_time_us(e: i64) -> i64 {
    if e > 100_000_000_000_000 {
        e
    } else {
        e.saturating_mul(1000)
    }
}

impl Pipeline {
    /// A pipeline for `symbols` (any case). Symbols can also be added later.
    pub fn new(mut cfg: PipelineConfig, symbols: &[&str]) -> Pipeline {
        if cfg.venue == Venue::UsdM {
            cfg.book.procedure = cfg.venue.procedure();
        }
        let mut p = Pipeline {
            symbols: Vec::new(),
            by_name: HashMap::new(),
            levels: LevelBuf::with_capacity(2048),
            out: Output::new(cfg.output, cfg.out_capacity),
            stats: Stats::new(),
            cfg,
            notices: Notices::default(),
            snapshot_wanted: false,
            origin_ns: None,
            stage_clock: None,
            out_ticks: 0,
            tap: None,
            event_us: 0,
            last_recv_ns: 0,
            sbe: sbe::SbeScratch::default(),
        };
        for s in symbols {
            p.add_symbol(s, None);
        }
        p
    }

    /// Adds a symbol (no-op if present); returns its index. `tick` from exchangeInfo, or `None`
    /// to infer it from the first snapshot.
    pub fn add_symbol(&mut self, symbol: &str, tick: Option<TickSize>) -> usize {
        if let Some(i) = self.find(symbol) {
            return i;
        }
        self.by_name.insert(symbol.to_ascii_lowercase(), self.symbols.len());
        self.symbols.push(SymbolState {
            symbol: symbol.to_ascii_uppercase(),
            name: Sym::new(&symbol.to_ascii_uppercase()),
            lower: symbol.to_ascii_lowercase(),
            book: OrderBook::new(self.cfg.book, tick),
            audit: Audit::default(),
            trades: 0,
            printed: true,
            trade_ids: Sequence::default(),
            agg_ids: Sequence::default(),
            ticker_ids: Sequence::default(),
            last_price: 0,
            first_synced_ns: None,
            price_decimals: None,
            depth20: sbe::Depth20::default(),
        });
        let i = self.symbols.len() - 1;
        self.tap_symbol(i);
        i
    }

    /// The run's start, wall-clock ns: each book's `synced_after_ms` (start to first sync) counts
    /// from it. A run without one (replay) reports no such figure.
    pub fn set_origin_ns(&mut self, ns: i64) {
        self.origin_ns = Some(ns);
    }

    /// Sets a symbol's tick size (from exchangeInfo).
    pub fn set_tick(&mut self, symbol: usize, tick: TickSize) {
        self.symbols[symbol].book.set_tick(tick);
        self.snapshot_wanted = true;
        self.tap_symbol(symbol);
    }

    /// Sets the decimals a symbol's prices are printed with (futures' `pricePrecision`), in
    /// place of its tick's.
    pub fn set_price_decimals(&mut self, symbol: usize, decimals: u32) {
        self.symbols[symbol].price_decimals = Some(decimals.min(8));
        self.tap_symbol(symbol);
    }

    /// Writes the fan-out records (`--publish`) with `tap` from now on; every symbol already
    /// added is announced, and every synced book written as a snapshot.
    pub fn set_tap(&mut self, tap: Option<Tap>) {
        self.tap = tap.map(Box::new);
        for i in 0..self.symbols.len() {
            self.tap_symbol(i);
            self.tap_state(i, self.last_recv_ns, None);
        }
    }

    /// The fan-out records' writer, for the driver to take the records written.
    pub fn tap_mut(&mut self) -> Option<&mut Tap> {
        self.tap.as_deref_mut()
    }

    /// Bytes of fan-out records waiting for the driver.
    pub fn tap_pending(&self) -> usize {
        self.tap.as_ref().map_or(0, |t| t.pending().len())
    }

    /// Writes every symbol's `symbol` record and a snapshot record of every synced book (a
    /// subscriber joined, or the periodic round): a subscriber that joins late learns the names
    /// and the books from them.
    pub fn publish_snapshots(&mut self, recv_ns: i64) {
        if self.tap.is_none() {
            return;
        }
        for i in 0..self.symbols.len() {
            self.tap_symbol(i);
        }
        let Some(tap) = self.tap.as_deref_mut() else { return };
        for (i, s) in self.symbols.iter().enumerate() {
            tap.snapshot(i as u32, &s.book, recv_ns);
        }
    }

    fn tap_symbol(&mut self, i: usize) {
        let Some(tap) = self.tap.as_deref_mut() else { return };
        let s = &self.symbols[i];
        let decimals = s.price_decimals.unwrap_or_else(|| s.book.tick().map_or(8, |t| t.decimals()));
        tap.symbol(i as u32, &s.symbol, s.book.tick(), None, decimals);
    }

    /// After anything that can change a book's sync state: its `status` (and, newly synced, its
    /// `snapshot` and `top`) records.
    fn tap_state(&mut self, i: usize, recv_ns: i64, cause: Option<ResyncCause>) {
        let Some(tap) = self.tap.as_deref_mut() else { return };
        let book = &self.symbols[i].book;
        let was = tap.published_synced(i as u32);
        let code = cause.map_or(0, |c| c as u8 + 1);
        tap.state(i as u32, book, recv_ns, cause == Some(ResyncCause::Gap), code);
        if !was && book.is_synced() {
            tap.top(i as u32, book, self.event_us, recv_ns);
        }
    }

    /// The venue the pipeline decodes for.
    pub fn venue(&self) -> Venue {
        self.cfg.venue
    }

    /// Index of a symbol, any case.
    pub fn find(&self, symbol: &str) -> Option<usize> {
        match self.by_name.get(symbol) {
            Some(&i) => Some(i),
            None => self.symbols.iter().position(|s| s.lower.eq_ignore_ascii_case(symbol)),
        }
    }

    /// The symbols, in the order added.
    pub fn symbols(&self) -> &[SymbolState] {
        &self.symbols
    }

    /// Counters and histograms.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Counters and histograms, for the caller's own counts (reconnects, pings, process time).
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// The output buffer.
    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    /// What the pipeline has to tell a person (gaps, resyncs, mismatches, bad messages, ...), for
    /// the driver to drain after each batch and write through its [`crate::notice::NoticeLog`].
    pub fn notices(&mut self) -> &mut Notices {
        &mut self.notices
    }

    /// The next symbol that wants a snapshot fetched, if any (see [`OrderBook::poll_snapshot_request`]).
    #[must_use]
    pub fn poll_snapshot_request(&mut self) -> Option<usize> {
        if !self.snapshot_wanted {
            return None;
        }
        let found = self.symbols.iter_mut().position(|s| s.book.poll_snapshot_request());
        self.snapshot_wanted = found.is_some();
        found
    }

    /// The snapshot for `symbol` could not be fetched; it will be asked for again.
    pub fn snapshot_failed(&mut self, symbol: usize) {
        self.symbols[symbol].book.snapshot_failed();
        self.snapshot_wanted = true;
    }

    /// Which symbols' book lines are written: `Some(list)` only those (any case), `None` every
    /// symbol (the default). Events (`ndjson`) are not filtered.
    pub fn set_printed(&mut self, only: Option<&[String]>) {
        for s in &mut self.symbols {
            s.printed = only.is_none_or(|l| l.iter().any(|x| x.eq_ignore_ascii_case(&s.symbol)));
        }
    }

    /// Forgets every book (after a reconnect); each resyncs from its next diff.
    pub fn reset_books(&mut self) {
        for i in 0..self.symbols.len() {
            self.reset_symbol(i);
        }
    }

    /// Forgets one symbol's book and ids (its connection was lost); it resyncs from its next diff.
    pub fn reset_symbol(&mut self, symbol: usize) {
        let Some(s) = self.symbols.get_mut(symbol) else { return };
        s.book.reset();
        s.audit.clear();
        // Ids seen before the reset belong to another connection or run: a new run of the
        // same symbol must not be mistaken for duplicates.
        s.trade_ids.reset();
        s.agg_ids.reset();
        s.ticker_ids.reset();
        s.depth20.clear();
        self.tap_state(symbol, self.last_recv_ns, None);
    }

    /// Forgets the ids of one symbol's stream (its connection was lost, and it carried no depth:
    /// a futures `/market` connection): the next event of it starts it again. A book is reset by
    /// [`Self::reset_symbol`] only.
    pub fn reset_stream(&mut self, symbol: usize, kind: StreamKind) {
        let Some(s) = self.symbols.get_mut(symbol) else { return };
        match kind {
            StreamKind::Trade => s.trade_ids.reset(),
            StreamKind::AggTrade => s.agg_ids.reset(),
            StreamKind::BookTicker => s.ticker_ids.reset(),
            StreamKind::Depth => {}
        }
    }

    fn bad(&mut self, e: DecodeError, frame: &[u8]) -> FrameOutcome {
        self.stats.bad_messages += 1;
        self.notices.push(Notice::BadMessage {
            error: e.clone(),
            total: self.stats.bad_messages,
            excerpt: Excerpt::new(frame),
        });
        FrameOutcome::Bad(e)
    }

    fn symbol_for(&mut self, name: &str) -> Option<usize> {
        // A few symbols: compare names; the whole market (~1,000): one hash lookup.
        let found = if self.symbols.len() <= 8 {
            self.symbols.iter().position(|s| s.lower == name)
        } else {
            self.by_name.get(name).copied()
        };
        match found {
            Some(i) => Some(i),
            None if self.cfg.auto_symbols && name.bytes().all(|c| c.is_ascii_alphanumeric()) => {
                Some(self.add_symbol(name, None))
            }
            None => None,
        }
    }

    /// Times each market message's JSON, book and output stages into
    /// [`Stats::stages`](crate::output::Stats) with `clock` (the clock is the driver's: a pipeline
    /// given none reads no clock).
    pub fn set_stage_clock(&mut self, clock: Option<StageClock>) {
        self.stage_clock = clock;
    }

    /// Runs `f`, adding its ticks to the current message's output time when stages are timed.
    #[inline]
    fn timed_output(&mut self, f: impl FnOnce(&mut Output)) {
        match self.stage_clock {
            Some(c) if self.out.mode() != OutputMode::None => {
                let t = c.now();
                f(&mut self.out);
                self.out_ticks += c.now().saturating_sub(t);
            }
            _ => f(&mut self.out),
        }
    }

    /// Processes one frame received at `recv_ns` (local wall clock, ns since the epoch).
    pub fn on_frame(&mut self, recv_ns: i64, frame: &[u8]) -> FrameOutcome {
        self.on_frame_with(recv_ns, frame, &mut |_| Admit::Process)
    }

    /// [`Pipeline::on_frame`], asking `admit` about each market event once it is decoded and
    /// placed in its sequence, before anything is counted or changed: [`Admit::Hold`] leaves the
    /// pipeline as it was and returns [`FrameOutcome::Held`]. The frame is decoded once.
    pub fn on_frame_with(
        &mut self,
        recv_ns: i64,
        frame: &[u8],
        admit: &mut impl FnMut(&Sequenced) -> Admit,
    ) -> FrameOutcome {
        let t0 = self.stage_clock.map(|c| c.now());
        let env = match split_envelope(frame) {
            Ok(e) => e,
            Err(e) => return self.bad(e, frame),
        };
        match env {
            Envelope::Stream { stream, data } => self.on_stream(recv_ns, stream, data, frame, admit, t0),
            Envelope::Event(data) => match binance::decode_raw_event(data) {
                Ok(RawEvent::ServerShutdown { .. }) => self.on_shutdown(),
                Ok(RawEvent::Other) => self.bad(DecodeError::UnknownStream, frame),
                Err(e) => self.bad(e, frame),
            },
            Envelope::Snapshot(_) => FrameOutcome::Snapshot,
            Envelope::Control(data) => match binance::decode_control(data) {
                Ok(c) => {
                    self.stats.control_replies += 1;
                    if c.error_code.is_some() {
                        self.notices
                            .push(Notice::ControlError { code: c.error_code, msg: c.error_msg.unwrap_or_default() });
                    }
                    FrameOutcome::Control
                }
                Err(e) => self.bad(e, frame),
            },
        }
    }

    fn on_shutdown(&mut self) -> FrameOutcome {
        self.stats.server_shutdowns += 1;
        self.notices.push(Notice::ServerShutdown);
        FrameOutcome::ServerShutdown
    }

    fn latency(&mut self, recv_ns: i64, event_time: i64) -> i64 {
        // Saturating: an SBE eventTime is any int64 the peer sends.
        let us = recv_ns.div_euclid(1000).saturating_sub(event_time_us(event_time));
        self.stats.record_latency_us(us);
        // Told once: a clock that is behind stays behind; the summary has the count and the worst.
        if us < 0 && self.stats.negative_latency == 1 {
            self.notices.push(Notice::NegativeLatency { behind_us: us.saturating_neg() });
        }
        us
    }

    fn on_stream(
        &mut self,
        recv_ns: i64,
        stream: &str,
        data: &[u8],
        frame: &[u8],
        admit: &mut impl FnMut(&Sequenced) -> Admit,
        t0: Option<u64>,
    ) -> FrameOutcome {
        let name = match self.cfg.venue {
            Venue::Spot => parse_stream_name(stream),
            Venue::UsdM => parse_futures_stream_name(stream),
        };
        let Some(name) = name else {
            if stream == "!serverShutdown" {
                return match binance::decode_raw_event(data) {
                    Ok(RawEvent::ServerShutdown { .. }) => self.on_shutdown(),
                    Ok(RawEvent::Other) => self.bad(DecodeError::WrongEvent, frame),
                    Err(e) => self.bad(e, frame),
                };
            }
            return self.bad(DecodeError::UnknownStream, frame);
        };
        let Some(idx) = self.symbol_for(name.symbol) else {
            return self.bad(DecodeError::UnknownStream, frame);
        };
        // Decode, and place the event in its sequence.
        let mut levels = std::mem::take(&mut self.levels);
        let decoded = self.decode_event(idx, name.kind, data, &mut levels);
        let ev = match decoded {
            Ok(ev) => ev,
            Err(e) => {
                self.levels = levels;
                return self.bad(e, frame);
            }
        };
        let (kind, ids) = (name.kind, ev.ids);
        let synced = kind != StreamKind::Depth || self.symbols[idx].book.is_synced();
        let seq = Sequenced { symbol: idx, kind, ids, position: ev.position, synced, prev_final: ev.prev_final };
        if admit(&seq) == Admit::Hold {
            self.levels = levels;
            return FrameOutcome::Held { symbol: idx, kind, ids };
        }
        if self.is_duplicate(idx, kind, ev.position) {
            self.levels = levels;
            self.stats.duplicates += 1;
            return FrameOutcome::Duplicate { symbol: idx, kind, ids };
        }
        self.stats.events += 1;
        // JSON ends here (the admission and duplicate checks are the sequencing's, counted in
        // the book stage).
        let t1 = match (self.stage_clock, t0) {
            (Some(c), Some(t0)) => {
                let t1 = c.now();
                self.stats.stages.record(Stage::Json, c.between(t0, t1));
                self.out_ticks = 0;
                Some(t1)
            }
            _ => None,
        };
        let lat = ev.event_time.map(|e| self.latency(recv_ns, e));
        self.event_us = ev.event_time.map_or(0, event_time_us);
        self.last_recv_ns = recv_ns;
        self.timed_output(|o| o.event(recv_ns, lat, stream, data));
        let s = &mut self.symbols[idx];
        match kind {
            StreamKind::Depth => {
                self.stats.depth_updates += 1;
                if let Some(l) = levels.bids.first().or(levels.asks.first()) {
                    s.last_price = l.price;
                }
                self.apply_diff(idx, recv_ns, ids, ev.prev_final, &levels);
            }
            StreamKind::Trade => {
                if ev.position == Position::Ahead {
                    self.stats.trade_id_gaps += 1;
                }
                s.trade_ids.advance(ids);
                s.trades += 1;
                s.last_price = ev.price;
                self.stats.trades += 1;
                if let Some(tap) = self.tap.as_deref_mut() {
                    let (qty, maker, t) = ev.trade;
                    let time_us = event_time_us(t);
                    tap.trade(idx as u32, s.book.tick(), ids.last, time_us, recv_ns, ev.price, qty, maker, false);
                }
            }
            StreamKind::AggTrade => {
                s.agg_ids.advance(ids);
                s.last_price = ev.price;
                self.stats.agg_trades += 1;
                if let Some(tap) = self.tap.as_deref_mut() {
                    let (qty, maker, t) = ev.trade;
                    let time_us = event_time_us(t);
                    tap.trade(idx as u32, s.book.tick(), ids.last, time_us, recv_ns, ev.price, qty, maker, true);
                }
            }
            StreamKind::BookTicker => {
                s.ticker_ids.advance(ids);
                self.stats.book_tickers += 1;
                let book = s.book.is_synced().then(|| (s.book.last_update_id(), s.book.top()));
                if let Some(m) = s.audit.on_ticker(ids.last, ev.ticker.0, ev.ticker.1, book) {
                    self.report_mismatch(idx, m);
                    self.tap_state(idx, recv_ns, Some(ResyncCause::AuditMismatch));
                }
            }
        }
        self.levels = levels;
        if let (Some(c), Some(t1)) = (self.stage_clock, t1) {
            let ticks = c.now().saturating_sub(t1);
            self.stats.stages.record(Stage::Book, c.ns(ticks.saturating_sub(self.out_ticks)));
            if self.out_ticks > 0 {
                self.stats.stages.record(Stage::Output, c.ns(self.out_ticks));
            }
        }
        FrameOutcome::Market { symbol: idx, kind, ids }
    }

    /// Is an event at `position` of stream `kind` of symbol `idx` a second copy, to skip? A diff at
    /// or below a book that has taken a diff since its snapshot, or at or below the last one an
    /// unsynced book buffered, is; one right after the snapshot is the stream catching up with it
    /// (stale, for the book to drop and count).
    fn is_duplicate(&self, idx: usize, kind: StreamKind, position: Position) -> bool {
        position == Position::Duplicate
            && (kind != StreamKind::Depth || {
                let book = &self.symbols[idx].book;
                !book.is_synced() || book.sync_point().is_some_and(|sp| sp.first_applied.is_some())
            })
    }

    /// Decodes a market payload of symbol `idx` (depth levels into `levels`) and places it in its
    /// sequence. A payload for another symbol than its stream's is an error.
    fn decode_event(
        &self,
        idx: usize,
        kind: StreamKind,
        data: &[u8],
        levels: &mut LevelBuf,
    ) -> Result<Decoded, DecodeError> {
        let s = &self.symbols[idx];
        let same = |sym: &str| if sym.eq_ignore_ascii_case(&s.lower) { Ok(()) } else { Err(DecodeError::WrongEvent) };
        Ok(match kind {
            StreamKind::Depth if self.cfg.venue == Venue::UsdM => {
                let h = binance::decode_futures_depth(data, levels)?;
                same(h.symbol)?;
                let ids = Ids { first: h.first_id, last: h.final_id };
                let position = sequence::futures_book_position(&s.book, ids, h.prev_final_id);
                Decoded {
                    ids,
                    position,
                    event_time: Some(h.event_time),
                    price: 0,
                    trade: NO_TRADE,
                    prev_final: Some(h.prev_final_id),
                    ticker: NO_TICKER,
                }
            }
            StreamKind::Depth => {
                let h = binance::decode_depth(data, levels)?;
                same(h.symbol)?;
                let ids = Ids { first: h.first_id, last: h.final_id };
                let position = sequence::book_position(&s.book, ids);
                Decoded {
                    ids,
                    position,
                    event_time: Some(h.event_time),
                    price: 0,
                    trade: NO_TRADE,
                    prev_final: None,
                    ticker: NO_TICKER,
                }
            }
            StreamKind::Trade => {
                let t = binance::decode_trade(data)?;
                same(t.symbol)?;
                let ids = Ids::one(t.trade_id);
                let position = s.trade_ids.position(ids);
                Decoded {
                    ids,
                    position,
                    event_time: Some(t.event_time),
                    price: t.price,
                    trade: (t.qty, t.buyer_is_maker, t.trade_time),
                    prev_final: None,
                    ticker: NO_TICKER,
                }
            }
            StreamKind::AggTrade => {
                let t = binance::decode_agg_trade(data)?;
                same(t.symbol)?;
                let ids = Ids::one(t.agg_id);
                let position = s.agg_ids.position(ids);
                Decoded {
                    ids,
                    position,
                    event_time: Some(t.event_time),
                    price: t.price,
                    trade: (t.qty, t.buyer_is_maker, t.trade_time),
                    prev_final: None,
                    ticker: NO_TICKER,
                }
            }
            StreamKind::BookTicker => {
                let t = binance::decode_book_ticker(data)?;
                same(t.symbol)?;
                Decoded {
                    ids: Ids::one(t.update_id),
                    position: sequence::ticker_position(&s.ticker_ids, t.update_id),
                    event_time: None,
                    price: 0,
                    trade: NO_TRADE,
                    prev_final: None,
                    ticker: ((t.bid_price, t.bid_qty), (t.ask_price, t.ask_qty)),
                }
            }
        })
    }

    /// Applies a processed diff to its book and tells what a resync or an eviction needs told.
    fn apply_diff(&mut self, idx: usize, recv_ns: i64, ids: Ids, prev_final: Option<u64>, levels: &LevelBuf) {
        let s = &mut self.symbols[idx];
        let (before, before_id) = (s.book.state(), s.book.last_update_id());
        if !s.book.is_synced() {
            // Buffered: the first diff of a book asks for a snapshot.
            self.snapshot_wanted = true;
        }
        let outcome = match prev_final {
            None => s.book.on_diff(ids.first, ids.last, &levels.bids, &levels.asks),
            Some(pu) => s.book.on_futures_diff(ids.first, ids.last, pu, &levels.bids, &levels.asks),
        };
        let cause = match outcome {
            DiffOutcome::Applied => {
                self.book_changed(idx, recv_ns);
                // Published only if the audit kept the book: a diff a mismatch discarded is
                // followed by the status that tells the replica so.
                let s = &self.symbols[idx];
                if let (Some(tap), true) = (self.tap.as_deref_mut(), s.book.is_synced()) {
                    let (i, ev) = (idx as u32, self.event_us);
                    tap.diff(i, &s.book, ids.first, before_id, ev, recv_ns, &levels.bids, &levels.asks);
                    tap.top(i, &s.book, ev, recv_ns);
                }
                None
            }
            DiffOutcome::Buffered | DiffOutcome::Stale => None,
            DiffOutcome::Gap => Some(ResyncCause::Gap),
            DiffOutcome::OffTick => Some(ResyncCause::OffTick),
            DiffOutcome::SnapshotTooOld => Some(ResyncCause::SnapshotTooOld),
            DiffOutcome::Evicted => Some(ResyncCause::Evicted),
            DiffOutcome::BeyondSnapshot => Some(ResyncCause::BeyondSnapshot),
            DiffOutcome::SnapshotUnconnected => Some(ResyncCause::SnapshotUnconnected),
        };
        let s = &mut self.symbols[idx];
        if let Some(cause) = cause {
            // A discarded book asks for a snapshot.
            self.snapshot_wanted = true;
            s.audit.clear();
            self.notices.push(Notice::Resync {
                symbol: s.name,
                cause,
                first_id: ids.first,
                final_id: ids.last,
                was: before,
                book_id: before_id,
            });
        }
        let audit = (cause.is_none() && !self.symbols[idx].book.is_synced()).then_some(ResyncCause::AuditMismatch);
        self.tap_state(idx, recv_ns, cause.or(audit));
    }

    /// The book of `idx` changed: audit it and print it.
    fn book_changed(&mut self, idx: usize, recv_ns: i64) {
        let s = &mut self.symbols[idx];
        let id = s.book.last_update_id();
        let top = s.book.top();
        let mut first = None;
        s.audit.on_book(id, top, |m| {
            first.get_or_insert(m);
        });
        if let Some(m) = first {
            self.report_mismatch(idx, m);
        }
        self.depth20_on_book(idx);
        let s = &self.symbols[idx];
        if !s.printed {
            return;
        }
        if let Some(m) = top::compute(top) {
            let price_decimals = s.price_decimals.unwrap_or_else(|| s.book.tick().map_or(8, |t| t.decimals()));
            let line = BookLine { symbol: &s.symbol, price_decimals, update_id: id, recv_ns, m: &m };
            match self.stage_clock {
                Some(c) if self.out.mode() != OutputMode::None => {
                    let t = c.now();
                    self.out.book(&line);
                    self.out_ticks += c.now().saturating_sub(t);
                }
                _ => self.out.book(&line),
            }
        }
    }

    /// A bookTicker disagreed with the book at the same update id: told, and the book, no longer
    /// known to equal the exchange's, is discarded and resynced.
    fn report_mismatch(&mut self, idx: usize, m: Mismatch) {
        self.notices.push(Notice::Mismatch {
            symbol: self.symbols[idx].name,
            update_id: m.update_id,
            ticker: Top { bid: Some(m.ticker.0), ask: Some(m.ticker.1) },
            book: m.book,
        });
        self.distrust(idx, m.update_id, ResyncCause::AuditMismatch);
    }

    /// An audit at `update_id` found the book wrong: it is discarded and resynced.
    fn distrust(&mut self, idx: usize, update_id: u64, cause: ResyncCause) {
        let s = &mut self.symbols[idx];
        let (was, book_id) = (s.book.state(), s.book.last_update_id());
        if s.book.distrust() {
            s.audit.clear();
            self.snapshot_wanted = true;
            self.notices.push(Notice::Resync {
                symbol: s.name,
                cause,
                first_id: update_id,
                final_id: update_id,
                was,
                book_id,
            });
            self.tap_state(idx, self.last_recv_ns, Some(cause));
        }
    }

    /// Feeds a REST depth snapshot body for `symbol`, received at `recv_ns`.
    pub fn on_snapshot(&mut self, symbol: usize, recv_ns: i64, body: &[u8]) -> Result<SnapshotOutcome, DecodeError> {
        // Whatever the snapshot does (too old, failed, unusable), the book may ask again.
        self.snapshot_wanted = true;
        let mut levels = std::mem::take(&mut self.levels);
        let r = binance::decode_snapshot(body, &mut levels);
        let out = match r {
            Ok(id) => {
                let o = self.symbols[symbol].book.on_snapshot(id, &levels.bids, &levels.asks);
                Ok((id, o))
            }
            Err(e) => Err(e),
        };
        self.levels = levels;
        let (id, o) = match out {
            Ok(x) => x,
            Err(e) => {
                self.stats.bad_messages += 1;
                self.symbols[symbol].book.snapshot_failed();
                self.notices.push(Notice::SnapshotUnusable { symbol: self.symbols[symbol].name, error: e.clone() });
                return Err(e);
            }
        };
        let s = &self.symbols[symbol];
        self.notices.push(Notice::Snapshot {
            symbol: s.name,
            last_update_id: id,
            outcome: o,
            book_id: s.book.last_update_id(),
            bids: s.book.ladder().len(crate::book::ladder::Side::Bid),
            asks: s.book.ladder().len(crate::book::ladder::Side::Ask),
        });
        if let SnapshotOutcome::Synced { .. } = o {
            self.symbols[symbol].first_synced_ns.get_or_insert(recv_ns);
            self.book_changed(symbol, recv_ns);
        }
        self.event_us = 0;
        self.last_recv_ns = recv_ns;
        self.tap_state(symbol, recv_ns, None);
        Ok(o)
    }

    /// Per-symbol facts for the stats file.
    pub fn summaries(&self) -> Vec<SymbolSummary> {
        self.symbols
            .iter()
            .map(|s| {
                let c = s.book.counters();
                let a = s.audit.counters();
                SymbolSummary {
                    symbol: s.symbol.clone(),
                    state: s.book.state().as_str(),
                    synced: s.book.is_synced(),
                    last_update_id: s.book.last_update_id(),
                    bids: s.book.ladder().len(crate::book::ladder::Side::Bid),
                    asks: s.book.ladder().len(crate::book::ladder::Side::Ask),
                    gaps: c.gaps,
                    resyncs: c.resyncs,
                    dropped_diffs: c.dropped_diffs,
                    evictions: c.evictions,
                    beyond_snapshot: c.beyond_snapshot,
                    audit_resyncs: c.audit_resyncs,
                    unconnected_snapshots: c.unconnected_snapshots,
                    stale_snapshots: c.stale_snapshots,
                    malformed_snapshots: c.malformed_snapshots,
                    buffer_overflows: c.buffer_overflows,
                    buffer_restarts: c.buffer_restarts,
                    off_tick: c.off_tick,
                    book_ticker_checks: a.checks,
                    book_ticker_mismatches: a.mismatches,
                    book_ticker_overflows: a.overflowed,
                    trades: s.trades,
                    synced_after_ms: self
                        .origin_ns
                        .zip(s.first_synced_ns)
                        .map(|(origin, at)| (at.saturating_sub(origin).max(0) / 1_000_000) as u64),
                }
            })
            .collect()
    }

    /// The `--dump-book` JSON of one symbol's book (see `output::dump::book_json`), or
    /// `None` when the book is not synced (a book that is not known to be right is not written).
    pub fn dump_book_json(&self, symbol: usize) -> Option<String> {
        let s = &self.symbols[symbol];
        crate::output::dump::book_json(&s.symbol, &s.book)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(mode: OutputMode) -> PipelineConfig {
        PipelineConfig { output: mode, ..PipelineConfig::default() }
    }

    fn depth(u0: u64, u1: u64, bids: &str, asks: &str) -> String {
        format!(
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":{u0},"u":{u1},"b":[{bids}],"a":[{asks}]}}}}"#
        )
    }

    #[test]
    fn syncs_prints_and_audits() {
        let mut p = Pipeline::new(quiet(OutputMode::TobJson), &["BTCUSDT"]);
        let t0 = 1_723_161_256_000_000_000;
        assert!(matches!(
            p.on_frame(t0, depth(10, 12, r#"["100.00000000","1.00000000"]"#, "").as_bytes()),
            FrameOutcome::Market { .. }
        ));
        assert_eq!(p.poll_snapshot_request(), Some(0));
        let snap =
            br#"{"lastUpdateId":11,"bids":[["99.01000000","2.00000000"]],"asks":[["101.00000000","3.00000000"]]}"#;
        assert_eq!(p.on_frame(t0, snap), FrameOutcome::Snapshot);
        assert_eq!(p.on_snapshot(0, t0, snap), Ok(SnapshotOutcome::Synced { dropped: 0, applied: 1 }));
        let tick = r#"{"stream":"btcusdt@bookTicker","data":{"u":13,"s":"BTCUSDT","b":"100.00000000","B":"1.00000000","a":"100.50000000","A":"1.00000000"}}"#;
        p.on_frame(t0, tick.as_bytes());
        p.on_frame(t0, depth(13, 13, "", r#"["100.50000000","1.00000000"]"#).as_bytes());
        let s = &p.symbols()[0];
        assert_eq!(s.book().last_update_id(), 13);
        assert_eq!((s.audit().counters().checks, s.audit().counters().mismatches), (1, 0));
        let text = String::from_utf8(p.output().buffer().to_vec()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().last().unwrap().contains("\"ask\":\"100.50\""), "{text}");
        assert_eq!(p.stats().depth_updates, 2);
        assert_eq!(p.stats().events, 3);
        let dump = p.dump_book_json(0).unwrap();
        assert_eq!(
            dump,
            "{\"symbol\":\"BTCUSDT\",\"lastUpdateId\":13,\"bids\":[[\"100.00000000\",\"1.00000000\"],[\"99.01000000\",\"2.00000000\"]],\"asks\":[[\"100.50000000\",\"1.00000000\"],[\"101.00000000\",\"3.00000000\"]]}\n"
        );
    }

    #[test]
    fn a_book_the_book_ticker_contradicts_is_no_longer_synced() {
        let mut p = Pipeline::new(quiet(OutputMode::None), &["BTCUSDT"]);
        p.on_frame(0, depth(10, 12, r#"["100.00000000","1.00000000"]"#, "").as_bytes());
        assert_eq!(p.poll_snapshot_request(), Some(0));
        let snap =
            br#"{"lastUpdateId":11,"bids":[["99.01000000","2.00000000"]],"asks":[["101.00000000","3.00000000"]]}"#;
        assert!(matches!(p.on_snapshot(0, 0, snap), Ok(SnapshotOutcome::Synced { .. })));
        // The exchange says the best ask at u=12 is 100.90; the book says 101.00.
        let tick = r#"{"stream":"btcusdt@bookTicker","data":{"u":12,"s":"BTCUSDT","b":"100.00000000","B":"1.00000000","a":"100.90000000","A":"1.00000000"}}"#;
        p.on_frame(0, tick.as_bytes());
        let s = &p.symbols()[0];
        assert_eq!(s.audit().counters().mismatches, 1);
        assert!(!s.book().is_synced(), "a book known to differ is not reported synced");
        assert_eq!(s.book().counters().audit_resyncs, 1);
        assert_eq!(p.poll_snapshot_request(), Some(0), "and it asks for a new snapshot");
    }

    #[test]
    fn frames_and_snapshots_nested_too_deep_are_bad_messages_not_a_crash() {
        // The default 2 MiB test stack, where 80,000 levels of recursion overflow.
        let t = std::thread::Builder::new().stack_size(2 << 20).spawn(|| {
            let deep = format!("{}{}", "[".repeat(80_000), "]".repeat(80_000));
            let mut p = Pipeline::new(quiet(OutputMode::None), &["btcusdt"]);
            let frames = [
                format!(r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","b":{deep},"a":[]}}}}"#),
                format!(r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","x":{deep}}}}}"#),
                format!(r#"{{"data":{deep},"stream":"btcusdt@trade"}}"#),
                format!(r#"{{"e":"serverShutdown","x":{deep}}}"#),
                format!(r#"{{"result":{deep},"id":1}}"#),
                deep.clone(),
            ];
            for f in &frames {
                assert!(matches!(p.on_frame(0, f.as_bytes()), FrameOutcome::Bad(_)), "{}", &f[..40]);
            }
            assert_eq!(p.stats().bad_messages, frames.len() as u64);
            let body = format!(r#"{{"lastUpdateId":1,"bids":{deep},"asks":[]}}"#);
            assert_eq!(p.on_snapshot(0, 0, body.as_bytes()), Err(DecodeError::TooDeep));
            assert_eq!(p.stats().bad_messages, frames.len() as u64 + 1);
        });
        t.unwrap().join().unwrap();
    }

    #[test]
    fn bad_frames_are_counted_not_fatal() {
        let mut p = Pipeline::new(quiet(OutputMode::None), &["btcusdt"]);
        let bad: &[&[u8]] = &[
            b"",
            b"\xff\xfe",
            b"{not json",
            br#"{"stream":"ethusdt@trade","data":{"e":"trade"}}"#,
            br#"{"stream":"btcusdt@kline_1m","data":{}}"#,
            br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"x","q":"1","T":1,"m":true}}"#,
            br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"1","q":"1","T":1,"m":true}}"#,
            br#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1}}"#,
            br#"{"e":"somethingElse","E":1}"#,
        ];
        for f in bad {
            assert!(matches!(p.on_frame(0, f), FrameOutcome::Bad(_)), "{}", String::from_utf8_lossy(f));
        }
        assert_eq!(p.stats().bad_messages, bad.len() as u64);
        assert_eq!(p.stats().events, 0);
        assert_eq!(p.on_frame(0, br#"{"result":null,"id":1}"#), FrameOutcome::Control);
        assert_eq!(p.on_frame(0, br#"{"e":"serverShutdown","E":1770123456789}"#), FrameOutcome::ServerShutdown);
        assert_eq!(
            p.on_frame(0, br#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#),
            FrameOutcome::ServerShutdown
        );
        assert_eq!(p.stats().server_shutdowns, 2);
    }

    #[test]
    fn duplicates_from_a_second_connection_are_skipped() {
        let mut p = Pipeline::new(quiet(OutputMode::Ndjson), &["btcusdt"]);
        let tr = |id: u64| {
            format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1,"s":"BTCUSDT","t":{id},"p":"1.00","q":"1","T":1,"m":true,"M":true}}}}"#
            )
        };
        p.on_frame(0, tr(5).as_bytes());
        assert_eq!(
            p.on_frame(0, tr(5).as_bytes()),
            FrameOutcome::Duplicate { symbol: 0, kind: StreamKind::Trade, ids: Ids::one(5) }
        );
        p.on_frame(0, tr(6).as_bytes());
        p.on_frame(0, depth(10, 12, r#"["100.00000000","1.00000000"]"#, "").as_bytes());
        let snap =
            br#"{"lastUpdateId":11,"bids":[["99.01000000","2.00000000"]],"asks":[["101.00000000","3.00000000"]]}"#;
        p.on_snapshot(0, 0, snap).unwrap();
        p.on_frame(0, depth(13, 14, "", r#"["100.50000000","1.00000000"]"#).as_bytes());
        assert_eq!(
            p.on_frame(0, depth(13, 14, "", r#"["100.50000000","1.00000000"]"#).as_bytes()),
            FrameOutcome::Duplicate { symbol: 0, kind: StreamKind::Depth, ids: Ids { first: 13, last: 14 } }
        );
        assert_eq!((p.stats().trades, p.stats().depth_updates, p.stats().duplicates), (2, 2, 2));
        assert_eq!(p.stats().trade_id_gaps, 0);
        let lines = p.output().buffer().split(|&c| c == b'\n').filter(|l| !l.is_empty()).count();
        assert_eq!(lines, 4);
    }

    #[test]
    fn an_admission_callback_sees_each_event_in_its_sequence_and_can_hold_it() {
        let mut p = Pipeline::new(quiet(OutputMode::None), &["btcusdt"]);
        let tr = |id: u64| {
            format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":1,"s":"BTCUSDT","t":{id},"p":"1.00","q":"1","T":1,"m":true,"M":true}}}}"#
            )
        };
        let mut seen = Vec::new();
        let mut hold_ahead = |ev: &Sequenced| {
            seen.push((ev.kind, ev.ids, ev.position));
            if ev.position == Position::Ahead {
                Admit::Hold
            } else {
                Admit::Process
            }
        };
        assert!(matches!(p.on_frame_with(0, tr(5).as_bytes(), &mut hold_ahead), FrameOutcome::Market { .. }));
        assert!(matches!(p.on_frame_with(0, tr(5).as_bytes(), &mut hold_ahead), FrameOutcome::Duplicate { .. }));
        assert_eq!(
            p.on_frame_with(0, tr(7).as_bytes(), &mut hold_ahead),
            FrameOutcome::Held { symbol: 0, kind: StreamKind::Trade, ids: Ids::one(7) }
        );
        // A held event changed nothing: the next one still continues the sequence.
        assert!(matches!(p.on_frame_with(0, tr(6).as_bytes(), &mut hold_ahead), FrameOutcome::Market { .. }));
        // An unsynced book is judged by what it buffered: the first diff starts it, a repeat is a
        // duplicate, one past a missing diff is ahead.
        let d = depth(10, 12, r#"["100.00000000","1.00000000"]"#, "");
        assert!(matches!(p.on_frame_with(0, d.as_bytes(), &mut hold_ahead), FrameOutcome::Market { .. }));
        assert!(matches!(p.on_frame_with(0, d.as_bytes(), &mut hold_ahead), FrameOutcome::Duplicate { .. }));
        let d = depth(14, 15, r#"["100.00000000","2.00000000"]"#, "");
        assert!(matches!(p.on_frame_with(0, d.as_bytes(), &mut hold_ahead), FrameOutcome::Held { .. }));
        assert_eq!(
            seen,
            [
                (StreamKind::Trade, Ids::one(5), Position::Next),
                (StreamKind::Trade, Ids::one(5), Position::Duplicate),
                (StreamKind::Trade, Ids::one(7), Position::Ahead),
                (StreamKind::Trade, Ids::one(6), Position::Next),
                (StreamKind::Depth, Ids { first: 10, last: 12 }, Position::Next),
                (StreamKind::Depth, Ids { first: 10, last: 12 }, Position::Duplicate),
                (StreamKind::Depth, Ids { first: 14, last: 15 }, Position::Ahead),
            ]
        );
        assert_eq!((p.stats().trades, p.stats().duplicates, p.stats().events, p.stats().depth_updates), (2, 2, 3, 1));
        assert_eq!(p.symbols()[0].book().buffered(), 1, "a held diff is not buffered, nor a repeat");
    }

    fn fdepth(u0: u64, u1: u64, pu: u64, bids: &str, asks: &str) -> String {
        format!(
            r#"{{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":1723161255308,"T":1723161255306,"s":"BTCUSDT","U":{u0},"u":{u1},"pu":{pu},"b":[{bids}],"a":[{asks}]}}}}"#
        )
    }

    fn usdm(mode: OutputMode) -> PipelineConfig {
        PipelineConfig { output: mode, venue: Venue::UsdM, ..PipelineConfig::default() }
    }

    const FSNAP: &[u8] = br#"{"lastUpdateId":105,"E":1723161255310,"T":1723161255309,"bids":[["64336.00","1.500"],["64335.90","2.000"],["64335.00","4.000"]],"asks":[["64336.10","0.003"],["64336.20","0.500"],["64337.00","1.000"]]}"#;

    #[test]
    fn futures_diffs_sync_by_pu_and_a_pu_break_resyncs() {
        let mut p = Pipeline::new(usdm(OutputMode::TobJson), &["BTCUSDT"]);
        // Ids skip between diffs: 100..103, then 104..107 would be contiguous; futures sends
        // 106..109 after 100..103 with pu=103.
        p.on_frame(0, fdepth(100, 103, 99, r#"["64335.90","2.000"]"#, "").as_bytes());
        assert_eq!(p.poll_snapshot_request(), Some(0));
        p.on_frame(0, fdepth(104, 107, 103, "", r#"["64336.20","1.000"]"#).as_bytes());
        assert_eq!(p.on_snapshot(0, 0, FSNAP), Ok(SnapshotOutcome::Synced { dropped: 1, applied: 1 }));
        // exchangeInfo's pricePrecision (2) prints prices the way futures writes them.
        p.set_price_decimals(0, 2);
        // Continues by pu although U > id + 1.
        let f = fdepth(112, 115, 107, r#"["64336.00","0"]"#, "");
        assert!(matches!(p.on_frame(0, f.as_bytes()), FrameOutcome::Market { .. }));
        let s = &p.symbols()[0];
        assert!(s.book().is_synced());
        assert_eq!(s.book().last_update_id(), 115);
        assert_eq!(s.book().counters().gaps, 0);
        // A futures bookTicker (with e, E, T) at the book's id is audited.
        let t = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":115,"E":1723161255311,"T":1723161255310,"s":"BTCUSDT","b":"64335.90","B":"2.000","a":"64336.10","A":"0.003"}}"#;
        assert!(matches!(p.on_frame(0, t.as_bytes()), FrameOutcome::Market { .. }));
        assert_eq!(p.symbols()[0].audit().counters().checks, 1);
        assert_eq!(p.symbols()[0].audit().counters().mismatches, 0);
        // A futures trade (with X) is decoded.
        let tr = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255312,"T":1723161255311,"s":"BTCUSDT","t":7,"p":"64336.10","q":"0.003","X":"MARKET","m":true}}"#;
        assert!(matches!(p.on_frame(0, tr.as_bytes()), FrameOutcome::Market { .. }));
        assert_eq!(p.stats().trades, 1);
        // pu=116 is not the previous u (115): a diff was lost. A gap, the book resyncs.
        p.on_frame(0, fdepth(118, 120, 116, "", "").as_bytes());
        let s = &p.symbols()[0];
        assert!(!s.book().is_synced());
        assert_eq!(s.book().counters().gaps, 1);
        assert_eq!(p.poll_snapshot_request(), Some(0));
        let text = String::from_utf8(p.output().buffer().to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("\"ask\":\"64336.1\""), "decimals of the inferred tick (0.1): {text}");
        assert!(lines[1].contains("\"bid\":\"64335.90\",\"bid_qty\":\"2.00000000\""), "{text}");
    }

    #[test]
    fn a_spot_depth_frame_under_usdm_is_a_bad_message() {
        let mut p = Pipeline::new(usdm(OutputMode::None), &["BTCUSDT"]);
        let f = depth(10, 12, r#"["100.00000000","1.00000000"]"#, "");
        assert!(matches!(p.on_frame(0, f.as_bytes()), FrameOutcome::Bad(DecodeError::MissingField(_))));
        assert_eq!(p.stats().bad_messages, 1);
        assert_eq!(p.symbols()[0].book().buffered(), 0, "nothing reaches the book");
        assert_eq!(p.poll_snapshot_request(), None);
        // And spot does not know futures' @depth@0ms stream.
        let mut p = Pipeline::new(quiet(OutputMode::None), &["BTCUSDT"]);
        let f = fdepth(100, 103, 99, "", "");
        assert!(matches!(p.on_frame(0, f.as_bytes()), FrameOutcome::Bad(DecodeError::UnknownStream)));
    }

    #[test]
    fn latency_units_and_ndjson() {
        let mut p = Pipeline::new(quiet(OutputMode::Ndjson), &["btcusdt"]);
        // E in microseconds (timeUnit=MICROSECOND): 1.5 ms latency.
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343000,"s":"BTCUSDT","t":5,"p":"1.00","q":"1","T":1723161255342000,"m":false,"M":true}}"#;
        p.on_frame(1_723_161_255_344_500_000, f.as_bytes());
        let line = String::from_utf8(p.output().buffer().to_vec()).unwrap();
        assert!(line.starts_with("{\"ts_recv_ms\":1723161255344.500,\"latency_ms\":1.500,"), "{line}");
        assert_eq!(p.stats().latency_us.len(), 1);
        // E in milliseconds and a receive clock behind the exchange: counted, not recorded.
        let f = f.replace("1723161255343000", "1723161255343").replace("\"t\":5", "\"t\":6");
        p.on_frame(1_723_161_254_000_000_000, f.as_bytes());
        assert_eq!(p.stats().negative_latency, 1);
        assert_eq!(p.stats().latency_us.len(), 1);
    }
}
