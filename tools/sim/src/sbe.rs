//! The simulator's SBE encoder for Binance's market-data streams (`stream-sbe.binance.com`),
//! written from the schema `stream_1_0.xml` (package `spot_stream`, id 1, version 0,
//! `byteOrder="littleEndian"`) and nothing else: it shares no code with the handler's decoder, so
//! each checks the other.
//!
//! Four templates: `TradesStreamEvent` (10000, several trades per event), `BestBidAskStreamEvent`
//! (10001), `DepthSnapshotStreamEvent` (10002, `@depth20`) and `DepthDiffStreamEvent` (10003,
//! `@depth`). Every message is the 8-byte messageHeader (blockLength, templateId, schemaId,
//! version, all `uint16`), the root block's fields in schema order, the repeating groups (each
//! behind its dimension: `groupSizeEncoding` = `uint16` blockLength + `uint32` numInGroup for
//! `trades`, `groupSize16Encoding` = `uint16` + `uint16` for `bids`/`asks`), then the `symbol` as a
//! `varString8` (`uint8` length + UTF-8 bytes).
//!
//! Prices and quantities are `mantissa64` (`int64`) with one `exponent8` (`int8`) for all the
//! prices of a message and one for all its quantities: value = mantissa x 10^exponent. The
//! simulator's values are `i64` counts of 1e-8; [`Scale`] says how they become mantissas, in
//! integers only and always exactly (see there). Times are microseconds since the epoch, as the
//! SBE streams send them.
//!
//! Encoding writes into a caller's `Vec<u8>`, cleared first and reused, so after warm-up it does
//! not allocate. The websocket endpoint that sends these frames is `ws` on a simulator started
//! with `SimConfig::sbe`.

use std::fmt;

use crate::book::{Book, Diff, Level};
use crate::event::{Fields, MarketEvent};

/// `messageSchema id`.
pub const SCHEMA_ID: u16 = 1;
/// `messageSchema version`.
pub const SCHEMA_VERSION: u16 = 0;
/// `TradesStreamEvent` id.
pub const TRADES_TEMPLATE_ID: u16 = 10000;
/// `BestBidAskStreamEvent` id.
pub const BEST_BID_ASK_TEMPLATE_ID: u16 = 10001;
/// `DepthSnapshotStreamEvent` id.
pub const DEPTH_SNAPSHOT_TEMPLATE_ID: u16 = 10002;
/// `DepthDiffStreamEvent` id.
pub const DEPTH_DIFF_TEMPLATE_ID: u16 = 10003;

/// Root block of `TradesStreamEvent`: eventTime int64, transactTime int64, priceExponent int8,
/// qtyExponent int8.
pub const TRADES_BLOCK_LENGTH: u16 = 8 + 8 + 1 + 1;
/// One `trades` entry: id int64, price int64, qty int64, isBuyerMaker uint8 (isBestMatch is
/// `presence="constant"`: no bytes).
pub const TRADE_ENTRY_LENGTH: u16 = 8 + 8 + 8 + 1;
/// Root block of `BestBidAskStreamEvent`: eventTime, bookUpdateId, two exponents, bidPrice,
/// bidQty, askPrice, askQty.
pub const BEST_BID_ASK_BLOCK_LENGTH: u16 = 8 + 8 + 1 + 1 + 4 * 8;
/// Root block of `DepthSnapshotStreamEvent`: eventTime, bookUpdateId, two exponents.
pub const DEPTH_SNAPSHOT_BLOCK_LENGTH: u16 = 8 + 8 + 1 + 1;
/// Root block of `DepthDiffStreamEvent`: eventTime, firstBookUpdateId, lastBookUpdateId, two
/// exponents.
pub const DEPTH_DIFF_BLOCK_LENGTH: u16 = 8 + 8 + 8 + 1 + 1;
/// One `bids` / `asks` entry: price int64, qty int64.
pub const LEVEL_ENTRY_LENGTH: u16 = 8 + 8;
/// `groupSizeEncoding.numInGroup`'s `maxValue`.
pub const MAX_TRADES: usize = 2_147_483_647;
/// Levels Binance's `@depth20` stream carries per side.
pub const DEPTH20_LEVELS: usize = 20;

/// The exponent of the simulator's 1e-8 units.
const UNITS_EXPONENT: i8 = -8;

