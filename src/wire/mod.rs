//! The fan-out record set: fixed-layout, little-endian, versioned binary records of books and
//! trades, for other processes (`--publish iceoryx2`) and other machines (`--publish nats://`).
//! `docs/wire.md` is the specification; this module is its one implementation, both ways.
//!
//! Every record is a 24-byte [`Header`] and a body whose layout its kind fixes. All fields sit
//! at offsets that are multiples of their size, so a record in an 8-aligned buffer can be read
//! field by field in place. Prices are ticks of the symbol's tick size (carried in each record
//! that has a price, in 1e-8 units), quantities are 1e-8 units, times are µs (exchange) and ns
//! (local receive), as everywhere in tickfeed.
//!
//! - [`Encoder`] appends records to a caller's `Vec<u8>` (reused: no allocation once it has grown)
//!   and numbers each symbol's records (`seq`, from 1) so a consumer sees loss.
//! - [`decode`] reads one record from the front of a byte slice: every count and length is
//!   checked against the bytes present before it is used; any input gives a record or a
//!   [`WireError`], never a panic.
//! - [`replica`] rebuilds books from records, for `tickfeed subscribe` and the tests.
//!
//! Pure byte functions: no I/O, no clock.

pub mod json;
pub mod replica;
pub mod tap;

use crate::book::fixed::{Ticks, Units};

/// The first two bytes of every record.
pub const MAGIC: [u8; 2] = *b"TF";
/// The layout version this module writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 24;
/// Bytes of one level (price ticks i64, quantity i64).
pub const LEVEL_LEN: usize = 16;
/// The largest record accepted: a full book of 5,000 levels a side is 160 KB; a peer's length
/// beyond this is an error, not an allocation.
pub const MAX_RECORD_LEN: usize = 1 << 20;
/// The most levels one side of a record may carry (u32 on the wire, bounded by
/// [`MAX_RECORD_LEN`] in practice).
pub const MAX_LEVELS: usize = (MAX_RECORD_LEN - HEADER_LEN) / LEVEL_LEN;

/// What a record is (header byte 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Top of book after a change.
    Top = 1,
    /// A depth diff as applied to a synced book.
    Diff = 2,
    /// A trade (or an aggregate trade).
    Trade = 3,
    /// A book: top N levels a side, or every level.
    Snapshot = 4,
    /// The book's sync state changed.
    Status = 5,
    /// A symbol's name, tick and step: what the numeric symbol id means.
    Symbol = 6,
}

impl Kind {
    /// The kind of a header byte.
    pub fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Top,
            2 => Kind::Diff,
            3 => Kind::Trade,
            4 => Kind::Snapshot,
            5 => Kind::Status,
            6 => Kind::Symbol,
            _ => return None,
        })
    }

    /// The name used in NATS subjects and in JSON (`tickfeed.<venue>.<SYMBOL>.<kind>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Top => "top",
            Kind::Diff => "diff",
            Kind::Trade => "trade",
            Kind::Snapshot => "snapshot",
            Kind::Status => "status",
            Kind::Symbol => "symbol",
        }
    }

    /// Bytes of the fixed part of the body (before any levels or name).
    pub const fn body_len(self) -> usize {
        match self {
            Kind::Top => 64,
            Kind::Diff => 56,
            Kind::Trade => 56,
            Kind::Snapshot => 40,
            Kind::Status => 24,
            Kind::Symbol => 24,
        }
    }
}

/// The 24-byte header of every record.
///
/// | offset | type | field |
/// |---|---|---|
/// | 0 | `[u8; 2]` | magic `"TF"` |
/// | 2 | u8 | version (1) |
/// | 3 | u8 | kind |
/// | 4 | u32 | length of the whole record, header included |
/// | 8 | u32 | symbol id |
/// | 12 | u32 | reserved, 0 |
/// | 16 | u64 | sequence number of the symbol's records of this kind, from 1 |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What follows.
    pub kind: Kind,
    /// Bytes of the whole record.
    pub len: u32,
    /// The publisher's number for the symbol (its [`SymbolRec`] says which).
    pub symbol: u32,
    /// The record's number among the symbol's records of its kind, from 1.
    pub seq: u64,
}

