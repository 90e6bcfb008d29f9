//! SBE binary frames (`stream-sbe.binance.com`) through the same path as JSON text frames.
//!
//! [`Pipeline::on_binary_with`] decodes one binary websocket message with [`crate::binance::sbe`]
//! and then takes exactly the JSON path's steps: the symbol's sequence and the admission callback,
//! duplicates, latency (SBE times are microseconds), the sync engine, the trade-id sequence and the
//! audit. What differs:
//!
//! - `DepthDiffStreamEvent` is a diff (`U` = firstBookUpdateId, `u` = lastBookUpdateId), counted
//!   in `depth_updates`.
//! - `TradesStreamEvent` carries several trades: the event's ids are its first and last trade's,
//!   each trade is counted in `trades`, and every jump in the ids (inside the event or from the
//!   last trade processed) is a `trade_id_gaps`. Ids not above the last processed are skipped (a
//!   partial overlap with another connection's copy). An event with no trade, or with ids that do
//!   not increase, is a bad message.
//! - `BestBidAskStreamEvent` is the bookTicker of the audit (its bookUpdateId is the ticker's
//!   `u`), counted in `book_tickers`. Binance culls it under load (drops some updates): a skipped
//!   id is normal, never a gap, exactly as bookTicker's ids are judged already. Unlike bookTicker
//!   it has an event time, so its latency is recorded.
//! - `DepthSnapshotStreamEvent` (`@depth20`) is a second, deeper audit. Its levels wait (one per
//!   symbol, the newest) until the synced book stands at its bookUpdateId, then every one of its
//!   levels the book knows (at or better than the snapshot's deepest level) must be in the book
//!   with the same quantity, its first level must be the book's best, and a side with fewer than
//!   20 levels (the exchange's whole side) must be all the book knows of that side. A mismatch distrusts the
//!   book (resync), like a bookTicker mismatch. A depth20 the book has passed is dropped
//!   unchecked. Counted in `depth20`, `depth20_checks`, `depth20_mismatches`; it is not a
//!   sequenced stream (no gaps), a repeat of the last id is a duplicate.
//!
//! Output: `tob`/`tob-json` lines come from the book as for JSON. `ndjson` writes each event
//! rendered as JSON in Binance's JSON field names (times in microseconds, as sent; decimals with 8
//! digits): `depthUpdate`, one `trade` line per trade, `bestBidAsk` (bookTicker's fields plus `e`
//! and `E`), `depth20` (`lastUpdateId`, `bids`, `asks`). Every buffer is reused: nothing allocates
//! once warm.

use super::event_time_us;
use super::{
    sequence, Admit, Decoded, FrameOutcome, Ids, Pipeline, Position, Sequence, Sequenced, NO_TICKER, NO_TRADE,
};
use crate::binance::sbe::{self, SbeBufs, SbeEvent, TradeEntry};
use crate::binance::{DecodeError, LevelBuf, RawLevel, StreamKind};
use crate::book::fixed::{push_i64, push_u64, push_units, Units};
use crate::book::ladder::Side;
use crate::book::top::Top;
use crate::notice::Notice;
use crate::output::stats::Stage;
use crate::output::OutputMode;

/// Trades of one `TradesStreamEvent` the decode buffer has room for from the first frame (24 KiB).
const TRADES_RESERVE: usize = 1024;

/// Bytes reserved for one SBE event rendered as JSON (`ndjson`).
const NDJSON_RESERVE: usize = 128 << 10;

/// Levels per side in a `@depth20` message.
pub const DEPTH20_LEVELS: usize = 20;

/// The reused buffers of the SBE path.
#[derive(Default)]
pub(super) struct SbeScratch {
    trades: Vec<TradeEntry>,
    /// An event rendered as JSON (`ndjson` only).
    json: Vec<u8>,
    /// Its stream name.
    stream: String,
    /// A symbol in lowercase, for the by-name lookup.
    name: String,
}

