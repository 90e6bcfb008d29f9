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

#[cfg(test)]
mod tests {
    //! Every message here is written byte by byte from `stream_1_0.xml`, little-endian, with the
    //! schema's field names in the comments. There is deliberately no encoder: the push helpers
    //! only append one primitive each.

    use super::*;

    fn u8_(b: &mut Vec<u8>, v: u8) {
        b.push(v);
    }
    fn i8_(b: &mut Vec<u8>, v: i8) {
        b.extend_from_slice(&v.to_le_bytes());
    }
    fn u16_(b: &mut Vec<u8>, v: u16) {
        b.extend_from_slice(&v.to_le_bytes());
    }
    fn u32_(b: &mut Vec<u8>, v: u32) {
        b.extend_from_slice(&v.to_le_bytes());
    }
    fn i64_(b: &mut Vec<u8>, v: i64) {
        b.extend_from_slice(&v.to_le_bytes());
    }
    fn str_(b: &mut Vec<u8>, s: &str) {
        b.push(s.len() as u8);
        b.extend_from_slice(s.as_bytes());
    }

    /// 1e-8 units of a decimal written as integer and fraction parts, for readable expectations.
    fn units(s: &str) -> Units {
        crate::book::fixed::parse_units_str(s).unwrap()
    }

    /// The JSON test frame's diff (`src/binance/tests.rs` DEPTH) as SBE, with a µs event time.
    /// `version`, `extra_root` bytes appended to the root block and `extra_entry` bytes to each
    /// level entry model a newer schema version.
    fn depth_diff_msg(version: u16, extra_root: u16, extra_entry: u16) -> Vec<u8> {
        let mut b = Vec::new();
        // messageHeader
        u16_(&mut b, 26 + extra_root); // blockLength
        u16_(&mut b, 10003); // templateId: DepthDiffStreamEvent
        u16_(&mut b, 1); // schemaId
        u16_(&mut b, version); // version
                               // root block
        i64_(&mut b, 1_723_161_255_308_123); // eventTime (µs)
        i64_(&mut b, 50_093_239_203); // firstBookUpdateId
        i64_(&mut b, 50_093_239_207); // lastBookUpdateId
        i8_(&mut b, -2); // priceExponent
        i8_(&mut b, -8); // qtyExponent
        b.extend(std::iter::repeat_n(0xEE, usize::from(extra_root))); // a newer version's root fields
                                                                      // bids: groupSize16Encoding
        u16_(&mut b, 16 + extra_entry); // blockLength
        u16_(&mut b, 1); // numInGroup
        i64_(&mut b, 5_565_387); // bids[0].price: 55653.87
        i64_(&mut b, 0); // bids[0].qty: 0 (remove)
        b.extend(std::iter::repeat_n(0xEE, usize::from(extra_entry)));
        // asks: groupSize16Encoding
        u16_(&mut b, 16 + extra_entry); // blockLength
        u16_(&mut b, 2); // numInGroup
        i64_(&mut b, 6_183_804); // asks[0].price: 61838.04
        i64_(&mut b, 32_332_000); // asks[0].qty: 0.32332
        b.extend(std::iter::repeat_n(0xEE, usize::from(extra_entry)));
        i64_(&mut b, 6_184_430); // asks[1].price: 61844.30
        i64_(&mut b, 40_163_000); // asks[1].qty: 0.40163
        b.extend(std::iter::repeat_n(0xEE, usize::from(extra_entry)));
        str_(&mut b, "BTCUSDT"); // symbol: varString8
        b
    }

