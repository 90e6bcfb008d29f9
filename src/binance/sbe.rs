//! Binance's SBE market-data messages (schema `spot_stream`, id 1, version 0, `stream_1_0.xml`):
//! one websocket binary frame in, a typed event out, prices and quantities in the same 1e-8
//! [`Units`] and the same types the JSON decoders give ([`DepthHeader`], [`BookTicker`], [`Trade`],
//! [`RawLevel`] in a [`LevelBuf`]), so the sync engine cannot tell which wire a book came from.
//!
//! Sans-IO and allocation-free after warm-up: levels and trades go into caller-owned vectors that
//! are cleared and refilled, strings borrow the frame. Every length the peer controls (the root
//! block, each group's entry size and count, the symbol) is checked against the bytes actually
//! present before it is used, so any input gives a value or an [`SbeError`], never a panic.
//!
//! Forward compatibility follows the SBE rules: a message of a newer schema version is read by
//! honouring the header's `blockLength` (root fields added later are skipped) and each group's own
//! `blockLength` (entry fields added later are skipped); bytes after the symbol are tolerated only
//! in a newer version (they can be new variable-length fields). A different schema id is refused.
//!
//! It is not the connection (API key header, streams), not an encoder (the simulator will have its
//! own), and it knows nothing of books.

use super::{BookTicker, DepthHeader, LevelBuf, RawLevel, Trade};
use crate::book::fixed::{Units, SCALE_DIGITS};
use std::fmt;

/// `id` of the schema this decoder implements (`messageSchema id="1"`).
pub const SCHEMA_ID: u16 = 1;
/// `version` of that schema. Messages of this version or newer are accepted.
pub const SCHEMA_VERSION: u16 = 0;
/// The messageHeader composite: blockLength, templateId, schemaId, version, all `uint16`.
pub const HEADER_LEN: usize = 8;

/// `templateId` of `TradesStreamEvent` (`<symbol>@trade`).
pub const TRADES_TEMPLATE: u16 = 10000;
/// `templateId` of `BestBidAskStreamEvent` (`<symbol>@bestBidAsk`).
pub const BEST_BID_ASK_TEMPLATE: u16 = 10001;
/// `templateId` of `DepthSnapshotStreamEvent` (`<symbol>@depth20`).
pub const DEPTH_SNAPSHOT_TEMPLATE: u16 = 10002;
/// `templateId` of `DepthDiffStreamEvent` (`<symbol>@depth`).
pub const DEPTH_DIFF_TEMPLATE: u16 = 10003;

/// Root block of `TradesStreamEvent` at version 0: eventTime i64, transactTime i64,
/// priceExponent i8, qtyExponent i8.
const TRADES_BLOCK: u16 = 18;
/// One `trades` entry at version 0: id i64, price i64, qty i64, isBuyerMaker u8 (isBestMatch is a
/// constant and takes no bytes).
const TRADE_ENTRY: u16 = 25;
/// Root block of `BestBidAskStreamEvent`: eventTime, bookUpdateId, two exponents, four mantissas.
const BEST_BID_ASK_BLOCK: u16 = 50;
/// Root block of `DepthSnapshotStreamEvent`: eventTime, bookUpdateId, two exponents.
const DEPTH_SNAPSHOT_BLOCK: u16 = 18;
/// Root block of `DepthDiffStreamEvent`: eventTime, firstBookUpdateId, lastBookUpdateId, two
/// exponents.
const DEPTH_DIFF_BLOCK: u16 = 26;
/// One `bids` or `asks` entry: price i64, qty i64.
const LEVEL_ENTRY: u16 = 16;
/// `groupSizeEncoding.numInGroup` is a uint32 with `maxValue="2147483647"`.
const MAX_NUM_IN_GROUP: u32 = 2_147_483_647;

/// The 8-byte messageHeader every message starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Length of the root block that follows the header (fixed fields only).
    pub block_length: u16,
    /// Which message this is (one of the `*_TEMPLATE` constants, or an unknown one).
    pub template_id: u16,
    /// The schema's id; [`SCHEMA_ID`] for every message this decoder accepts.
    pub schema_id: u16,
    /// The schema version the sender encoded with; at least [`SCHEMA_VERSION`].
    pub version: u16,
}