/// One symbol's `@depth20` audit state: the newest depth20 waiting for the book to reach its id.
#[derive(Default)]
pub(super) struct Depth20 {
    pending: Option<u64>,
    bids: Vec<RawLevel>,
    asks: Vec<RawLevel>,
    /// The last id taken (a repeat is another connection's copy).
    ids: Sequence,
}

impl Depth20 {
    pub(super) fn clear(&mut self) {
        self.pending = None;
        self.ids.reset();
    }
}

/// Is the frame of `kind` a JSON text frame or an SBE binary one (for callers that keep both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// A text frame: JSON.
    Text,
    /// A binary frame: SBE.
    Binary,
}

impl Pipeline {
    /// Processes one SBE binary frame received at `recv_ns`.
    pub fn on_binary(&mut self, recv_ns: i64, frame: &[u8]) -> FrameOutcome {
        self.on_binary_with(recv_ns, frame, &mut |_| Admit::Process)
    }

    /// A frame of either wire: [`Pipeline::on_frame_with`] or [`Pipeline::on_binary_with`].
    pub fn on_message_with(
        &mut self,
        recv_ns: i64,
        wire: Wire,
        frame: &[u8],
        admit: &mut impl FnMut(&Sequenced) -> Admit,
    ) -> FrameOutcome {
        match wire {
            Wire::Text => self.on_frame_with(recv_ns, frame, admit),
            Wire::Binary => self.on_binary_with(recv_ns, frame, admit),
        }
    }

    /// [`Pipeline::on_binary`] with an admission callback, exactly as [`Pipeline::on_frame_with`]:
    /// [`Admit::Hold`] leaves the pipeline as it was. `@depth20` messages are not shown to it
    /// (they are an audit, never held).
    pub fn on_binary_with(
        &mut self,
        recv_ns: i64,
        frame: &[u8],
        admit: &mut impl FnMut(&Sequenced) -> Admit,
    ) -> FrameOutcome {
        let t0 = self.stage_clock.map(|c| c.now());
        self.stats.sbe_frames += 1;
        // Room for a large match from the first frame on (a taker sweeping the book can make
        // hundreds of trades), so a bigger one later does not grow it on the hot path.
        if self.sbe.trades.capacity() < TRADES_RESERVE {
            self.sbe.trades.reserve(TRADES_RESERVE);
        }
        let mut bufs =
            SbeBufs { levels: std::mem::take(&mut self.levels), trades: std::mem::take(&mut self.sbe.trades) };
        let o = self.on_sbe(recv_ns, frame, &mut bufs, admit, t0);
        self.levels = bufs.levels;
        self.sbe.trades = bufs.trades;
        o
    }

    /// A symbol as an SBE message names it (uppercase), without allocating once warm.
    fn sbe_symbol(&mut self, symbol: &str) -> Option<usize> {
        if self.symbols.len() <= 8 {
            if let Some(i) = self.symbols.iter().position(|s| s.lower.eq_ignore_ascii_case(symbol)) {
                return Some(i);
            }
        }
        let mut name = std::mem::take(&mut self.sbe.name);
        name.clear();
        name.extend(symbol.chars().map(|c| c.to_ascii_lowercase()));
        let found = self.symbol_for(&name);
        self.sbe.name = name;
        found
    }