    fn depth_snapshot_msg() -> Vec<u8> {
        let mut b = Vec::new();
        // messageHeader
        u16_(&mut b, 18); // blockLength
        u16_(&mut b, 10002); // templateId: DepthSnapshotStreamEvent
        u16_(&mut b, 1); // schemaId
        u16_(&mut b, 0); // version
                         // root block
        i64_(&mut b, 1_750_000_000_000_001); // eventTime (µs)
        i64_(&mut b, 77_000_000_001); // bookUpdateId
        i8_(&mut b, 0); // priceExponent: whole numbers
        i8_(&mut b, -3); // qtyExponent
                         // bids: groupSize16Encoding
        u16_(&mut b, 16); // blockLength
        u16_(&mut b, 2); // numInGroup
        i64_(&mut b, 2_683); // bids[0].price: 2683
        i64_(&mut b, 1_500); // bids[0].qty: 1.5
        i64_(&mut b, 2_682); // bids[1].price: 2682
        i64_(&mut b, 1); // bids[1].qty: 0.001
                         // asks: groupSize16Encoding
        u16_(&mut b, 16); // blockLength
        u16_(&mut b, 1); // numInGroup
        i64_(&mut b, 2_684); // asks[0].price: 2684
        i64_(&mut b, 250_000); // asks[0].qty: 250
        str_(&mut b, "ETHUSDT"); // symbol
        b
    }

    fn trades_msg(entry_block: u16) -> Vec<u8> {
        let extra = usize::from(entry_block - 25);
        let mut b = Vec::new();
        // messageHeader
        u16_(&mut b, 18); // blockLength
        u16_(&mut b, 10000); // templateId: TradesStreamEvent
        u16_(&mut b, 1); // schemaId
        u16_(&mut b, 0); // version
                         // root block
        i64_(&mut b, 1_723_161_255_400_000); // eventTime (µs)
        i64_(&mut b, 1_723_161_255_399_876); // transactTime (µs)
        i8_(&mut b, 2); // priceExponent: hundreds (a positive exponent)
        i8_(&mut b, -8); // qtyExponent
                         // trades: groupSizeEncoding
        u16_(&mut b, entry_block); // blockLength
        u32_(&mut b, 2); // numInGroup (uint32 here)
        i64_(&mut b, 3_700_000_001); // trades[0].id
        i64_(&mut b, 618); // trades[0].price: 61800
        i64_(&mut b, 34_900); // trades[0].qty: 0.000349
        u8_(&mut b, 1); // trades[0].isBuyerMaker: True (isBestMatch is constant: no bytes)
        b.extend(std::iter::repeat_n(0xEE, extra));
        i64_(&mut b, 3_700_000_002); // trades[1].id
        i64_(&mut b, 619); // trades[1].price: 61900
        i64_(&mut b, 100_000_000); // trades[1].qty: 1
        u8_(&mut b, 0); // trades[1].isBuyerMaker: False
        b.extend(std::iter::repeat_n(0xEE, extra));
        str_(&mut b, "BTCUSDT"); // symbol
        b
    }

    fn best_bid_ask_msg(price_exp: i8, qty_exp: i8, bid_qty: i64) -> Vec<u8> {
        let mut b = Vec::new();
        // messageHeader
        u16_(&mut b, 50); // blockLength
        u16_(&mut b, 10001); // templateId: BestBidAskStreamEvent
        u16_(&mut b, 1); // schemaId
        u16_(&mut b, 0); // version
                         // root block
        i64_(&mut b, 1_723_161_255_500_000); // eventTime (µs)
        i64_(&mut b, 50_093_239_300); // bookUpdateId
        i8_(&mut b, price_exp); // priceExponent
        i8_(&mut b, qty_exp); // qtyExponent
        i64_(&mut b, 6_183_763); // bidPrice
        i64_(&mut b, bid_qty); // bidQty
        i64_(&mut b, 6_183_764); // askPrice
        i64_(&mut b, 7); // askQty
        str_(&mut b, "BTCUSDT"); // symbol
        b
    }

    fn all_valid() -> Vec<Vec<u8>> {
        vec![depth_diff_msg(0, 0, 0), depth_snapshot_msg(), trades_msg(25), best_bid_ask_msg(-2, -8, 12_000)]
    }

