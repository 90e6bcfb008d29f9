//! The publishing side of the records: the pipeline tells the tap what happened to each book,
//! and the tap appends the records to one buffer that the driver hands to a transport
//! (iceoryx2, or the ring to the NATS thread) after each frame.
//!
//! Sans-IO and allocation-free once warm: the buffer and the per-symbol state are reused.

use super::{DiffHead, EncodeError, Encoder, Kind, SnapshotHead, StatusRec, SymbolRec, SyncStatus, TopRec, TradeRec};
use crate::binance::RawLevel;
use crate::book::fixed::{TickSize, Ticks, Units};
use crate::book::ladder::Side;
use crate::book::sync::OrderBook;
use crate::book::top::Top;

/// Which kinds a tap writes (a bit per [`Kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSet(u8);

impl KindSet {
    /// Every kind.
    pub const ALL: KindSet = KindSet(0b11_1111);
    /// No kind.
    pub const NONE: KindSet = KindSet(0);

    /// This set and `k`.
    pub const fn with(self, k: Kind) -> KindSet {
        KindSet(self.0 | (1 << (k as u8 - 1)))
    }
    /// `k` is in the set.
    pub const fn has(self, k: Kind) -> bool {
        self.0 & (1 << (k as u8 - 1)) != 0
    }
}

/// How a tap is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapConfig {
    /// The kinds written; `symbol`, `snapshot` and `status` records are always written when a
    /// book kind (`diff`) is, since a replica needs them.
    pub kinds: KindSet,
    /// Levels a side in a snapshot record: 0 for every level held.
    pub snapshot_depth: u32,
    /// 0 spot, 1 USDⓈ-M futures (the `symbol` record's venue byte).
    pub venue: u8,
}

impl Default for TapConfig {
    fn default() -> Self {
        TapConfig { kinds: KindSet::ALL, snapshot_depth: 0, venue: 0 }
    }
}

/// Counters of a tap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapCounters {
    /// Records written, any kind.
    pub records: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Records that could not be written (a book beyond the record size), each told once.
    pub too_large: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct PerSymbol {
    last_top: Option<Top>,
    synced: bool,
}

/// Turns book events into records.
#[derive(Debug)]
pub struct Tap {
    cfg: TapConfig,
    enc: Encoder,
    buf: Vec<u8>,
    symbols: Vec<PerSymbol>,
    counters: TapCounters,
    /// Records in `buf`.
    pending_records: u64,
}

fn tick_units(tick: Option<TickSize>) -> i64 {
    tick.map_or(1, TickSize::units)
}

/// `price` in ticks of `tick`, or `None` when it is not on the grid.
fn ticks_of(price: Units, tick: i64) -> Option<Ticks> {
    (price % tick == 0).then(|| price / tick)
}

impl Tap {
    /// A tap with an empty buffer of `capacity` bytes.
    pub fn new(cfg: TapConfig, capacity: usize) -> Tap {
        Tap {
            cfg,
            enc: Encoder::new(),
            buf: Vec::with_capacity(capacity),
            symbols: Vec::new(),
            counters: TapCounters::default(),
            pending_records: 0,
        }
    }