    fn on_sbe(
        &mut self,
        recv_ns: i64,
        frame: &[u8],
        bufs: &mut SbeBufs,
        admit: &mut impl FnMut(&Sequenced) -> Admit,
        t0: Option<u64>,
    ) -> FrameOutcome {
        let ev = match sbe::decode(frame, bufs) {
            Ok(ev) => ev,
            Err(e) => return self.bad(DecodeError::Sbe(e), frame),
        };
        let symbol = match ev {
            SbeEvent::DepthDiff(h) => h.symbol,
            SbeEvent::DepthSnapshot(d) => d.symbol,
            SbeEvent::Trades(t) => t.symbol,
            SbeEvent::BestBidAsk(b) => b.ticker.symbol,
        };
        let Some(idx) = self.sbe_symbol(symbol) else {
            return self.bad(DecodeError::UnknownStream, frame);
        };
        let s = &self.symbols[idx];
        let (kind, dec) = match ev {
            SbeEvent::DepthSnapshot(d) => return self.on_depth20(idx, recv_ns, d, &bufs.levels, t0),
            SbeEvent::DepthDiff(h) => {
                let ids = Ids { first: h.first_id, last: h.final_id };
                let position = sequence::book_position(&s.book, ids);
                let d = Decoded {
                    ids,
                    position,
                    event_time: Some(h.event_time),
                    price: 0,
                    trade: NO_TRADE,
                    prev_final: None,
                    ticker: NO_TICKER,
                };
                (StreamKind::Depth, d)
            }
            SbeEvent::Trades(t) => {
                let tr = &bufs.trades;
                let (Some(first), Some(last)) = (tr.first(), tr.last()) else {
                    return self.bad(DecodeError::TradeIds, frame);
                };
                if tr.windows(2).any(|w| w[1].trade_id <= w[0].trade_id) {
                    return self.bad(DecodeError::TradeIds, frame);
                }
                let ids = Ids { first: first.trade_id, last: last.trade_id };
                let position = s.trade_ids.position(ids);
                let d = Decoded {
                    ids,
                    position,
                    event_time: Some(t.event_time),
                    price: last.price,
                    // Each trade's own facts go to the records from the trades group.
                    trade: (last.qty, last.buyer_is_maker, t.transact_time),
                    prev_final: None,
                    ticker: NO_TICKER,
                };
                (StreamKind::Trade, d)
            }
            SbeEvent::BestBidAsk(b) => {
                let t = b.ticker;
                let d = Decoded {
                    ids: Ids::one(t.update_id),
                    position: sequence::ticker_position(&s.ticker_ids, t.update_id),
                    event_time: Some(b.event_time),
                    price: 0,
                    trade: NO_TRADE,
                    prev_final: None,
                    ticker: ((t.bid_price, t.bid_qty), (t.ask_price, t.ask_qty)),
                };
                (StreamKind::BookTicker, d)
            }
        };
        let ids = dec.ids;
        let synced = kind != StreamKind::Depth || self.symbols[idx].book.is_synced();
        let seq = Sequenced { symbol: idx, kind, ids, position: dec.position, synced, prev_final: None };
        if admit(&seq) == Admit::Hold {
            return FrameOutcome::Held { symbol: idx, kind, ids };
        }
        if self.is_duplicate(idx, kind, dec.position) {
            self.stats.duplicates += 1;
            return FrameOutcome::Duplicate { symbol: idx, kind, ids };
        }
        self.stats.events += 1;
        let t1 = self.decode_done(t0);
        let lat = dec.event_time.map(|e| self.latency(recv_ns, e));
        self.event_us = dec.event_time.map_or(0, event_time_us);
        self.last_recv_ns = recv_ns;
        if self.out.mode() == OutputMode::Ndjson {
            self.sbe_ndjson(idx, recv_ns, lat, &ev, &bufs.levels, &bufs.trades);
        }
        let s = &mut self.symbols[idx];
        match kind {
            StreamKind::Depth => {
                self.stats.depth_updates += 1;
                let levels = &bufs.levels;
                if let Some(l) = levels.bids.first().or(levels.asks.first()) {
                    s.last_price = l.price;
                }
                self.apply_diff(idx, recv_ns, ids, None, &bufs.levels);
            }
            StreamKind::Trade => {
                // Each trade advances the sequence; a jump (from the last processed or inside the
                // event) is a gap; trades already processed (an overlapping copy) are skipped.
                let mut prev = s.trade_ids.last();
                let mut n = 0u64;
                for e in &bufs.trades {
                    match prev {
                        Some(p) if e.trade_id <= p => continue,
                        Some(p) if e.trade_id > p.saturating_add(1) => self.stats.trade_id_gaps += 1,
                        _ => {}
                    }
                    prev = Some(e.trade_id);
                    n += 1;
                    if let Some(tap) = self.tap.as_deref_mut() {
                        let (i, tick, time_us) = (idx as u32, s.book.tick(), dec.trade.2);
                        tap.trade(i, tick, e.trade_id, time_us, recv_ns, e.price, e.qty, e.buyer_is_maker, false);
                    }
                }
                s.trade_ids.advance(ids);
                s.trades += n;
                s.last_price = dec.price;
                self.stats.trades += n;
            }
            StreamKind::BookTicker => {
                s.ticker_ids.advance(ids);
                self.stats.book_tickers += 1;
                let book = s.book.is_synced().then(|| (s.book.last_update_id(), s.book.top()));
                if let Some(m) = s.audit.on_ticker(ids.last, dec.ticker.0, dec.ticker.1, book) {
                    self.report_mismatch(idx, m);
                }
            }
            StreamKind::AggTrade => {}
        }
        self.stage_done(t1);
        FrameOutcome::Market { symbol: idx, kind, ids }
    }