    #[test]
    fn depth_diff_gives_what_the_json_decoder_gives() {
        let frame = depth_diff_msg(0, 0, 0);
        let mut bufs = LevelBuf::default();
        let h = decode_depth_diff(&frame, &mut bufs).unwrap();
        assert_eq!(
            h,
            DepthHeader {
                event_time: 1_723_161_255_308_123,
                symbol: "BTCUSDT",
                first_id: 50_093_239_203,
                final_id: 50_093_239_207
            }
        );
        let json = br#"{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}"#;
        let mut jbufs = LevelBuf::default();
        let jh = super::super::decode_depth(json, &mut jbufs).unwrap();
        assert_eq!((jh.symbol, jh.first_id, jh.final_id), (h.symbol, h.first_id, h.final_id));
        assert_eq!(bufs.bids, jbufs.bids);
        assert_eq!(bufs.asks, jbufs.asks);
        assert_eq!(bufs.asks[1], RawLevel { price: units("61844.30"), qty: units("0.40163") });

        let mut all = SbeBufs::default();
        assert_eq!(decode(&frame, &mut all), Ok(SbeEvent::DepthDiff(h)));
        assert_eq!(all.levels.asks, bufs.asks);
    }

    #[test]
    fn depth_snapshot() {
        let mut bufs = LevelBuf::default();
        let frame = depth_snapshot_msg();
        let s = decode_depth_snapshot(&frame, &mut bufs).unwrap();
        assert_eq!(
            s,
            DepthSnapshot { event_time: 1_750_000_000_000_001, book_update_id: 77_000_000_001, symbol: "ETHUSDT" }
        );
        assert_eq!(
            bufs.bids,
            [
                RawLevel { price: units("2683"), qty: units("1.5") },
                RawLevel { price: units("2682"), qty: units("0.001") }
            ]
        );
        assert_eq!(bufs.asks, [RawLevel { price: units("2684"), qty: units("250") }]);
    }

    #[test]
    fn trades_several_per_event() {
        let mut out = Vec::new();
        let frame = trades_msg(25);
        let h = decode_trades(&frame, &mut out).unwrap();
        assert_eq!(
            h,
            TradesHeader { event_time: 1_723_161_255_400_000, transact_time: 1_723_161_255_399_876, symbol: "BTCUSDT" }
        );
        assert_eq!(
            out,
            [
                TradeEntry {
                    trade_id: 3_700_000_001,
                    price: units("61800"),
                    qty: units("0.000349"),
                    buyer_is_maker: true
                },
                TradeEntry { trade_id: 3_700_000_002, price: units("61900"), qty: units("1"), buyer_is_maker: false },
            ]
        );
        let t = h.trade(&out[0]);
        assert_eq!(
            (t.symbol, t.trade_id, t.trade_time, t.event_time),
            ("BTCUSDT", 3_700_000_001, h.transact_time, h.event_time)
        );
        assert_eq!((t.price, t.qty, t.buyer_is_maker), (out[0].price, out[0].qty, true));
    }

    #[test]
    fn best_bid_ask() {
        let frame = best_bid_ask_msg(-2, -8, 12_000);
        let b = decode_best_bid_ask(&frame).unwrap();
        assert_eq!(b.event_time, 1_723_161_255_500_000);
        assert_eq!(
            b.ticker,
            BookTicker {
                update_id: 50_093_239_300,
                symbol: "BTCUSDT",
                bid_price: units("61837.63"),
                bid_qty: units("0.00012"),
                ask_price: units("61837.64"),
                ask_qty: 7,
            }
        );
    }