/// Where in a message a read ran out of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The 8-byte messageHeader.
    Header,
    /// The root block of fixed fields, as long as the header's `blockLength`.
    RootBlock,
    /// A repeating group's dimensions (`groupSizeEncoding` or `groupSize16Encoding`).
    GroupHeader,
    /// A repeating group's entries (`numInGroup` x the group's `blockLength`).
    GroupEntries,
    /// The `symbol` varString8 length byte.
    SymbolLength,
    /// The `symbol` varString8 bytes.
    Symbol,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "message header",
            Part::RootBlock => "root block",
            Part::GroupHeader => "group header",
            Part::GroupEntries => "group entries",
            Part::SymbolLength => "symbol length",
            Part::Symbol => "symbol",
        })
    }
}

/// Why a decimal field (mantissa x 10^exponent) has no exact value in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumProblem {
    /// Digits below 1e-8 would be lost (e.g. mantissa 1, exponent -9).
    Inexact,
    /// The value is above i64::MAX units (92,233,720,368.54775807).
    Overflow,
    /// A negative price or quantity: Binance sends none, and the JSON decoders refuse them too.
    Negative,
}

/// Why an SBE frame was refused. None is fatal to a connection: like a bad JSON message, the
/// frame is counted and skipped. On an error the caller's level and trade buffers hold an
/// unspecified prefix of the message's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SbeError {
    /// The frame ends inside `part`: `need` bytes at offset `at`, but the frame has `len`.
    Truncated {
        /// What was being read.
        part: Part,
        /// Offset of the read in the frame.
        at: usize,
        /// Bytes the read needed (saturated to `usize::MAX` for counts that overflow).
        need: usize,
        /// Length of the frame.
        len: usize,
    },
    /// The header's schemaId is not [`SCHEMA_ID`].
    SchemaId(u16),
    /// The header's version is older than [`SCHEMA_VERSION`].
    Version(u16),
    /// A templateId this schema does not define.
    UnknownTemplate(u16),
    /// A decoder for one template was given another.
    WrongTemplate {
        /// The template the caller asked for.
        expected: u16,
        /// The template in the header.
        got: u16,
    },
    /// The header's blockLength is shorter than the schema's root block for this template.
    ShortBlock {
        /// The template.
        template: u16,
        /// The header's blockLength.
        block_length: u16,
        /// The schema's root block length at version 0.
        min: u16,
    },
    /// A group's blockLength is shorter than the schema's entry for that group.
    ShortEntry {
        /// The group's name in the schema.
        group: &'static str,
        /// The group header's blockLength.
        block_length: u16,
        /// The schema's entry length.
        min: u16,
    },
    /// A `trades` group count above the schema's maxValue (2147483647).
    GroupCount {
        /// The group's name in the schema.
        group: &'static str,
        /// The group header's numInGroup.
        count: u32,
    },
    /// A price or quantity that has no exact value in 1e-8 units.
    Number {
        /// The field's name in the schema (`bidQty`, `asks.price`, ...).
        field: &'static str,
        /// The mantissa on the wire.
        mantissa: i64,
        /// The message's exponent for that field.
        exponent: i8,
        /// What is wrong with it.
        problem: NumProblem,
    },
    /// A negative trade id or book update id (both are `int64` on the wire, never negative).
    NegativeId {
        /// The field's name in the schema.
        field: &'static str,
        /// The value on the wire.
        value: i64,
    },
    /// `isBuyerMaker` is neither False (0) nor True (1).
    BadBool(u8),
    /// The symbol is not UTF-8.
    SymbolUtf8,
    /// Bytes after the symbol in a message of the schema's own version, which has nothing there.
    TrailingBytes(usize),
}