/// How the book sits with the exchange's (a [`StatusRec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncStatus {
    /// Equal to the exchange's: diffs and tops follow.
    Synced = 1,
    /// Discarded, waiting for a snapshot: ignore the book until the next [`SnapshotRec`].
    Resyncing = 2,
    /// A gap in the exchange's sequence was seen; a resync follows.
    Gap = 3,
}

impl SyncStatus {
    /// The status of a byte.
    pub fn from_u8(b: u8) -> Option<SyncStatus> {
        Some(match b {
            1 => SyncStatus::Synced,
            2 => SyncStatus::Resyncing,
            3 => SyncStatus::Gap,
            _ => return None,
        })
    }
}

/// Top of book. A side that is empty has price 0 and quantity 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopRec {
    /// The book's update id.
    pub update_id: u64,
    /// Exchange event time, µs since the epoch (0 when the exchange gave none).
    pub exch_time_us: i64,
    /// Local receive time, ns since the epoch.
    pub recv_ns: i64,
    /// Tick size, 1e-8 units.
    pub tick: i64,
    /// Best bid (price ticks, quantity units).
    pub bid: Option<(Ticks, Units)>,
    /// Best ask (price ticks, quantity units).
    pub ask: Option<(Ticks, Units)>,
}

/// The levels of one side of a record, in place: (price ticks, quantity units) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels<'a>(&'a [u8]);

impl<'a> Levels<'a> {
    /// How many levels.
    pub fn len(&self) -> usize {
        self.0.len() / LEVEL_LEN
    }
    /// No levels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The levels in record order.
    pub fn iter(&self) -> impl Iterator<Item = (Ticks, Units)> + 'a {
        self.0.chunks_exact(LEVEL_LEN).map(|c| (i64_at(c, 0), i64_at(c, 8)))
    }
}

/// A depth diff applied to a synced book: absolute quantities, 0 removes the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffRec<'a> {
    /// The exchange's first update id in the event (`U`).
    pub first_id: u64,
    /// The exchange's last update id in the event (`u`): the book's id after it.
    pub last_id: u64,
    /// The book's update id before it: a replica applies the diff only to a book at this id.
    pub prev_id: u64,
    /// Exchange event time, µs.
    pub exch_time_us: i64,
    /// Local receive time, ns.
    pub recv_ns: i64,
    /// Tick size, 1e-8 units.
    pub tick: i64,
    /// Bid levels as sent.
    pub bids: Levels<'a>,
    /// Ask levels as sent.
    pub asks: Levels<'a>,
}

/// A trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeRec {
    /// Trade id (aggregate trade id when `aggregate`).
    pub trade_id: u64,
    /// Trade time, µs.
    pub exch_time_us: i64,
    /// Local receive time, ns.
    pub recv_ns: i64,
    /// Tick size, 1e-8 units.
    pub tick: i64,
    /// Price, ticks.
    pub price: Ticks,
    /// Quantity, units.
    pub qty: Units,
    /// The buyer was the maker (the taker sold).
    pub buyer_maker: bool,
    /// An aggregate trade (`@aggTrade`).
    pub aggregate: bool,
}

/// A book: bids best first, asks best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRec<'a> {
    /// The book's update id.
    pub update_id: u64,
    /// Local time it was taken, ns.
    pub recv_ns: i64,
    /// Tick size, 1e-8 units.
    pub tick: i64,
    /// 0 for every level held, else the most levels a side it was cut to.
    pub depth: u32,
    /// Bids, best first.
    pub bids: Levels<'a>,
    /// Asks, best first.
    pub asks: Levels<'a>,
}

/// The book's state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRec {
    /// The new state.
    pub status: SyncStatus,
    /// Why, for a resync (a [`crate::notice::ResyncCause`] code; 0 for none).
    pub cause: u8,
    /// The book's update id when it changed.
    pub update_id: u64,
    /// Local time, ns.
    pub recv_ns: i64,
}