    #[test]
    fn newer_version_with_longer_root_and_trailing_data_is_read() {
        // Version 1, 6 unknown bytes at the end of the root block, and 3 bytes after the symbol
        // (a variable-length field the newer version might add).
        let mut frame = depth_diff_msg(1, 6, 0);
        frame.extend_from_slice(&[1, 0, 0]);
        let mut bufs = LevelBuf::default();
        let h = decode_depth_diff(&frame, &mut bufs).unwrap();
        let mut want = LevelBuf::default();
        assert_eq!(Ok(h), decode_depth_diff(&depth_diff_msg(0, 0, 0), &mut want));
        assert_eq!((bufs.bids, bufs.asks), (want.bids, want.asks));
        // The same trailing bytes in the schema's own version are refused.
        let mut v0 = depth_diff_msg(0, 0, 0);
        v0.extend_from_slice(&[1, 0, 0]);
        assert_eq!(decode_depth_diff(&v0, &mut LevelBuf::default()), Err(SbeError::TrailingBytes(3)));
    }

    #[test]
    fn group_entries_with_a_longer_block_length_are_stepped_over() {
        let mut a = LevelBuf::default();
        let mut b = LevelBuf::default();
        assert_eq!(
            decode_depth_diff(&depth_diff_msg(1, 0, 5), &mut a),
            decode_depth_diff(&depth_diff_msg(0, 0, 0), &mut b)
        );
        assert_eq!((&a.bids, &a.asks), (&b.bids, &b.asks));
        let (mut t1, mut t2) = (Vec::new(), Vec::new());
        assert_eq!(decode_trades(&trades_msg(40), &mut t1), decode_trades(&trades_msg(25), &mut t2));
        assert_eq!(t1, t2);
        assert_eq!(t1.len(), 2);
    }

    #[test]
    fn short_block_lengths_are_refused() {
        let mut f = depth_diff_msg(0, 0, 0);
        f[0..2].copy_from_slice(&25u16.to_le_bytes()); // blockLength one short of the schema's 26
        assert_eq!(
            decode_depth_diff(&f, &mut LevelBuf::default()),
            Err(SbeError::ShortBlock { template: 10003, block_length: 25, min: 26 })
        );
        let mut f = depth_diff_msg(0, 0, 0);
        f[8 + 26..8 + 28].copy_from_slice(&15u16.to_le_bytes()); // bids blockLength
        assert_eq!(
            decode_depth_diff(&f, &mut LevelBuf::default()),
            Err(SbeError::ShortEntry { group: "bids", block_length: 15, min: 16 })
        );
        let mut f = trades_msg(25);
        f[8 + 18..8 + 20].copy_from_slice(&24u16.to_le_bytes()); // trades blockLength
        assert_eq!(
            decode_trades(&f, &mut Vec::new()),
            Err(SbeError::ShortEntry { group: "trades", block_length: 24, min: 25 })
        );
    }

    #[test]
    fn wrong_schema_and_templates_are_refused() {
        for frame in all_valid() {
            let mut f = frame.clone();
            f[4..6].copy_from_slice(&2u16.to_le_bytes()); // schemaId 2
            assert_eq!(decode(&f, &mut SbeBufs::default()), Err(SbeError::SchemaId(2)));
            assert_eq!(decode_header(&f), Err(SbeError::SchemaId(2)));
        }
        let mut f = depth_diff_msg(0, 0, 0);
        f[2..4].copy_from_slice(&10004u16.to_le_bytes());
        assert_eq!(decode(&f, &mut SbeBufs::default()), Err(SbeError::UnknownTemplate(10004)));
        assert_eq!(
            decode_trades(&depth_diff_msg(0, 0, 0), &mut Vec::new()),
            Err(SbeError::WrongTemplate { expected: 10000, got: 10003 })
        );
        assert_eq!(
            decode_header(&depth_diff_msg(3, 0, 0)),
            Ok(MessageHeader { block_length: 26, template_id: 10003, schema_id: 1, version: 3 })
        );
    }