impl fmt::Display for SbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SbeError::Truncated { part, at, need, len } => {
                write!(f, "SBE frame truncated in the {part}: {need} bytes needed at offset {at} of {len}")
            }
            SbeError::SchemaId(id) => write!(f, "SBE schema id {id}, expected {SCHEMA_ID}"),
            SbeError::Version(v) => write!(f, "SBE schema version {v} is older than {SCHEMA_VERSION}"),
            SbeError::UnknownTemplate(t) => write!(f, "unknown SBE template id {t}"),
            SbeError::WrongTemplate { expected, got } => {
                write!(f, "SBE template id {got} where {expected} was expected")
            }
            SbeError::ShortBlock { template, block_length, min } => {
                write!(f, "SBE template {template}: root blockLength {block_length} is below the schema's {min}")
            }
            SbeError::ShortEntry { group, block_length, min } => {
                write!(f, "SBE group {group}: entry blockLength {block_length} is below the schema's {min}")
            }
            SbeError::GroupCount { group, count } => {
                write!(f, "SBE group {group}: numInGroup {count} is above the schema's maximum")
            }
            SbeError::Number { field, mantissa, exponent, problem } => {
                let why = match problem {
                    NumProblem::Inexact => "has digits below 1e-8",
                    NumProblem::Overflow => "does not fit 1e-8 units in an i64",
                    NumProblem::Negative => "is negative",
                };
                write!(f, "SBE {field} = {mantissa}e{exponent} {why}")
            }
            SbeError::NegativeId { field, value } => write!(f, "SBE {field} is negative ({value})"),
            SbeError::BadBool(v) => write!(f, "SBE isBuyerMaker is {v}, neither 0 nor 1"),
            SbeError::SymbolUtf8 => f.write_str("SBE symbol is not UTF-8"),
            SbeError::TrailingBytes(n) => write!(f, "SBE frame has {n} bytes after the symbol"),
        }
    }
}

impl std::error::Error for SbeError {}

/// A `DepthSnapshotStreamEvent` (`<symbol>@depth20`); its levels are in the [`LevelBuf`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthSnapshot<'a> {
    /// `eventTime`, microseconds since the epoch, as sent.
    pub event_time: i64,
    /// `bookUpdateId`: the book's update id these levels belong to.
    pub book_update_id: u64,
    /// `symbol`, as sent (uppercase).
    pub symbol: &'a str,
}

/// A `BestBidAskStreamEvent`: JSON's bookTicker plus the event time JSON lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestBidAsk<'a> {
    /// `eventTime`, microseconds since the epoch, as sent.
    pub event_time: i64,
    /// `bookUpdateId`, symbol and the four prices and quantities, as the JSON bookTicker has them.
    pub ticker: BookTicker<'a>,
}

/// The root of a `TradesStreamEvent`; its trades are in the `Vec<TradeEntry>` passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradesHeader<'a> {
    /// `eventTime`, microseconds since the epoch, as sent.
    pub event_time: i64,
    /// `transactTime`: when the trades happened, microseconds, as sent (JSON's `T`).
    pub transact_time: i64,
    /// `symbol`, as sent (uppercase).
    pub symbol: &'a str,
}

/// One entry of the `trades` group. It borrows nothing, so one vector serves every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeEntry {
    /// `id`.
    pub trade_id: u64,
    /// `price` in 1e-8 units.
    pub price: Units,
    /// `qty` in 1e-8 units.
    pub qty: Units,
    /// `isBuyerMaker`: the buyer was the maker (the aggressor sold).
    pub buyer_is_maker: bool,
}

impl<'a> TradesHeader<'a> {
    /// One entry as the JSON decoders' [`Trade`]: `trade_time` is `transactTime`, and both times
    /// are in microseconds here.
    pub fn trade(&self, e: &TradeEntry) -> Trade<'a> {
        Trade {
            event_time: self.event_time,
            symbol: self.symbol,
            trade_id: e.trade_id,
            price: e.price,
            qty: e.qty,
            trade_time: self.transact_time,
            buyer_is_maker: e.buyer_is_maker,
        }
    }
}