/// What a symbol id means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolRec<'a> {
    /// Tick size, 1e-8 units (0 when unknown: prices are then in 1e-8 units, tick 1).
    pub tick: i64,
    /// Lot step, 1e-8 units (0 when unknown).
    pub step: i64,
    /// 0 spot, 1 USDⓈ-M futures.
    pub venue: u8,
    /// Decimals prices are printed with.
    pub price_decimals: u8,
    /// Uppercase symbol, at most 255 bytes of UTF-8.
    pub name: &'a str,
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// [`Kind::Top`].
    Top(TopRec),
    /// [`Kind::Diff`].
    Diff(DiffRec<'a>),
    /// [`Kind::Trade`].
    Trade(TradeRec),
    /// [`Kind::Snapshot`].
    Snapshot(SnapshotRec<'a>),
    /// [`Kind::Status`].
    Status(StatusRec),
    /// [`Kind::Symbol`].
    Symbol(SymbolRec<'a>),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header or than the header's length.
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// The first two bytes are not `"TF"`.
    Magic,
    /// A layout version this reader does not know.
    Version(u8),
    /// A kind this reader does not know (skip `len` bytes to go on).
    UnknownKind {
        /// The kind byte.
        kind: u8,
        /// The record's length.
        len: u32,
    },
    /// A length below the kind's fixed size, above [`MAX_RECORD_LEN`], or not what the
    /// record's counts add up to.
    Length(u32),
    /// A field out of its range (a status byte, a flag, a non-UTF-8 name).
    Field(&'static str),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Short { need, have } => write!(f, "record cut short: {have} of {need} bytes"),
            WireError::Magic => write!(f, "not a tickfeed record (no \"TF\" magic)"),
            WireError::Version(v) => write!(f, "record layout version {v}, this reader knows {VERSION}"),
            WireError::UnknownKind { kind, len } => write!(f, "unknown record kind {kind} ({len} bytes)"),
            WireError::Length(l) => write!(f, "record length {l} does not fit its kind"),
            WireError::Field(what) => write!(f, "record field out of range: {what}"),
        }
    }
}

impl std::error::Error for WireError {}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

/// Reads the header at the front of `buf` without looking at the body (a consumer that only
/// routes records needs no more). The length is checked against the bounds, not against `buf`.
pub fn decode_header(buf: &[u8]) -> Result<Header, WireError> {
    if buf.len() < HEADER_LEN {
        return Err(WireError::Short { need: HEADER_LEN, have: buf.len() });
    }
    if buf[0..2] != MAGIC {
        return Err(WireError::Magic);
    }
    if buf[2] != VERSION {
        return Err(WireError::Version(buf[2]));
    }
    let len = u32_at(buf, 4);
    let Some(kind) = Kind::from_u8(buf[3]) else {
        return Err(WireError::UnknownKind { kind: buf[3], len });
    };
    if (len as usize) < HEADER_LEN + kind.body_len() || len as usize > MAX_RECORD_LEN {
        return Err(WireError::Length(len));
    }
    Ok(Header { kind, len, symbol: u32_at(buf, 8), seq: u64_at(buf, 16) })
}

/// Reads one record from the front of `buf`: its header and body. `buf` may hold more records
/// after it (at `header.len`).
pub fn decode(buf: &[u8]) -> Result<(Header, Record<'_>), WireError> {
    let h = decode_header(buf)?;
    let len = h.len as usize;
    if buf.len() < len {
        return Err(WireError::Short { need: len, have: buf.len() });
    }
    let body = &buf[HEADER_LEN..len];
    let levels = |counts_at: usize, fixed: usize| -> Result<(Levels<'_>, Levels<'_>), WireError> {
        let (nb, na) = (u32_at(body, counts_at) as usize, u32_at(body, counts_at + 4) as usize);
        // Both counts are at most 2^32 - 1: the sum and product fit in u64 on any target.
        let need = (nb as u64 + na as u64) * LEVEL_LEN as u64 + fixed as u64;
        if need != body.len() as u64 {
            return Err(WireError::Length(h.len));
        }
        let split = fixed + nb * LEVEL_LEN;
        Ok((Levels(&body[fixed..split]), Levels(&body[split..])))
    };
    let fixed_only = |r: Record<'static>| {
        if body.len() == h.kind.body_len() {
            Ok(r)
        } else {
            Err(WireError::Length(h.len))
        }
    };
    let rec = match h.kind {
        Kind::Top => {
            let side = |at: usize| {
                let (p, q) = (i64_at(body, at), i64_at(body, at + 8));
                (q != 0).then_some((p, q))
            };
            fixed_only(Record::Top(TopRec {
                update_id: u64_at(body, 0),
                exch_time_us: i64_at(body, 8),
                recv_ns: i64_at(body, 16),
                tick: i64_at(body, 24),
                bid: side(32),
                ask: side(48),
            }))?
        }
        Kind::Diff => {
            let (bids, asks) = levels(48, 56)?;
            Record::Diff(DiffRec {
                first_id: u64_at(body, 0),
                last_id: u64_at(body, 8),
                prev_id: u64_at(body, 16),
                exch_time_us: i64_at(body, 24),
                recv_ns: i64_at(body, 32),
                tick: i64_at(body, 40),
                bids,
                asks,
            })
        }
        Kind::Trade => {
            let flags = body[48];
            if flags & !3 != 0 {
                return Err(WireError::Field("trade flags"));
            }
            fixed_only(Record::Trade(TradeRec {
                trade_id: u64_at(body, 0),
                exch_time_us: i64_at(body, 8),
                recv_ns: i64_at(body, 16),
                tick: i64_at(body, 24),
                price: i64_at(body, 32),
                qty: i64_at(body, 40),
                buyer_maker: flags & 1 != 0,
                aggregate: flags & 2 != 0,
            }))?
        }
        Kind::Snapshot => {
            let (bids, asks) = levels(24, 40)?;
            Record::Snapshot(SnapshotRec {
                update_id: u64_at(body, 0),
                recv_ns: i64_at(body, 8),
                tick: i64_at(body, 16),
                depth: u32_at(body, 32),
                bids,
                asks,
            })
        }
        Kind::Status => {
            let status = SyncStatus::from_u8(body[16]).ok_or(WireError::Field("status"))?;
            fixed_only(Record::Status(StatusRec {
                update_id: u64_at(body, 0),
                recv_ns: i64_at(body, 8),
                status,
                cause: body[17],
            }))?
        }
        Kind::Symbol => {
            let name_len = body[18] as usize;
            if body.len() != padded(Kind::Symbol.body_len() + name_len) {
                return Err(WireError::Length(h.len));
            }
            let name = std::str::from_utf8(&body[24..24 + name_len]).map_err(|_| WireError::Field("symbol name"))?;
            Record::Symbol(SymbolRec {
                tick: i64_at(body, 0),
                step: i64_at(body, 8),
                venue: body[16],
                price_decimals: body[17],
                name,
            })
        }
    };
    Ok((h, rec))
}