    /// The set-up.
    pub fn config(&self) -> TapConfig {
        self.cfg
    }
    /// Counters.
    pub fn counters(&self) -> &TapCounters {
        &self.counters
    }
    /// The records written since the last [`Tap::clear`], back to back.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
    /// How many records [`Tap::pending`] holds.
    pub fn pending_records(&self) -> u64 {
        self.pending_records
    }
    /// Forgets the pending records (the driver has sent them).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.pending_records = 0;
    }
    /// The encoder's last sequence number for `symbol`'s `kind`.
    pub fn last_seq(&self, symbol: u32, kind: Kind) -> u64 {
        self.enc.last_seq(symbol, kind)
    }

    /// Whether the records written so far left `symbol`'s book synced.
    pub fn published_synced(&self, symbol: u32) -> bool {
        self.symbols.get(symbol as usize).is_some_and(|p| p.synced)
    }

    fn wants(&self, k: Kind) -> bool {
        match k {
            Kind::Symbol | Kind::Snapshot | Kind::Status => self.cfg.kinds.has(k) || self.cfg.kinds.has(Kind::Diff),
            _ => self.cfg.kinds.has(k),
        }
    }

    fn per(&mut self, symbol: u32) -> &mut PerSymbol {
        let i = symbol as usize;
        if i >= self.symbols.len() {
            // Once per new symbol, not per event.
            self.symbols.resize(i + 1, PerSymbol::default());
        }
        &mut self.symbols[i]
    }

    fn written(&mut self, before: usize) {
        if self.buf.len() > before {
            self.counters.records += 1;
            self.pending_records += 1;
            self.counters.bytes += (self.buf.len() - before) as u64;
        }
    }

    /// A symbol's name and grid (at start, and again when its tick becomes known).
    pub fn symbol(&mut self, symbol: u32, name: &str, tick: Option<TickSize>, step: Option<i64>, price_decimals: u32) {
        self.per(symbol);
        if !self.wants(Kind::Symbol) {
            return;
        }
        let before = self.buf.len();
        let rec = SymbolRec {
            tick: tick.map_or(0, TickSize::units),
            step: step.unwrap_or(0),
            venue: self.cfg.venue,
            price_decimals: price_decimals.min(u8::MAX as u32) as u8,
            name,
        };
        if self.enc.symbol(&mut self.buf, symbol, &rec).is_err() {
            self.counters.too_large += 1;
        }
        self.written(before);
    }

    /// The book's top after a change; written only when it differs from the last one written.
    pub fn top(&mut self, symbol: u32, book: &OrderBook, exch_time_us: i64, recv_ns: i64) {
        if !self.wants(Kind::Top) {
            return;
        }
        let top = book.top();
        let per = self.per(symbol);
        if per.last_top == Some(top) {
            return;
        }
        per.last_top = Some(top);
        let tick = tick_units(book.tick());
        let side = |s: Option<(Units, Units)>| s.and_then(|(p, q)| ticks_of(p, tick).map(|t| (t, q)));
        let rec = TopRec {
            update_id: book.last_update_id(),
            exch_time_us,
            recv_ns,
            tick,
            bid: side(top.bid),
            ask: side(top.ask),
        };
        let before = self.buf.len();
        self.enc.top(&mut self.buf, symbol, &rec);
        self.written(before);
    }

    /// A diff the book applied: its levels as sent, and the book's id before it.
    #[allow(clippy::too_many_arguments)]
    pub fn diff(
        &mut self,
        symbol: u32,
        book: &OrderBook,
        first_id: u64,
        prev_id: u64,
        exch_time_us: i64,
        recv_ns: i64,
        bids: &[RawLevel],
        asks: &[RawLevel],
    ) {
        if !self.wants(Kind::Diff) {
            return;
        }
        let tick = tick_units(book.tick());
        // An applied diff's prices are on the book's grid (the book refuses others).
        let conv = move |l: &RawLevel| (l.price / tick, l.qty);
        let head = DiffHead { first_id, last_id: book.last_update_id(), prev_id, exch_time_us, recv_ns, tick };
        let before = self.buf.len();
        let r = self.enc.diff(&mut self.buf, symbol, head, bids.iter().map(conv), asks.iter().map(conv));
        self.result(r, before);
    }

    /// A trade (or an aggregate trade) at `price` units.
    #[allow(clippy::too_many_arguments)]
    pub fn trade(
        &mut self,
        symbol: u32,
        tick: Option<TickSize>,
        trade_id: u64,
        time_us: i64,
        recv_ns: i64,
        price: Units,
        qty: Units,
        buyer_maker: bool,
        aggregate: bool,
    ) {
        if !self.wants(Kind::Trade) {
            return;
        }
        // Off the grid (or no grid known): the record says tick 1, prices in units.
        let (tick, price) = match ticks_of(price, tick_units(tick)) {
            Some(t) => (tick_units(tick), t),
            None => (1, price),
        };
        let rec = TradeRec { trade_id, exch_time_us: time_us, recv_ns, tick, price, qty, buyer_maker, aggregate };
        let before = self.buf.len();
        self.enc.trade(&mut self.buf, symbol, &rec);
        self.written(before);
    }

    /// The book's state after an event: a change from synced to not synced writes a `status`
    /// (resyncing, or gap for a gap); a change to synced writes `status` synced and a
    /// `snapshot` of the book, which a replica starts from.
    pub fn state(&mut self, symbol: u32, book: &OrderBook, recv_ns: i64, gap: bool, cause: u8) {
        let now = book.is_synced();
        let per = self.per(symbol);
        if per.synced == now {
            return;
        }
        per.synced = now;
        per.last_top = None;
        let status = match (now, gap) {
            (true, _) => SyncStatus::Synced,
            (false, true) => SyncStatus::Gap,
            (false, false) => SyncStatus::Resyncing,
        };
        if self.wants(Kind::Status) {
            let rec = StatusRec { status, cause, update_id: book.last_update_id(), recv_ns };
            let before = self.buf.len();
            self.enc.status(&mut self.buf, symbol, &rec);
            self.written(before);
        }
        if now {
            self.snapshot(symbol, book, recv_ns);
        }
    }

    /// A `snapshot` of a synced book (for a book that just synced, and for a subscriber that
    /// just joined). Nothing for a book that is not synced: its next sync writes one.
    pub fn snapshot(&mut self, symbol: u32, book: &OrderBook, recv_ns: i64) {
        if !self.wants(Kind::Snapshot) || !book.is_synced() {
            return;
        }
        let ladder = book.ladder();
        let cut = |n: usize| match self.cfg.snapshot_depth {
            0 => n,
            d => n.min(d as usize),
        };
        let (nb, na) = (cut(ladder.len(Side::Bid)), cut(ladder.len(Side::Ask)));
        let head = SnapshotHead {
            update_id: book.last_update_id(),
            recv_ns,
            tick: tick_units(book.tick()),
            depth: self.cfg.snapshot_depth,
        };
        let before = self.buf.len();
        if self.enc.snapshot_head(&mut self.buf, symbol, head, nb, na).is_err() {
            self.counters.too_large += 1;
            return;
        }
        for (side, n) in [(Side::Bid, nb), (Side::Ask, na)] {
            let mut left = n;
            let buf = &mut self.buf;
            ladder.for_each_level(side, |l| {
                if left > 0 {
                    left -= 1;
                    super::push_level(buf, l.tick, l.qty);
                }
            });
        }
        self.written(before);
    }

    fn result(&mut self, r: Result<(), EncodeError>, before: usize) {
        match r {
            Ok(()) => self.written(before),
            Err(_) => self.counters.too_large += 1,
        }
    }
}