/// Any message of the schema, as [`decode`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbeEvent<'a> {
    /// `DepthDiffStreamEvent`: `first_id` is firstBookUpdateId (U), `final_id` lastBookUpdateId
    /// (u), `event_time` in microseconds; levels in [`SbeBufs::levels`].
    DepthDiff(DepthHeader<'a>),
    /// `DepthSnapshotStreamEvent`; levels in [`SbeBufs::levels`].
    DepthSnapshot(DepthSnapshot<'a>),
    /// `TradesStreamEvent`; trades in [`SbeBufs::trades`].
    Trades(TradesHeader<'a>),
    /// `BestBidAskStreamEvent`.
    BestBidAsk(BestBidAsk<'a>),
}

/// The reused storage [`decode`] fills: cleared by each call, its capacity kept.
#[derive(Debug, Default)]
pub struct SbeBufs {
    /// Bids and asks of a depth diff or depth snapshot, in wire order.
    pub levels: LevelBuf,
    /// Trades of a trades event, in wire order.
    pub trades: Vec<TradeEntry>,
}

/// Reads the messageHeader and checks the schema id and version; the template is not checked.
pub fn decode_header(frame: &[u8]) -> Result<MessageHeader, SbeError> {
    let mut c = Cursor::new(frame);
    let h = c.header()?;
    check_schema(&h)?;
    Ok(h)
}

/// Decodes any message of the schema. Depth levels replace `bufs.levels`, trades `bufs.trades`;
/// the other buffer is left as it was.
pub fn decode<'a>(frame: &'a [u8], bufs: &mut SbeBufs) -> Result<SbeEvent<'a>, SbeError> {
    let mut c = Cursor::new(frame);
    let h = c.header()?;
    check_schema(&h)?;
    match h.template_id {
        DEPTH_DIFF_TEMPLATE => depth_diff(c, &h, &mut bufs.levels).map(SbeEvent::DepthDiff),
        DEPTH_SNAPSHOT_TEMPLATE => depth_snapshot(c, &h, &mut bufs.levels).map(SbeEvent::DepthSnapshot),
        TRADES_TEMPLATE => trades(c, &h, &mut bufs.trades).map(SbeEvent::Trades),
        BEST_BID_ASK_TEMPLATE => best_bid_ask(c, &h).map(SbeEvent::BestBidAsk),
        t => Err(SbeError::UnknownTemplate(t)),
    }
}

/// Decodes a `DepthDiffStreamEvent`; its levels replace the contents of `bufs`.
pub fn decode_depth_diff<'a>(frame: &'a [u8], bufs: &mut LevelBuf) -> Result<DepthHeader<'a>, SbeError> {
    let (c, h) = expect(frame, DEPTH_DIFF_TEMPLATE)?;
    depth_diff(c, &h, bufs)
}

/// Decodes a `DepthSnapshotStreamEvent`; its levels replace the contents of `bufs`.
pub fn decode_depth_snapshot<'a>(frame: &'a [u8], bufs: &mut LevelBuf) -> Result<DepthSnapshot<'a>, SbeError> {
    let (c, h) = expect(frame, DEPTH_SNAPSHOT_TEMPLATE)?;
    depth_snapshot(c, &h, bufs)
}

/// Decodes a `TradesStreamEvent`; its trades replace the contents of `out`.
pub fn decode_trades<'a>(frame: &'a [u8], out: &mut Vec<TradeEntry>) -> Result<TradesHeader<'a>, SbeError> {
    let (c, h) = expect(frame, TRADES_TEMPLATE)?;
    trades(c, &h, out)
}

/// Decodes a `BestBidAskStreamEvent`.
pub fn decode_best_bid_ask(frame: &[u8]) -> Result<BestBidAsk<'_>, SbeError> {
    let (c, h) = expect(frame, BEST_BID_ASK_TEMPLATE)?;
    best_bid_ask(c, &h)
}

fn expect(frame: &[u8], template: u16) -> Result<(Cursor<'_>, MessageHeader), SbeError> {
    let mut c = Cursor::new(frame);
    let h = c.header()?;
    check_schema(&h)?;
    if h.template_id != template {
        return Err(SbeError::WrongTemplate { expected: template, got: h.template_id });
    }
    Ok((c, h))
}