/// How a value in 1e-8 units becomes a mantissa and an exponent. Both are exact: no value is
/// rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Exponent -8 for every price and quantity; the mantissa is the value in units as it is.
    #[default]
    Units,
    /// Per message, one exponent for its prices and one for its quantities: the largest in -8..=0
    /// at which every one of them is a whole mantissa (zeros fit any exponent, so all zero, or no
    /// value at all, gives 0).
    /// BTCUSDT's prices (tick 0.01) mostly come out at -2, like the symbol's precision Binance
    /// uses, and the decoder's scaling (not only its pass-through) is exercised.
    Coarsest,
}

/// Why a message cannot be encoded. Nothing the synthetic market makes hits these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The symbol is longer than a `varString8` holds (255 bytes).
    SymbolTooLong(usize),
    /// More levels on one side than `groupSize16Encoding.numInGroup` (`uint16`) counts.
    TooManyLevels(usize),
    /// More trades than `groupSizeEncoding.numInGroup`'s `maxValue` 2147483647.
    TooManyTrades(usize),
    /// An id above `int64`'s range (trade ids and update ids are `int64` on the wire).
    IdTooLarge(u64),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::SymbolTooLong(n) => write!(f, "sbe: symbol of {n} bytes is longer than a varString8 (255)"),
            EncodeError::TooManyLevels(n) => write!(f, "sbe: {n} levels on one side, more than a uint16 group counts"),
            EncodeError::TooManyTrades(n) => write!(f, "sbe: {n} trades, more than the group's maxValue 2147483647"),
            EncodeError::IdTooLarge(id) => write!(f, "sbe: id {id} is above int64's range"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// A `DepthDiffStreamEvent` (`<symbol>@depth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthDiff<'a> {
    /// `eventTime`, µs since the epoch.
    pub event_time_us: i64,
    /// `firstBookUpdateId` (JSON's `U`).
    pub first_update_id: u64,
    /// `lastBookUpdateId` (JSON's `u`).
    pub last_update_id: u64,
    /// `symbol`, uppercase.
    pub symbol: &'a str,
    /// `bids`, in wire order; quantity 0 removes a level.
    pub bids: &'a [Level],
    /// `asks`, in wire order.
    pub asks: &'a [Level],
}

impl<'a> DepthDiff<'a> {
    /// The simulator's depth diff (the one the reference book applies) as sent at `event_time_us`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn of_diff(diff: &'a Diff, symbol: &'a str, event_time_us: i64) -> DepthDiff<'a> {
        DepthDiff {
            event_time_us,
            first_update_id: diff.first_id,
            last_update_id: diff.last_id,
            symbol,
            bids: &diff.bids,
            asks: &diff.asks,
        }
    }
}

/// A `DepthSnapshotStreamEvent` (`<symbol>@depth20`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthSnapshot<'a> {
    /// `eventTime`, µs since the epoch.
    pub event_time_us: i64,
    /// `bookUpdateId`: the update id of the book state shown.
    pub book_update_id: u64,
    /// `symbol`, uppercase.
    pub symbol: &'a str,
    /// `bids`, best first.
    pub bids: &'a [Level],
    /// `asks`, best first.
    pub asks: &'a [Level],
}

impl<'a> DepthSnapshot<'a> {
    /// The top `levels` per side of a reference [`Book`] (20 for `@depth20`) at `event_time_us`.
    pub fn of_book(book: &'a Book, levels: usize, event_time_us: i64) -> DepthSnapshot<'a> {
        DepthSnapshot {
            event_time_us,
            book_update_id: book.last_update_id,
            symbol: &book.symbol,
            bids: &book.bids[..book.bids.len().min(levels)],
            asks: &book.asks[..book.asks.len().min(levels)],
        }
    }
}

/// One entry of a `TradesStreamEvent`'s `trades` group: what the simulator's `@trade` event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeEntry {
    /// `id` (JSON's `t`).
    pub id: u64,
    /// `price` in 1e-8 units.
    pub price: i64,
    /// `qty` in 1e-8 units.
    pub qty: i64,
    /// `isBuyerMaker` (JSON's `m`). `isBestMatch` is the schema's constant True.
    pub buyer_is_maker: bool,
}

/// A `TradesStreamEvent` (`<symbol>@trade`): one or several trades of one match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trades<'a> {
    /// `eventTime`, µs since the epoch (JSON's `E`).
    pub event_time_us: i64,
    /// `transactTime`, µs (JSON's `T`; the simulator puts it 1 ms before `E`).
    pub transact_time_us: i64,
    /// `symbol`, uppercase.
    pub symbol: &'a str,
    /// The `trades` group, in wire order.
    pub trades: &'a [TradeEntry],
}