    /// The decode stage (`json` in the stage times: the frame's decoding, whichever wire) ends.
    fn decode_done(&mut self, t0: Option<u64>) -> Option<u64> {
        match (self.stage_clock, t0) {
            (Some(c), Some(t0)) => {
                let t1 = c.now();
                self.stats.stages.record(Stage::Json, c.between(t0, t1));
                self.out_ticks = 0;
                Some(t1)
            }
            _ => None,
        }
    }

    /// The book and output stages end.
    fn stage_done(&mut self, t1: Option<u64>) {
        if let (Some(c), Some(t1)) = (self.stage_clock, t1) {
            let ticks = c.now().saturating_sub(t1);
            self.stats.stages.record(Stage::Book, c.ns(ticks.saturating_sub(self.out_ticks)));
            if self.out_ticks > 0 {
                self.stats.stages.record(Stage::Output, c.ns(self.out_ticks));
            }
        }
    }

    fn on_depth20(
        &mut self,
        idx: usize,
        recv_ns: i64,
        d: sbe::DepthSnapshot<'_>,
        levels: &LevelBuf,
        t0: Option<u64>,
    ) -> FrameOutcome {
        let id = d.book_update_id;
        if sequence::ticker_position(&self.symbols[idx].depth20.ids, id) == Position::Duplicate {
            self.stats.duplicates += 1;
            return FrameOutcome::Depth20 { symbol: idx, id, duplicate: true };
        }
        self.stats.events += 1;
        self.stats.depth20 += 1;
        let t1 = self.decode_done(t0);
        let lat = self.latency(recv_ns, d.event_time);
        if self.out.mode() == OutputMode::Ndjson {
            self.sbe_ndjson(idx, recv_ns, Some(lat), &SbeEvent::DepthSnapshot(d), levels, &[]);
        }
        let s = &mut self.symbols[idx];
        s.depth20.ids.advance(Ids::one(id));
        let book_id = s.book.is_synced().then(|| s.book.last_update_id());
        match book_id {
            Some(b) if b > id => {}
            _ => {
                let q = &mut s.depth20;
                q.pending = Some(id);
                // 20 a side from the first one on, so a fuller one later does not grow them.
                q.bids.clear();
                q.bids.reserve(DEPTH20_LEVELS.max(levels.bids.len()));
                q.bids.extend_from_slice(&levels.bids);
                q.asks.clear();
                q.asks.reserve(DEPTH20_LEVELS.max(levels.asks.len()));
                q.asks.extend_from_slice(&levels.asks);
                if book_id == Some(id) {
                    self.check_depth20(idx);
                }
            }
        }
        self.stage_done(t1);
        FrameOutcome::Depth20 { symbol: idx, id, duplicate: false }
    }

    /// The book of `idx` moved: check a depth20 waiting for exactly its id, drop one it passed.
    #[inline]
    pub(super) fn depth20_on_book(&mut self, idx: usize) {
        let s = &mut self.symbols[idx];
        match s.depth20.pending {
            Some(p) if p == s.book.last_update_id() => self.check_depth20(idx),
            Some(p) if p < s.book.last_update_id() => s.depth20.pending = None,
            _ => {}
        }
    }