fn check_schema(h: &MessageHeader) -> Result<(), SbeError> {
    if h.schema_id != SCHEMA_ID {
        return Err(SbeError::SchemaId(h.schema_id));
    }
    // Version 0 is the oldest there is, so today this never refuses; it will once the schema moves.
    #[allow(clippy::absurd_extreme_comparisons, unused_comparisons)]
    let too_old = h.version < SCHEMA_VERSION;
    if too_old {
        return Err(SbeError::Version(h.version));
    }
    Ok(())
}

fn depth_diff<'a>(mut c: Cursor<'a>, h: &MessageHeader, bufs: &mut LevelBuf) -> Result<DepthHeader<'a>, SbeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    let mut root = c.root(h, DEPTH_DIFF_BLOCK)?;
    let event_time = root.i64()?;
    let first_id = id("firstBookUpdateId", root.i64()?)?;
    let final_id = id("lastBookUpdateId", root.i64()?)?;
    let px = Exp::new(root.i8()?);
    let qx = Exp::new(root.i8()?);
    levels(&mut c, "bids", px, qx, &mut bufs.bids)?;
    levels(&mut c, "asks", px, qx, &mut bufs.asks)?;
    let symbol = c.symbol(h)?;
    Ok(DepthHeader { event_time, symbol, first_id, final_id })
}

fn depth_snapshot<'a>(
    mut c: Cursor<'a>,
    h: &MessageHeader,
    bufs: &mut LevelBuf,
) -> Result<DepthSnapshot<'a>, SbeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    let mut root = c.root(h, DEPTH_SNAPSHOT_BLOCK)?;
    let event_time = root.i64()?;
    let book_update_id = id("bookUpdateId", root.i64()?)?;
    let px = Exp::new(root.i8()?);
    let qx = Exp::new(root.i8()?);
    levels(&mut c, "bids", px, qx, &mut bufs.bids)?;
    levels(&mut c, "asks", px, qx, &mut bufs.asks)?;
    let symbol = c.symbol(h)?;
    Ok(DepthSnapshot { event_time, book_update_id, symbol })
}

fn trades<'a>(mut c: Cursor<'a>, h: &MessageHeader, out: &mut Vec<TradeEntry>) -> Result<TradesHeader<'a>, SbeError> {
    out.clear();
    let mut root = c.root(h, TRADES_BLOCK)?;
    let event_time = root.i64()?;
    let transact_time = root.i64()?;
    let px = Exp::new(root.i8()?);
    let qx = Exp::new(root.i8()?);
    // groupSizeEncoding: blockLength uint16, numInGroup uint32.
    let block_length = c.u16(Part::GroupHeader)?;
    let count = c.u32(Part::GroupHeader)?;
    if count > MAX_NUM_IN_GROUP {
        return Err(SbeError::GroupCount { group: "trades", count });
    }
    let entries = c.group(block_length, count, "trades", TRADE_ENTRY)?;
    for mut e in entries {
        let trade_id = id("trades.id", e.i64()?)?;
        let price = px.units("trades.price", e.i64()?)?;
        let qty = qx.units("trades.qty", e.i64()?)?;
        let buyer_is_maker = match e.u8(Part::GroupEntries)? {
            0 => false,
            1 => true,
            v => return Err(SbeError::BadBool(v)),
        };
        out.push(TradeEntry { trade_id, price, qty, buyer_is_maker });
    }
    let symbol = c.symbol(h)?;
    Ok(TradesHeader { event_time, transact_time, symbol })
}

fn best_bid_ask<'a>(mut c: Cursor<'a>, h: &MessageHeader) -> Result<BestBidAsk<'a>, SbeError> {
    let mut root = c.root(h, BEST_BID_ASK_BLOCK)?;
    let event_time = root.i64()?;
    let update_id = id("bookUpdateId", root.i64()?)?;
    let px = Exp::new(root.i8()?);
    let qx = Exp::new(root.i8()?);
    let bid_price = px.units("bidPrice", root.i64()?)?;
    let bid_qty = qx.units("bidQty", root.i64()?)?;
    let ask_price = px.units("askPrice", root.i64()?)?;
    let ask_qty = qx.units("askQty", root.i64()?)?;
    let symbol = c.symbol(h)?;
    Ok(BestBidAsk { event_time, ticker: BookTicker { update_id, symbol, bid_price, bid_qty, ask_price, ask_qty } })
}