    #[test]
    fn every_prefix_is_an_error() {
        let mut bufs = SbeBufs::default();
        for frame in all_valid().into_iter().chain([depth_diff_msg(1, 4, 3), trades_msg(30)]) {
            assert!(decode(&frame, &mut bufs).is_ok());
            for n in 0..frame.len() {
                let p = &frame[..n];
                assert!(decode(p, &mut bufs).is_err(), "prefix {n} of {frame:?}");
                assert!(decode_depth_diff(p, &mut bufs.levels).is_err());
                assert!(decode_depth_snapshot(p, &mut bufs.levels).is_err());
                assert!(decode_trades(p, &mut bufs.trades).is_err());
                assert!(decode_best_bid_ask(p).is_err());
            }
        }
        let f = depth_diff_msg(0, 0, 0);
        let e = |n: usize| decode(&f[..n], &mut SbeBufs::default()).unwrap_err();
        assert_eq!(e(7), SbeError::Truncated { part: Part::Header, at: 0, need: 8, len: 7 });
        assert_eq!(e(33), SbeError::Truncated { part: Part::RootBlock, at: 8, need: 26, len: 33 });
        assert_eq!(e(35), SbeError::Truncated { part: Part::GroupHeader, at: 34, need: 2, len: 35 });
        assert_eq!(e(38), SbeError::Truncated { part: Part::GroupEntries, at: 38, need: 16, len: 38 });
        assert_eq!(
            e(f.len() - 8),
            SbeError::Truncated { part: Part::SymbolLength, at: f.len() - 8, need: 1, len: f.len() - 8 }
        );
        assert_eq!(
            e(f.len() - 1),
            SbeError::Truncated { part: Part::Symbol, at: f.len() - 7, need: 7, len: f.len() - 1 }
        );
    }

    #[test]
    fn group_counts_past_the_buffer_are_errors_before_any_entry() {
        let mut f = depth_diff_msg(0, 0, 0);
        f[8 + 28..8 + 30].copy_from_slice(&u16::MAX.to_le_bytes()); // bids numInGroup 65535
        let mut bufs = LevelBuf::default();
        assert_eq!(
            decode_depth_diff(&f, &mut bufs),
            Err(SbeError::Truncated { part: Part::GroupEntries, at: 38, need: 65535 * 16, len: f.len() })
        );
        assert!(bufs.bids.is_empty() && bufs.bids.capacity() < 1000);
        let mut f = trades_msg(25);
        let count = 8 + 18 + 2; // trades numInGroup, a uint32
        f[count..count + 4].copy_from_slice(&2_147_483_647u32.to_le_bytes());
        let mut out = Vec::new();
        assert_eq!(
            decode_trades(&f, &mut out),
            Err(SbeError::Truncated { part: Part::GroupEntries, at: 32, need: 2_147_483_647 * 25, len: f.len() })
        );
        assert_eq!(out.capacity(), 0);
        f[count..count + 4].copy_from_slice(&2_147_483_648u32.to_le_bytes());
        assert_eq!(decode_trades(&f, &mut out), Err(SbeError::GroupCount { group: "trades", count: 2_147_483_648 }));
        // A group that undercounts leaves an entry where the symbol is expected: the symbol is
        // then read from level bytes and the frame does not end where it should.
        let mut f = depth_diff_msg(0, 0, 0);
        f[8 + 26 + 4 + 16 + 2..8 + 26 + 4 + 16 + 4].copy_from_slice(&1u16.to_le_bytes()); // asks: 1 of 2
        assert!(decode_depth_diff(&f, &mut LevelBuf::default()).is_err());
    }