    /// Compares the pending depth20 with the synced book at its id.
    fn check_depth20(&mut self, idx: usize) {
        let s = &mut self.symbols[idx];
        let Some(id) = s.depth20.pending.take() else { return };
        let Some(tick) = s.book.tick() else { return };
        let ladder = s.book.ladder();
        let (bid_floor, ask_ceiling) = s.book.known_band();
        // Only what the book knows is compared: levels at or better than the snapshot's deepest
        // (a book synced from a shallow snapshot does not know the rest), all of a side the
        // snapshot held whole.
        let side_ok = |side: Side, levels: &[RawLevel], edge: Option<i64>| -> bool {
            let known = |t: i64| match (side, edge) {
                (_, None) => true,
                (Side::Bid, Some(f)) => t >= f,
                (Side::Ask, Some(c)) => t <= c,
            };
            let n = levels.len();
            // Fewer than 20 levels: that is the exchange's whole side, so the book's known levels
            // must be exactly these. Counting them walks the side: only for such a thin book.
            if n < DEPTH20_LEVELS {
                let want = levels.iter().filter(|l| tick.to_ticks(l.price).is_ok_and(known)).count();
                let have = match edge {
                    None => ladder.len(side),
                    Some(_) => {
                        let mut c = 0;
                        ladder.for_each_level(side, |l| c += usize::from(known(l.tick)));
                        c
                    }
                };
                if have != want {
                    return false;
                }
            }
            let best = ladder.best(side);
            match (levels.first().map(|l| (tick.to_ticks(l.price), l.qty)), best) {
                (None, None) => {}
                (Some((Ok(t), q)), Some(b)) if t == b.tick && q == b.qty => {}
                (Some((Ok(t), _)), _) if !known(t) => {}
                _ => return false,
            }
            levels.iter().all(|l| match tick.to_ticks(l.price) {
                Ok(t) => !known(t) || ladder.qty(side, t) == l.qty,
                Err(_) => false,
            })
        };
        let ok = side_ok(Side::Bid, &s.depth20.bids, bid_floor) && side_ok(Side::Ask, &s.depth20.asks, ask_ceiling);
        self.stats.depth20_checks += 1;
        if ok {
            return;
        }
        self.stats.depth20_mismatches += 1;
        let lvl = |v: &[RawLevel]| v.first().map(|l| (l.price, l.qty));
        let (bid, ask) = (lvl(&s.depth20.bids), lvl(&s.depth20.asks));
        let top = s.book.top();
        self.notices.push(Notice::Depth20Mismatch {
            symbol: s.name,
            update_id: id,
            depth20: Top { bid, ask },
            book: top,
        });
        self.distrust(idx, id, crate::notice::ResyncCause::Depth20Mismatch);
    }