/// A `bids` or `asks` group (groupSize16Encoding: blockLength uint16, numInGroup uint16) into `out`.
fn levels(c: &mut Cursor<'_>, group: &'static str, px: Exp, qx: Exp, out: &mut Vec<RawLevel>) -> Result<(), SbeError> {
    let block_length = c.u16(Part::GroupHeader)?;
    let count = c.u16(Part::GroupHeader)?;
    let (pf, qf) = if group == "bids" { ("bids.price", "bids.qty") } else { ("asks.price", "asks.qty") };
    let entries = c.group(block_length, u32::from(count), group, LEVEL_ENTRY)?;
    // Bounded by the frame: the group call checked count x blockLength against the bytes left.
    out.reserve(entries.len());
    for mut e in entries {
        let price = px.units(pf, e.i64()?)?;
        let qty = qx.units(qf, e.i64()?)?;
        out.push(RawLevel { price, qty });
    }
    Ok(())
}

fn id(field: &'static str, value: i64) -> Result<u64, SbeError> {
    u64::try_from(value).map_err(|_| SbeError::NegativeId { field, value })
}

/// 10^0 ..= 10^18, every power of ten an i64 holds.
const POW10: [i64; 19] = {
    let mut t = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// A message's exponent, turned once into the integer step from mantissa to 1e-8 units:
/// units = mantissa x 10^(exponent + 8).
#[derive(Debug, Clone, Copy)]
struct Exp {
    exponent: i8,
    step: Step,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// exponent + 8 in 0..=18: multiply (checked).
    Mul(i64),
    /// exponent + 8 in -18..=-1: divide, only when nothing is lost.
    Div(i64),
    /// exponent + 8 above 18: every non-zero mantissa overflows.
    Huge,
    /// exponent + 8 below -18: every non-zero mantissa (below 10^19) loses digits.
    Tiny,
}

impl Exp {
    fn new(exponent: i8) -> Exp {
        let k = i32::from(exponent) + SCALE_DIGITS as i32;
        let step = match usize::try_from(k.unsigned_abs()).ok().and_then(|a| POW10.get(a).copied()) {
            Some(p) if k >= 0 => Step::Mul(p),
            Some(p) => Step::Div(p),
            None if k > 0 => Step::Huge,
            None => Step::Tiny,
        };
        Exp { exponent, step }
    }

    /// `mantissa` x 10^exponent in 1e-8 units, exactly, or why not.
    #[inline]
    fn units(self, field: &'static str, mantissa: i64) -> Result<Units, SbeError> {
        let fail = |problem| SbeError::Number { field, mantissa, exponent: self.exponent, problem };
        if mantissa < 0 {
            return Err(fail(NumProblem::Negative));
        }
        if mantissa == 0 {
            return Ok(0);
        }
        match self.step {
            Step::Mul(p) => mantissa.checked_mul(p).ok_or_else(|| fail(NumProblem::Overflow)),
            Step::Div(p) if mantissa % p == 0 => Ok(mantissa / p),
            Step::Div(_) | Step::Tiny => Err(fail(NumProblem::Inexact)),
            Step::Huge => Err(fail(NumProblem::Overflow)),
        }
    }
}

/// A bounds-checked little-endian reader over one frame, or over one block of it. `base` is the
/// block's offset in the frame and `len` the frame's length, so errors name frame offsets.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    len: usize,
    part: Part,
}