/// `n` rounded up to a multiple of 8 (records keep 8-byte alignment back to back).
const fn padded(n: usize) -> usize {
    (n + 7) & !7
}

/// Why a record could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// More levels than [`MAX_LEVELS`] or a record beyond [`MAX_RECORD_LEN`].
    TooLarge,
    /// A symbol name over 255 bytes.
    NameTooLong,
}

/// Writes records, numbering each symbol's records of each kind from 1.
///
/// The sequence numbers are the encoder's: one encoder per publisher, so a consumer of that
/// publisher sees every gap in its numbers as records lost on the way. They count per kind
/// because a consumer may take some kinds only (a NATS subject is one kind). Symbol ids are the
/// publisher's dense book indices (0, 1, 2, ...): the encoder keeps one counter set per id up
/// to the largest it was given.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    seqs: Vec<[u64; KINDS]>,
}

/// How many kinds there are (kind bytes 1..=KINDS).
pub const KINDS: usize = 6;

impl Encoder {
    /// An encoder with no symbol numbered yet.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// The last sequence number given to `symbol`'s records of `kind` (0 before any).
    pub fn last_seq(&self, symbol: u32, kind: Kind) -> u64 {
        self.seqs.get(symbol as usize).map_or(0, |s| s[kind as usize - 1])
    }