    #[test]
    fn exponents_positive_negative_zero() {
        let u = |e: i8, m: i64| Exp::new(e).units("f", m);
        assert_eq!(u(0, 5), Ok(5 * 100_000_000));
        assert_eq!(u(2, 3), Ok(300 * 100_000_000));
        assert_eq!(u(-2, 6_183_763), Ok(units("61837.63")));
        assert_eq!(u(-8, 1), Ok(1));
        assert_eq!(u(-10, 1_200), Ok(12)); // 1200e-10 = 12e-8: exact, so accepted
        assert_eq!(u(10, 1), Ok(1_000_000_000_000_000_000)); // 10^18 units, the largest power that fits
        assert_eq!(u(-26, 1_000_000_000_000_000_000), Ok(1)); // 10^18 x 10^-26 = 1e-8
        assert_eq!(u(127, 0), Ok(0));
        assert_eq!(u(-128, 0), Ok(0));
        assert_eq!(u(3, 92_233_720), Ok(9_223_372_000_000_000_000));
        let err = |e: i8, m: i64, problem| Err(SbeError::Number { field: "f", mantissa: m, exponent: e, problem });
        assert_eq!(u(-9, 1), err(-9, 1, NumProblem::Inexact));
        assert_eq!(u(-10, 1_201), err(-10, 1_201, NumProblem::Inexact));
        assert_eq!(u(-128, 1), err(-128, 1, NumProblem::Inexact));
        assert_eq!(u(-27, i64::MAX), err(-27, i64::MAX, NumProblem::Inexact));
        assert_eq!(u(0, i64::MAX), err(0, i64::MAX, NumProblem::Overflow));
        assert_eq!(u(11, 1), err(11, 1, NumProblem::Overflow));
        assert_eq!(u(127, 1), err(127, 1, NumProblem::Overflow));
        assert_eq!(u(3, 92_233_721), err(3, 92_233_721, NumProblem::Overflow));
        assert_eq!(u(-8, -1), err(-8, -1, NumProblem::Negative));
        assert_eq!(u(0, i64::MIN), err(0, i64::MIN, NumProblem::Negative));
    }

    #[test]
    fn bad_values_in_messages_are_errors() {
        // A bid quantity of 1e-9: not representable in 1e-8 units.
        assert_eq!(
            decode_best_bid_ask(&best_bid_ask_msg(-2, -9, 1)),
            Err(SbeError::Number { field: "bidQty", mantissa: 1, exponent: -9, problem: NumProblem::Inexact })
        );
        // mantissa64 is signed; a negative quantity is refused like the JSON decoders refuse "-1".
        assert_eq!(
            decode_best_bid_ask(&best_bid_ask_msg(-2, -8, -5)),
            Err(SbeError::Number { field: "bidQty", mantissa: -5, exponent: -8, problem: NumProblem::Negative })
        );
        // A positive exponent that overflows on the prices.
        assert!(matches!(
            decode_best_bid_ask(&best_bid_ask_msg(9, -8, 1)),
            Err(SbeError::Number { field: "bidPrice", problem: NumProblem::Overflow, .. })
        ));
        let mut f = depth_diff_msg(0, 0, 0);
        f[16..24].copy_from_slice(&(-1i64).to_le_bytes()); // firstBookUpdateId
        assert_eq!(
            decode_depth_diff(&f, &mut LevelBuf::default()),
            Err(SbeError::NegativeId { field: "firstBookUpdateId", value: -1 })
        );
        let mut f = trades_msg(25);
        f[8 + 18 + 6 + 24] = 2; // trades[0].isBuyerMaker
        assert_eq!(decode_trades(&f, &mut Vec::new()), Err(SbeError::BadBool(2)));
        let mut f = depth_snapshot_msg();
        let n = f.len();
        f[n - 1] = 0xFF; // last symbol byte
        assert_eq!(decode_depth_snapshot(&f, &mut LevelBuf::default()), Err(SbeError::SymbolUtf8));
    }

    #[test]
    fn buffers_are_reused_and_cleared() {
        let mut bufs = SbeBufs::default();
        decode(&depth_diff_msg(0, 0, 0), &mut bufs).unwrap();
        assert_eq!((bufs.levels.bids.len(), bufs.levels.asks.len()), (1, 2));
        decode(&depth_snapshot_msg(), &mut bufs).unwrap();
        assert_eq!((bufs.levels.bids.len(), bufs.levels.asks.len()), (2, 1));
        decode(&trades_msg(25), &mut bufs).unwrap();
        decode(&trades_msg(25), &mut bufs).unwrap();
        assert_eq!(bufs.trades.len(), 2);
    }