    /// Renders an SBE event as JSON and writes it as `ndjson` lines (one per trade).
    fn sbe_ndjson(
        &mut self,
        idx: usize,
        recv_ns: i64,
        lat: Option<i64>,
        ev: &SbeEvent<'_>,
        levels: &LevelBuf,
        trades: &[TradeEntry],
    ) {
        let mut json = std::mem::take(&mut self.sbe.json);
        // Room for a deep diff rendered (some 1,100 levels: ~40 kB) from the first event on, so
        // a large one later does not grow it on the hot path; a larger one still can (a frame's
        // rendering is at most ~3x the frame, which --max-message bounds).
        if json.capacity() < NDJSON_RESERVE {
            json.reserve(NDJSON_RESERVE);
        }
        let mut stream = std::mem::take(&mut self.sbe.stream);
        stream.clear();
        stream.push_str(&self.symbols[idx].lower);
        let j = &mut json;
        match ev {
            SbeEvent::DepthDiff(h) => {
                stream.push_str("@depth");
                j.clear();
                j.extend_from_slice(b"{\"e\":\"depthUpdate\",\"E\":");
                push_i64(j, h.event_time);
                push_sym(j, h.symbol);
                j.extend_from_slice(b",\"U\":");
                push_u64(j, h.first_id);
                j.extend_from_slice(b",\"u\":");
                push_u64(j, h.final_id);
                push_levels(j, b",\"b\":", &levels.bids);
                push_levels(j, b",\"a\":", &levels.asks);
                j.push(b'}');
                self.timed_output(|o| o.event(recv_ns, lat, &stream, &json));
            }
            SbeEvent::DepthSnapshot(d) => {
                stream.push_str("@depth20");
                j.clear();
                j.extend_from_slice(b"{\"e\":\"depth20\",\"E\":");
                push_i64(j, d.event_time);
                push_sym(j, d.symbol);
                j.extend_from_slice(b",\"lastUpdateId\":");
                push_u64(j, d.book_update_id);
                push_levels(j, b",\"bids\":", &levels.bids);
                push_levels(j, b",\"asks\":", &levels.asks);
                j.push(b'}');
                self.timed_output(|o| o.event(recv_ns, lat, &stream, &json));
            }
            SbeEvent::Trades(t) => {
                stream.push_str("@trade");
                // Only the trades processed now (an overlapping copy's earlier ones are not).
                let after = self.symbols[idx].trade_ids.last();
                for e in trades.iter().filter(|e| after.is_none_or(|a| e.trade_id > a)) {
                    let j = &mut json;
                    j.clear();
                    j.extend_from_slice(b"{\"e\":\"trade\",\"E\":");
                    push_i64(j, t.event_time);
                    push_sym(j, t.symbol);
                    j.extend_from_slice(b",\"t\":");
                    push_u64(j, e.trade_id);
                    push_dec(j, b",\"p\":", e.price);
                    push_dec(j, b",\"q\":", e.qty);
                    j.extend_from_slice(b",\"T\":");
                    push_i64(j, t.transact_time);
                    j.extend_from_slice(if e.buyer_is_maker {
                        b",\"m\":true,\"M\":true}"
                    } else {
                        b",\"m\":false,\"M\":true}"
                    });
                    self.timed_output(|o| o.event(recv_ns, lat, &stream, &json));
                }
            }
            SbeEvent::BestBidAsk(b) => {
                stream.push_str("@bestBidAsk");
                let t = &b.ticker;
                j.clear();
                j.extend_from_slice(b"{\"e\":\"bestBidAsk\",\"E\":");
                push_i64(j, b.event_time);
                j.extend_from_slice(b",\"u\":");
                push_u64(j, t.update_id);
                push_sym(j, t.symbol);
                push_dec(j, b",\"b\":", t.bid_price);
                push_dec(j, b",\"B\":", t.bid_qty);
                push_dec(j, b",\"a\":", t.ask_price);
                push_dec(j, b",\"A\":", t.ask_qty);
                j.push(b'}');
                self.timed_output(|o| o.event(recv_ns, lat, &stream, &json));
            }
        }
        self.sbe.json = json;
        self.sbe.stream = stream;
    }
}

fn push_sym(j: &mut Vec<u8>, symbol: &str) {
    j.extend_from_slice(b",\"s\":\"");
    // A symbol is an identifier; anything that would break the JSON is replaced.
    for &c in symbol.as_bytes() {
        j.push(if c == b'"' || c == b'\\' || c < 0x20 { b'?' } else { c });
    }
    j.push(b'"');
}

fn push_dec(j: &mut Vec<u8>, key: &[u8], v: Units) {
    j.extend_from_slice(key);
    j.push(b'"');
    push_units(j, v, 8);
    j.push(b'"');
}

fn push_levels(j: &mut Vec<u8>, key: &[u8], levels: &[RawLevel]) {
    j.extend_from_slice(key);
    j.push(b'[');
    for (i, l) in levels.iter().enumerate() {
        if i > 0 {
            j.push(b',');
        }
        push_dec(j, b"[", l.price);
        push_dec(j, b",", l.qty);
        j.push(b']');
    }
    j.push(b']');
}