    fn next_seq(&mut self, symbol: u32, kind: Kind) -> u64 {
        let i = symbol as usize;
        if i >= self.seqs.len() {
            // Grows once per new symbol id: not on the per-event path after warm-up.
            self.seqs.resize(i + 1, [0; KINDS]);
        }
        let s = &mut self.seqs[i][kind as usize - 1];
        *s += 1;
        *s
    }

    fn header(&mut self, out: &mut Vec<u8>, kind: Kind, symbol: u32, len: usize) {
        let seq = self.next_seq(symbol, kind);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(kind as u8);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&symbol.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
    }

    /// Appends a [`TopRec`].
    pub fn top(&mut self, out: &mut Vec<u8>, symbol: u32, r: &TopRec) {
        self.header(out, Kind::Top, symbol, HEADER_LEN + Kind::Top.body_len());
        for v in [r.update_id as i64, r.exch_time_us, r.recv_ns, r.tick] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for side in [r.bid, r.ask] {
            let (p, q) = side.unwrap_or((0, 0));
            out.extend_from_slice(&p.to_le_bytes());
            out.extend_from_slice(&q.to_le_bytes());
        }
    }

    /// Appends a [`DiffRec`] with the given levels (price ticks, quantity units).
    pub fn diff<B, A>(
        &mut self,
        out: &mut Vec<u8>,
        symbol: u32,
        head: DiffHead,
        bids: B,
        asks: A,
    ) -> Result<(), EncodeError>
    where
        B: ExactSizeIterator<Item = (Ticks, Units)>,
        A: ExactSizeIterator<Item = (Ticks, Units)>,
    {
        let len = levels_len(Kind::Diff, bids.len(), asks.len())?;
        self.header(out, Kind::Diff, symbol, len);
        for v in
            [head.first_id as i64, head.last_id as i64, head.prev_id as i64, head.exch_time_us, head.recv_ns, head.tick]
        {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(bids.len() as u32).to_le_bytes());
        out.extend_from_slice(&(asks.len() as u32).to_le_bytes());
        push_levels(out, bids);
        push_levels(out, asks);
        Ok(())
    }

    /// Appends a [`TradeRec`].
    pub fn trade(&mut self, out: &mut Vec<u8>, symbol: u32, r: &TradeRec) {
        self.header(out, Kind::Trade, symbol, HEADER_LEN + Kind::Trade.body_len());
        for v in [r.trade_id as i64, r.exch_time_us, r.recv_ns, r.tick, r.price, r.qty] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(u8::from(r.buyer_maker) | (u8::from(r.aggregate) << 1));
        out.extend_from_slice(&[0; 7]);
    }

    /// Appends a [`SnapshotRec`]: `bids` and `asks` best first.
    pub fn snapshot<B, A>(
        &mut self,
        out: &mut Vec<u8>,
        symbol: u32,
        head: SnapshotHead,
        bids: B,
        asks: A,
    ) -> Result<(), EncodeError>
    where
        B: ExactSizeIterator<Item = (Ticks, Units)>,
        A: ExactSizeIterator<Item = (Ticks, Units)>,
    {
        self.snapshot_head(out, symbol, head, bids.len(), asks.len())?;
        push_levels(out, bids);
        push_levels(out, asks);
        Ok(())
    }

    /// Appends a [`SnapshotRec`]'s header and fixed part for `bids` and `asks` levels; the
    /// caller then appends exactly that many levels with [`push_level`], bids first, best first
    /// (for a book walked by callback, without collecting its levels first).
    pub fn snapshot_head(
        &mut self,
        out: &mut Vec<u8>,
        symbol: u32,
        head: SnapshotHead,
        bids: usize,
        asks: usize,
    ) -> Result<(), EncodeError> {
        let len = levels_len(Kind::Snapshot, bids, asks)?;
        self.header(out, Kind::Snapshot, symbol, len);
        for v in [head.update_id as i64, head.recv_ns, head.tick] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(bids as u32).to_le_bytes());
        out.extend_from_slice(&(asks as u32).to_le_bytes());
        out.extend_from_slice(&head.depth.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        Ok(())
    }