impl<'a> Cursor<'a> {
    fn new(frame: &'a [u8]) -> Cursor<'a> {
        Cursor { buf: frame, pos: 0, base: 0, len: frame.len(), part: Part::Header }
    }

    fn truncated(&self, part: Part, need: usize) -> SbeError {
        SbeError::Truncated { part, at: self.base + self.pos, need, len: self.len }
    }

    fn take(&mut self, n: usize, part: Part) -> Result<&'a [u8], SbeError> {
        let s = self.pos.checked_add(n).and_then(|end| self.buf.get(self.pos..end));
        let s = s.ok_or_else(|| self.truncated(part, n))?;
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, part: Part) -> Result<[u8; N], SbeError> {
        match self.buf.get(self.pos..).and_then(|r| r.first_chunk::<N>()) {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.truncated(part, N)),
        }
    }

    /// A sub-reader over the next `n` bytes, reporting errors as `part`.
    fn block(&mut self, n: usize, part: Part) -> Result<Cursor<'a>, SbeError> {
        let base = self.base + self.pos;
        let buf = self.take(n, part)?;
        Ok(Cursor { buf, pos: 0, base, len: self.len, part })
    }

    fn u8(&mut self, part: Part) -> Result<u8, SbeError> {
        self.array::<1>(part).map(|[b]| b)
    }

    fn u16(&mut self, part: Part) -> Result<u16, SbeError> {
        self.array(part).map(u16::from_le_bytes)
    }

    fn u32(&mut self, part: Part) -> Result<u32, SbeError> {
        self.array(part).map(u32::from_le_bytes)
    }

    /// A field of the block this cursor reads.
    fn i8(&mut self) -> Result<i8, SbeError> {
        self.array(self.part).map(i8::from_le_bytes)
    }

    /// A field of the block this cursor reads.
    fn i64(&mut self) -> Result<i64, SbeError> {
        self.array(self.part).map(i64::from_le_bytes)
    }

    fn header(&mut self) -> Result<MessageHeader, SbeError> {
        // One read for the whole header, so a short frame reports the header, not a field of it.
        let b = self.array::<HEADER_LEN>(Part::Header)?;
        let f = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Ok(MessageHeader { block_length: f(0), template_id: f(2), schema_id: f(4), version: f(6) })
    }

    /// The root block: the header's blockLength bytes, at least the schema's `min`. Bytes past
    /// the fields this decoder knows (a newer version's) are skipped with it.
    fn root(&mut self, h: &MessageHeader, min: u16) -> Result<Cursor<'a>, SbeError> {
        if h.block_length < min {
            return Err(SbeError::ShortBlock { template: h.template_id, block_length: h.block_length, min });
        }
        self.block(usize::from(h.block_length), Part::RootBlock)
    }

    /// A group's entries after its header: checks the entry size against the schema and the
    /// whole group against the bytes left before reading any entry, then hands out one
    /// sub-reader per entry (each `block_length` long, so newer entry fields are skipped).
    fn group(&mut self, block_length: u16, count: u32, group: &'static str, min: u16) -> Result<Entries<'a>, SbeError> {
        if block_length < min {
            return Err(SbeError::ShortEntry { group, block_length, min });
        }
        let bl = usize::from(block_length);
        let total = usize::try_from(u64::from(count) * u64::from(block_length)).unwrap_or(usize::MAX);
        let all = self.block(total, Part::GroupEntries)?;
        Ok(Entries { all, bl, left: usize::try_from(count).unwrap_or(usize::MAX) })
    }

    /// The `symbol` varString8 (length uint8, then UTF-8), then the end of the message.
    fn symbol(&mut self, h: &MessageHeader) -> Result<&'a str, SbeError> {
        let n = self.u8(Part::SymbolLength)?;
        let b = self.take(usize::from(n), Part::Symbol)?;
        let s = std::str::from_utf8(b).map_err(|_| SbeError::SymbolUtf8)?;
        let rest = self.buf.len().saturating_sub(self.pos);
        if rest > 0 && h.version == SCHEMA_VERSION {
            return Err(SbeError::TrailingBytes(rest));
        }
        Ok(s)
    }
}

/// The entries of one group, each a reader over exactly its group's blockLength bytes.
struct Entries<'a> {
    all: Cursor<'a>,
    bl: usize,
    left: usize,
}

impl Entries<'_> {
    fn len(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Cursor<'a>;
    fn next(&mut self) -> Option<Cursor<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Never fails: `group` sized `all` to count x blockLength.
        self.all.block(self.bl, Part::GroupEntries).ok()
    }
}