/// A `BestBidAskStreamEvent` (`<symbol>@bestBidAsk`): the simulator's bookTicker plus an event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestBidAsk<'a> {
    /// `eventTime`, µs since the epoch.
    pub event_time_us: i64,
    /// `bookUpdateId` (the bookTicker's `u`).
    pub book_update_id: u64,
    /// `symbol`, uppercase.
    pub symbol: &'a str,
    /// Best bid price and quantity.
    pub bid: Level,
    /// Best ask price and quantity.
    pub ask: Level,
}

/// A message the encoder can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `DepthDiffStreamEvent`.
    DepthDiff(DepthDiff<'a>),
    /// `DepthSnapshotStreamEvent`.
    DepthSnapshot(DepthSnapshot<'a>),
    /// `TradesStreamEvent`.
    Trades(Trades<'a>),
    /// `BestBidAskStreamEvent`.
    BestBidAsk(BestBidAsk<'a>),
}

/// Encodes any message into `out` (cleared first).
pub fn encode(msg: &Message<'_>, scale: Scale, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match msg {
        Message::DepthDiff(m) => encode_depth_diff(m, scale, out),
        Message::DepthSnapshot(m) => encode_depth_snapshot(m, scale, out),
        Message::Trades(m) => encode_trades(m, scale, out),
        Message::BestBidAsk(m) => encode_best_bid_ask(m, scale, out),
    }
}

/// Encodes a `DepthDiffStreamEvent` into `out` (cleared first). On an error `out` is empty.
pub fn encode_depth_diff(m: &DepthDiff<'_>, scale: Scale, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    check_symbol(m.symbol)?;
    let bids = level_count(m.bids)?;
    let asks = level_count(m.asks)?;
    let first = id(m.first_update_id)?;
    let last = id(m.last_update_id)?;
    let px = exponent(scale, m.bids.iter().chain(m.asks).map(|l| l.price));
    let qx = exponent(scale, m.bids.iter().chain(m.asks).map(|l| l.qty));
    header(out, DEPTH_DIFF_BLOCK_LENGTH, DEPTH_DIFF_TEMPLATE_ID);
    put_i64(out, m.event_time_us);
    put_i64(out, first);
    put_i64(out, last);
    put_i8(out, px);
    put_i8(out, qx);
    levels(out, bids, m.bids, px, qx);
    levels(out, asks, m.asks, px, qx);
    symbol(out, m.symbol);
    Ok(())
}

/// Encodes a `DepthSnapshotStreamEvent` into `out` (cleared first). On an error `out` is empty.
pub fn encode_depth_snapshot(m: &DepthSnapshot<'_>, scale: Scale, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    check_symbol(m.symbol)?;
    let bids = level_count(m.bids)?;
    let asks = level_count(m.asks)?;
    let book_id = id(m.book_update_id)?;
    let px = exponent(scale, m.bids.iter().chain(m.asks).map(|l| l.price));
    let qx = exponent(scale, m.bids.iter().chain(m.asks).map(|l| l.qty));
    header(out, DEPTH_SNAPSHOT_BLOCK_LENGTH, DEPTH_SNAPSHOT_TEMPLATE_ID);
    put_i64(out, m.event_time_us);
    put_i64(out, book_id);
    put_i8(out, px);
    put_i8(out, qx);
    levels(out, bids, m.bids, px, qx);
    levels(out, asks, m.asks, px, qx);
    symbol(out, m.symbol);
    Ok(())
}

/// Encodes a `TradesStreamEvent` into `out` (cleared first). On an error `out` is empty.
pub fn encode_trades(m: &Trades<'_>, scale: Scale, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    check_symbol(m.symbol)?;
    if m.trades.len() > MAX_TRADES {
        return Err(EncodeError::TooManyTrades(m.trades.len()));
    }
    // Checked against MAX_TRADES just above, so it fits a u32.
    let count = u32::try_from(m.trades.len()).map_err(|_| EncodeError::TooManyTrades(m.trades.len()))?;
    for t in m.trades {
        id(t.id)?;
    }
    let px = exponent(scale, m.trades.iter().map(|t| t.price));
    let qx = exponent(scale, m.trades.iter().map(|t| t.qty));
    header(out, TRADES_BLOCK_LENGTH, TRADES_TEMPLATE_ID);
    put_i64(out, m.event_time_us);
    put_i64(out, m.transact_time_us);
    put_i8(out, px);
    put_i8(out, qx);
    put_u16(out, TRADE_ENTRY_LENGTH);
    put_u32(out, count);
    for t in m.trades {
        put_i64(out, id(t.id)?);
        put_i64(out, mantissa(t.price, px));
        put_i64(out, mantissa(t.qty, qx));
        out.push(u8::from(t.buyer_is_maker));
    }
    symbol(out, m.symbol);
    Ok(())
}

/// Encodes a `BestBidAskStreamEvent` into `out` (cleared first). On an error `out` is empty.
pub fn encode_best_bid_ask(m: &BestBidAsk<'_>, scale: Scale, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.clear();
    check_symbol(m.symbol)?;
    let book_id = id(m.book_update_id)?;
    let px = exponent(scale, [m.bid.price, m.ask.price].into_iter());
    let qx = exponent(scale, [m.bid.qty, m.ask.qty].into_iter());
    header(out, BEST_BID_ASK_BLOCK_LENGTH, BEST_BID_ASK_TEMPLATE_ID);
    put_i64(out, m.event_time_us);
    put_i64(out, book_id);
    put_i8(out, px);
    put_i8(out, qx);
    put_i64(out, mantissa(m.bid.price, px));
    put_i64(out, mantissa(m.bid.qty, qx));
    put_i64(out, mantissa(m.ask.price, px));
    put_i64(out, mantissa(m.ask.qty, qx));
    symbol(out, m.symbol);
    Ok(())
}

/// One of the simulator's market events as the SBE frame of its stream, sent at `now_us` (µs since
/// the epoch; it stamps `eventTime`, and a trade's `transactTime` is its lag before it, as in the
/// JSON): a depth diff becomes a `DepthDiffStreamEvent`, a trade a `TradesStreamEvent` of one
/// trade, a bookTicker a `BestBidAskStreamEvent`. `None` (and `out` cleared) for events the SBE
/// streams do not carry (aggTrades) or that hold no structured fields (replayed frames).
pub(crate) fn encode_event(
    event: &MarketEvent,
    symbol: &str,
    now_us: i64,
    scale: Scale,
    out: &mut Vec<u8>,
) -> Option<Result<(), EncodeError>> {
    out.clear();
    Some(match &event.fields {
        Fields::Opaque => return None,
        Fields::Depth(diff) => encode_depth_diff(&DepthDiff::of_diff(diff, symbol, now_us), scale, out),
        &Fields::Trade { id, price, qty, buyer_is_maker, trade_lag_us } => {
            let trade = [TradeEntry { id, price, qty, buyer_is_maker }];
            let m = Trades { event_time_us: now_us, transact_time_us: now_us - trade_lag_us, symbol, trades: &trade };
            encode_trades(&m, scale, out)
        }
        &Fields::BookTicker { update_id, bid, ask } => encode_best_bid_ask(
            &BestBidAsk { event_time_us: now_us, book_update_id: update_id, symbol, bid, ask },
            scale,
            out,
        ),
    })
}

fn check_symbol(s: &str) -> Result<(), EncodeError> {
    if s.len() > usize::from(u8::MAX) {
        return Err(EncodeError::SymbolTooLong(s.len()));
    }
    Ok(())
}

fn level_count(levels: &[Level]) -> Result<u16, EncodeError> {
    u16::try_from(levels.len()).map_err(|_| EncodeError::TooManyLevels(levels.len()))
}

fn id(v: u64) -> Result<i64, EncodeError> {
    i64::try_from(v).map_err(|_| EncodeError::IdTooLarge(v))
}

/// The exponent for `values` under `scale` (see [`Scale::Coarsest`]).
fn exponent(scale: Scale, values: impl Iterator<Item = i64>) -> i8 {
    match scale {
        Scale::Units => UNITS_EXPONENT,
        Scale::Coarsest => {
            // Trailing decimal zeros shared by every nonzero value, at most 8.
            let mut k: i8 = 8;
            for v in values {
                if v == 0 {
                    continue;
                }
                let mut z = 0;
                let mut p: i64 = 10;
                while z < k && v % p == 0 {
                    z += 1;
                    p = p.saturating_mul(10);
                }
                k = z;
                if k == 0 {
                    break;
                }
            }
            UNITS_EXPONENT + k
        }
    }
}

/// `units` (1e-8) as a mantissa at `exp` (-8..=0), exact because `exp` came from [`exponent`].
fn mantissa(units: i64, exp: i8) -> i64 {
    let mut m = units;
    for _ in UNITS_EXPONENT..exp {
        m /= 10;
    }
    m
}

fn header(out: &mut Vec<u8>, block_length: u16, template_id: u16) {
    put_u16(out, block_length);
    put_u16(out, template_id);
    put_u16(out, SCHEMA_ID);
    put_u16(out, SCHEMA_VERSION);
}

/// A `groupSize16Encoding` dimension and its entries.
fn levels(out: &mut Vec<u8>, count: u16, levels: &[Level], px: i8, qx: i8) {
    put_u16(out, LEVEL_ENTRY_LENGTH);
    put_u16(out, count);
    for l in levels {
        put_i64(out, mantissa(l.price, px));
        put_i64(out, mantissa(l.qty, qx));
    }
}

/// A `varString8`; the length was checked by [`check_symbol`].
fn symbol(out: &mut Vec<u8>, s: &str) {
    out.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(s.as_bytes());
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_i8(out: &mut Vec<u8>, v: i8) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads fixed-width little-endian fields at offsets counted by hand from the schema.
    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }
    fn i64_at(b: &[u8], at: usize) -> i64 {
        i64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }
    fn i8_at(b: &[u8], at: usize) -> i8 {
        i8::from_le_bytes([b[at]])
    }
    fn header_is(b: &[u8], block: u16, template: u16) {
        assert_eq!(u16_at(b, 0), block, "blockLength");
        assert_eq!(u16_at(b, 2), template, "templateId");
        assert_eq!(u16_at(b, 4), 1, "schemaId");
        assert_eq!(u16_at(b, 6), 0, "version");
    }

    const BID1: Level = Level { price: 6_183_763_000_000, qty: 12_345_000 };
    const BID2: Level = Level { price: 6_183_762_000_000, qty: 0 };
    const ASK1: Level = Level { price: 6_183_764_000_000, qty: 100_000_000 };

    #[test]
    fn depth_diff_field_by_field() {
        let bids = [BID1, BID2];
        let asks = [ASK1];
        let m = DepthDiff {
            event_time_us: 1_723_161_255_208_123,
            first_update_id: 70_000_000_001,
            last_update_id: 70_000_000_009,
            symbol: "BTCUSDT",
            bids: &bids,
            asks: &asks,
        };
        let mut b = Vec::new();
        encode_depth_diff(&m, Scale::Units, &mut b).unwrap();
        // header 8 + root 26 + bids (4 + 2*16) + asks (4 + 16) + symbol (1 + 7)
        assert_eq!(b.len(), 8 + 26 + 36 + 20 + 8);
        header_is(&b, 26, 10003);
        assert_eq!(i64_at(&b, 8), 1_723_161_255_208_123, "eventTime");
        assert_eq!(i64_at(&b, 16), 70_000_000_001, "firstBookUpdateId");
        assert_eq!(i64_at(&b, 24), 70_000_000_009, "lastBookUpdateId");
        assert_eq!(i8_at(&b, 32), -8, "priceExponent");
        assert_eq!(i8_at(&b, 33), -8, "qtyExponent");
        assert_eq!(u16_at(&b, 34), 16, "bids blockLength");
        assert_eq!(u16_at(&b, 36), 2, "bids numInGroup");
        assert_eq!(i64_at(&b, 38), 6_183_763_000_000);
        assert_eq!(i64_at(&b, 46), 12_345_000);
        assert_eq!(i64_at(&b, 54), 6_183_762_000_000);
        assert_eq!(i64_at(&b, 62), 0);
        assert_eq!(u16_at(&b, 70), 16, "asks blockLength");
        assert_eq!(u16_at(&b, 72), 1, "asks numInGroup");
        assert_eq!(i64_at(&b, 74), 6_183_764_000_000);
        assert_eq!(i64_at(&b, 82), 100_000_000);
        assert_eq!(b[90], 7, "symbol length");
        assert_eq!(&b[91..], b"BTCUSDT");

        // Coarsest: prices share 6 zeros (0.01), quantities 3 (12_345_000 and 100_000_000; 0 fits).
        encode_depth_diff(&m, Scale::Coarsest, &mut b).unwrap();
        assert_eq!(b.len(), 98, "the buffer is cleared, not appended to");
        assert_eq!(i8_at(&b, 32), -2);
        assert_eq!(i8_at(&b, 33), -5);
        assert_eq!(i64_at(&b, 38), 6_183_763);
        assert_eq!(i64_at(&b, 46), 12_345);
        assert_eq!(i64_at(&b, 54), 6_183_762);
        assert_eq!(i64_at(&b, 62), 0);
        assert_eq!(i64_at(&b, 74), 6_183_764);
        assert_eq!(i64_at(&b, 82), 100_000);
    }

    #[test]
    fn empty_groups_and_empty_diff() {
        let m = DepthDiff { event_time_us: 5, first_update_id: 1, last_update_id: 1, symbol: "", bids: &[], asks: &[] };
        let mut b = Vec::new();
        encode_depth_diff(&m, Scale::Coarsest, &mut b).unwrap();
        assert_eq!(b.len(), 8 + 26 + 4 + 4 + 1);
        assert_eq!(i8_at(&b, 32), 0, "no value: any exponent is exact; Coarsest gives 0");
        assert_eq!((u16_at(&b, 34), u16_at(&b, 36)), (16, 0));
        assert_eq!((u16_at(&b, 38), u16_at(&b, 40)), (16, 0));
        assert_eq!(b[42], 0);
    }

    #[test]
    fn depth_snapshot_field_by_field() {
        let book = Book {
            symbol: "ETHBTC".into(),
            last_update_id: 9_000_000_123,
            bids: (0..25).map(|i| Level { price: 5_000_000 - i * 1_000, qty: 1 + i }).collect(),
            asks: vec![Level { price: 5_001_000, qty: 7 }],
        };
        let m = DepthSnapshot::of_book(&book, DEPTH20_LEVELS, -3);
        assert_eq!((m.bids.len(), m.asks.len()), (20, 1));
        let mut b = Vec::new();
        encode_depth_snapshot(&m, Scale::Units, &mut b).unwrap();
        assert_eq!(b.len(), 8 + 18 + 4 + 20 * 16 + 4 + 16 + 1 + 6);
        header_is(&b, 18, 10002);
        assert_eq!(i64_at(&b, 8), -3, "eventTime");
        assert_eq!(i64_at(&b, 16), 9_000_000_123, "bookUpdateId");
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (-8, -8));
        assert_eq!((u16_at(&b, 26), u16_at(&b, 28)), (16, 20));
        for i in 0..20 {
            let at = 30 + 16 * i;
            assert_eq!(i64_at(&b, at), 5_000_000 - i as i64 * 1_000);
            assert_eq!(i64_at(&b, at + 8), 1 + i as i64);
        }
        let asks = 30 + 20 * 16;
        assert_eq!((u16_at(&b, asks), u16_at(&b, asks + 2)), (16, 1));
        assert_eq!((i64_at(&b, asks + 4), i64_at(&b, asks + 12)), (5_001_000, 7));
        assert_eq!(b[asks + 20], 6);
        assert_eq!(&b[asks + 21..], b"ETHBTC");
        // Coarsest: prices share 3 zeros; qty 1 keeps -8.
        encode_depth_snapshot(&m, Scale::Coarsest, &mut b).unwrap();
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (-5, -8));
        assert_eq!(i64_at(&b, 30), 5_000);
        assert_eq!(i64_at(&b, 38), 1);
    }

    #[test]
    fn trades_with_several_entries_field_by_field() {
        let trades = [
            TradeEntry { id: 3_700_000_001, price: 6_183_763_000_000, qty: 50_000, buyer_is_maker: true },
            TradeEntry { id: 3_700_000_002, price: 6_183_763_000_000, qty: 150_000, buyer_is_maker: false },
            TradeEntry { id: 3_700_000_003, price: 6_183_764_000_000, qty: 2_000_000, buyer_is_maker: true },
        ];
        let m = Trades {
            event_time_us: 1_723_161_255_208_123,
            transact_time_us: 1_723_161_255_207_123,
            symbol: "BTCUSDT",
            trades: &trades,
        };
        let mut b = Vec::new();
        encode_trades(&m, Scale::Units, &mut b).unwrap();
        // header 8 + root 18 + groupSizeEncoding 6 + 3 * 25 + symbol 8
        assert_eq!(b.len(), 8 + 18 + 6 + 75 + 8);
        header_is(&b, 18, 10000);
        assert_eq!(i64_at(&b, 8), 1_723_161_255_208_123, "eventTime");
        assert_eq!(i64_at(&b, 16), 1_723_161_255_207_123, "transactTime");
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (-8, -8));
        assert_eq!(u16_at(&b, 26), 25, "trades blockLength");
        assert_eq!(u32_at(&b, 28), 3, "trades numInGroup (uint32)");
        for (i, t) in trades.iter().enumerate() {
            let at = 32 + 25 * i;
            assert_eq!(i64_at(&b, at), t.id as i64, "id");
            assert_eq!(i64_at(&b, at + 8), t.price, "price");
            assert_eq!(i64_at(&b, at + 16), t.qty, "qty");
            assert_eq!(b[at + 24], u8::from(t.buyer_is_maker), "isBuyerMaker");
        }
        assert_eq!(b[107], 7);
        assert_eq!(&b[108..], b"BTCUSDT");
        encode_trades(&m, Scale::Coarsest, &mut b).unwrap();
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (-2, -4));
        assert_eq!((i64_at(&b, 40), i64_at(&b, 48)), (6_183_763, 5));
        assert_eq!((i64_at(&b, 90), i64_at(&b, 98)), (6_183_764, 200));
    }

    #[test]
    fn best_bid_ask_field_by_field() {
        let m = BestBidAsk {
            event_time_us: 1_723_161_255_208_123,
            book_update_id: 70_000_000_009,
            symbol: "BNBUSDT",
            bid: BID1,
            ask: ASK1,
        };
        let mut b = Vec::new();
        encode_best_bid_ask(&m, Scale::Units, &mut b).unwrap();
        assert_eq!(b.len(), 8 + 50 + 8);
        header_is(&b, 50, 10001);
        assert_eq!(i64_at(&b, 8), 1_723_161_255_208_123, "eventTime");
        assert_eq!(i64_at(&b, 16), 70_000_000_009, "bookUpdateId");
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (-8, -8));
        assert_eq!(i64_at(&b, 26), BID1.price, "bidPrice");
        assert_eq!(i64_at(&b, 34), BID1.qty, "bidQty");
        assert_eq!(i64_at(&b, 42), ASK1.price, "askPrice");
        assert_eq!(i64_at(&b, 50), ASK1.qty, "askQty");
        assert_eq!(b[58], 7);
        assert_eq!(&b[59..], b"BNBUSDT");
        encode_best_bid_ask(&m, Scale::Coarsest, &mut b).unwrap();
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (-2, -5));
        assert_eq!(i64_at(&b, 26), 6_183_763);
        assert_eq!(i64_at(&b, 50), 100_000, "1.0 at -5");
    }

    #[test]
    fn whole_values_reach_exponent_zero_and_no_further() {
        let bid = Level { price: 3 * 100_000_000_000, qty: 100_000_000 };
        let m = BestBidAsk { event_time_us: 0, book_update_id: 0, symbol: "X", bid, ask: bid };
        let mut b = Vec::new();
        encode_best_bid_ask(&m, Scale::Coarsest, &mut b).unwrap();
        assert_eq!((i8_at(&b, 24), i8_at(&b, 25)), (0, 0));
        assert_eq!((i64_at(&b, 26), i64_at(&b, 34)), (3_000, 1));
    }

    #[test]
    fn refusals_leave_the_buffer_empty() {
        let mut b = vec![1, 2, 3];
        let long = "A".repeat(256);
        let m = BestBidAsk { event_time_us: 0, book_update_id: 0, symbol: &long, bid: BID1, ask: ASK1 };
        assert_eq!(encode_best_bid_ask(&m, Scale::Units, &mut b), Err(EncodeError::SymbolTooLong(256)));
        assert!(b.is_empty());
        let ok = "A".repeat(255);
        encode_best_bid_ask(&BestBidAsk { symbol: &ok, ..m }, Scale::Units, &mut b).unwrap();
        assert_eq!(b[58], 255);
        let m = BestBidAsk { symbol: "A", book_update_id: u64::MAX, ..m };
        assert_eq!(encode_best_bid_ask(&m, Scale::Units, &mut b), Err(EncodeError::IdTooLarge(u64::MAX)));
        assert!(b.is_empty());
        let many = vec![BID1; 65_536];
        let d =
            DepthDiff { event_time_us: 0, first_update_id: 1, last_update_id: 2, symbol: "A", bids: &many, asks: &[] };
        assert_eq!(encode_depth_diff(&d, Scale::Units, &mut b), Err(EncodeError::TooManyLevels(65_536)));
        assert!(b.is_empty());
        encode_depth_diff(&DepthDiff { bids: &many[..65_535], ..d }, Scale::Units, &mut b).unwrap();
        assert_eq!(u16_at(&b, 36), 65_535);
        let t = [TradeEntry { id: u64::MAX, price: 1, qty: 1, buyer_is_maker: false }];
        let m = Trades { event_time_us: 0, transact_time_us: 0, symbol: "A", trades: &t };
        assert_eq!(encode_trades(&m, Scale::Units, &mut b), Err(EncodeError::IdTooLarge(u64::MAX)));
        assert!(b.is_empty());
        assert!(!EncodeError::TooManyTrades(3_000_000_000).to_string().contains('\n'));
    }

    /// The synthetic market's own events: every diff, trade and bookTicker becomes a frame of its
    /// template whose fields are the event's; aggTrades become nothing.
    #[test]
    fn synthetic_events_convert() {
        use crate::event::StreamKind;
        use crate::symbols::SymbolSpec;
        use crate::synth::{Synth, SynthStreams};
        let ids = SynthStreams { depth: 0, depth100: 1, trade: 2, agg_trade: 3, book_ticker: 4, depth500: None };
        let mut synth = Synth::new(SymbolSpec::for_symbol("btcusdt"), 0, ids, 7, 500);
        let mut out = Vec::new();
        for i in 0..30 {
            synth.step(i * 100_000_000, 100_000_000, &mut out);
        }
        let now = 1_723_161_255_208_123;
        let mut b = Vec::new();
        let mut seen = [0usize; 4];
        for t in &out {
            let e = &t.event;
            let r = encode_event(e, "BTCUSDT", now, Scale::Coarsest, &mut b);
            match (&e.fields, e.kind) {
                (Fields::Opaque, StreamKind::AggTrade) => {
                    assert!(r.is_none() && b.is_empty());
                    seen[3] += 1;
                }
                (Fields::Depth(d), StreamKind::Depth) => {
                    r.unwrap().unwrap();
                    assert_eq!(u16_at(&b, 2), DEPTH_DIFF_TEMPLATE_ID);
                    assert_eq!(i64_at(&b, 8), now);
                    assert_eq!((i64_at(&b, 16), i64_at(&b, 24)), (d.first_id as i64, d.last_id as i64));
                    assert_eq!(usize::from(u16_at(&b, 36)), d.bids.len());
                    let px = i8_at(&b, 32);
                    assert!((-8..=-2).contains(&px), "BTCUSDT's tick is 0.01: {px}");
                    if let Some(l) = d.bids.first() {
                        assert_eq!(i64_at(&b, 38) * 10i64.pow((px + 8) as u32), l.price);
                    }
                    assert_eq!(&b[b.len() - 7..], b"BTCUSDT");
                    seen[0] += 1;
                }
                (&Fields::Trade { id, price, qty, buyer_is_maker, trade_lag_us }, StreamKind::Trade) => {
                    r.unwrap().unwrap();
                    assert_eq!(u16_at(&b, 2), TRADES_TEMPLATE_ID);
                    assert_eq!((i64_at(&b, 8), i64_at(&b, 16)), (now, now - trade_lag_us));
                    assert_eq!(u32_at(&b, 28), 1);
                    assert_eq!(i64_at(&b, 32), id as i64);
                    let (px, qx) = (i8_at(&b, 24), i8_at(&b, 25));
                    assert_eq!(i64_at(&b, 40) * 10i64.pow((px + 8) as u32), price);
                    assert_eq!(i64_at(&b, 48) * 10i64.pow((qx + 8) as u32), qty);
                    assert_eq!(b[56], u8::from(buyer_is_maker));
                    seen[1] += 1;
                }
                (&Fields::BookTicker { update_id, bid, ask }, StreamKind::BookTicker) => {
                    r.unwrap().unwrap();
                    assert_eq!(u16_at(&b, 2), BEST_BID_ASK_TEMPLATE_ID);
                    assert_eq!(i64_at(&b, 16), update_id as i64);
                    let (px, qx) = (i8_at(&b, 24), i8_at(&b, 25));
                    let p = |m: i64| m * 10i64.pow((px + 8) as u32);
                    let q = |m: i64| m * 10i64.pow((qx + 8) as u32);
                    assert_eq!((p(i64_at(&b, 26)), q(i64_at(&b, 34))), (bid.price, bid.qty));
                    assert_eq!((p(i64_at(&b, 42)), q(i64_at(&b, 50))), (ask.price, ask.qty));
                    seen[2] += 1;
                }
                (f, k) => panic!("{k:?} event with fields {f:?}"),
            }
        }
        assert!(seen.iter().all(|&n| n > 5), "diffs, trades, tickers, aggTrades: {seen:?}");
    }
}