    /// Appends a [`StatusRec`].
    pub fn status(&mut self, out: &mut Vec<u8>, symbol: u32, r: &StatusRec) {
        self.header(out, Kind::Status, symbol, HEADER_LEN + Kind::Status.body_len());
        out.extend_from_slice(&r.update_id.to_le_bytes());
        out.extend_from_slice(&r.recv_ns.to_le_bytes());
        out.push(r.status as u8);
        out.push(r.cause);
        out.extend_from_slice(&[0; 6]);
    }

    /// Appends a [`SymbolRec`].
    pub fn symbol(&mut self, out: &mut Vec<u8>, symbol: u32, r: &SymbolRec<'_>) -> Result<(), EncodeError> {
        let name = r.name.as_bytes();
        if name.len() > 255 {
            return Err(EncodeError::NameTooLong);
        }
        let body = padded(Kind::Symbol.body_len() + name.len());
        self.header(out, Kind::Symbol, symbol, HEADER_LEN + body);
        out.extend_from_slice(&r.tick.to_le_bytes());
        out.extend_from_slice(&r.step.to_le_bytes());
        out.push(r.venue);
        out.push(r.price_decimals);
        out.push(name.len() as u8);
        out.extend_from_slice(&[0; 5]);
        out.extend_from_slice(name);
        out.resize(out.len() + (body - Kind::Symbol.body_len() - name.len()), 0);
        Ok(())
    }
}

/// The fixed fields of a diff record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffHead {
    /// `U`.
    pub first_id: u64,
    /// `u`.
    pub last_id: u64,
    /// The book's id before the diff.
    pub prev_id: u64,
    /// Exchange event time, µs.
    pub exch_time_us: i64,
    /// Local receive time, ns.
    pub recv_ns: i64,
    /// Tick size, 1e-8 units.
    pub tick: i64,
}

/// The fixed fields of a snapshot record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHead {
    /// The book's update id.
    pub update_id: u64,
    /// Local time, ns.
    pub recv_ns: i64,
    /// Tick size, 1e-8 units.
    pub tick: i64,
    /// 0 for every level, else the cut.
    pub depth: u32,
}

fn levels_len(kind: Kind, bids: usize, asks: usize) -> Result<usize, EncodeError> {
    if bids > MAX_LEVELS || asks > MAX_LEVELS {
        return Err(EncodeError::TooLarge);
    }
    let len = HEADER_LEN + kind.body_len() + (bids + asks) * LEVEL_LEN;
    if len > MAX_RECORD_LEN {
        return Err(EncodeError::TooLarge);
    }
    Ok(len)
}

fn push_levels(out: &mut Vec<u8>, levels: impl Iterator<Item = (Ticks, Units)>) {
    for (p, q) in levels {
        push_level(out, p, q);
    }
}

/// Appends one level (price ticks, quantity units): see [`Encoder::snapshot_head`].
pub fn push_level(out: &mut Vec<u8>, price: Ticks, qty: Units) {
    out.extend_from_slice(&price.to_le_bytes());
    out.extend_from_slice(&qty.to_le_bytes());
}

/// A consumer's check of one symbol's sequence numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqCheck {
    last: u64,
}

/// Where a record's number falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next one (or the first seen).
    Next,
    /// `lost` records were skipped before this one.
    Lost {
        /// How many numbers were missed.
        lost: u64,
    },
    /// At or below one already seen: a repeat, or a publisher that restarted (numbers from 1).
    Behind,
}

impl SeqCheck {
    /// Takes the next record's number.
    pub fn on(&mut self, seq: u64) -> SeqOutcome {
        let out = if self.last == 0 || seq == self.last + 1 {
            SeqOutcome::Next
        } else if seq > self.last {
            SeqOutcome::Lost { lost: seq - self.last - 1 }
        } else {
            SeqOutcome::Behind
        };
        self.last = seq;
        out
    }

    /// The last number seen (0 before any).
    pub fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests;