    #[test]
    fn errors_display_on_one_line() {
        let all = [
            SbeError::Truncated { part: Part::Symbol, at: 3, need: 7, len: 9 },
            SbeError::SchemaId(2),
            SbeError::Version(0),
            SbeError::UnknownTemplate(9),
            SbeError::WrongTemplate { expected: 10000, got: 10003 },
            SbeError::ShortBlock { template: 10003, block_length: 1, min: 26 },
            SbeError::ShortEntry { group: "bids", block_length: 1, min: 16 },
            SbeError::GroupCount { group: "trades", count: u32::MAX },
            SbeError::Number { field: "bidQty", mantissa: 1, exponent: -9, problem: NumProblem::Inexact },
            SbeError::NegativeId { field: "trades.id", value: -1 },
            SbeError::BadBool(2),
            SbeError::SymbolUtf8,
            SbeError::TrailingBytes(3),
        ];
        for e in all {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{s:?}");
        }
        assert_eq!(
            SbeError::Number { field: "bidQty", mantissa: 1, exponent: -9, problem: NumProblem::Inexact }.to_string(),
            "SBE bidQty = 1e-9 has digits below 1e-8"
        );
    }

    /// The exact value in units computed in i128, the reference for [`Exp::units`].
    fn reference(e: i8, m: i64) -> Option<i64> {
        if m < 0 {
            return None;
        }
        let k = i32::from(e) + 8;
        let m = i128::from(m);
        let v = if k >= 0 {
            if m == 0 {
                0
            } else if k > 38 {
                return None;
            } else {
                m.checked_mul(10i128.pow(k as u32))?
            }
        } else if -k > 38 {
            if m == 0 {
                0
            } else {
                return None;
            }
        } else {
            let p = 10i128.pow((-k) as u32);
            if m % p != 0 {
                return None;
            }
            m / p
        };
        i64::try_from(v).ok()
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut bufs = SbeBufs::default();
            let _ = decode(&b, &mut bufs);
            let _ = decode_depth_diff(&b, &mut bufs.levels);
            let _ = decode_depth_snapshot(&b, &mut bufs.levels);
            let _ = decode_trades(&b, &mut bufs.trades);
            let _ = decode_best_bid_ask(&b);
            let _ = decode_header(&b);
        }

        /// Random bodies behind a header that passes the schema checks, so the bytes reach the
        /// root block, the groups and the symbol.
        #[test]
        fn any_body_never_panics(
            template in 10000u16..10004,
            block_length in 0u16..64,
            version in 0u16..3,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        ) {
            let mut b = Vec::new();
            u16_(&mut b, block_length);
            u16_(&mut b, template);
            u16_(&mut b, 1);
            u16_(&mut b, version);
            b.extend_from_slice(&body);
            let mut bufs = SbeBufs::default();
            let _ = decode(&b, &mut bufs);
        }

        /// One valid message with one byte changed anywhere: never a panic.
        #[test]
        fn mutated_messages_never_panic(which in 0usize..4, at in 0usize..200, byte in proptest::num::u8::ANY) {
            let mut f = all_valid().swap_remove(which);
            let i = at % f.len();
            f[i] = byte;
            let _ = decode(&f, &mut SbeBufs::default());
        }

        #[test]
        fn units_are_exact(e in proptest::num::i8::ANY, m in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(Exp::new(e).units("f", m).ok(), reference(e, m));
        }

        #[test]
        fn units_are_exact_near_the_scale(e in -30i8..20, m in 0i64..10_000_000_000) {
            proptest::prop_assert_eq!(Exp::new(e).units("f", m).ok(), reference(e, m));
        }
    }
}
