//! Market events on the websocket: diff depth (spot, and USDⓈ-M futures with its `T` and `pu`),
//! trade, aggTrade, bookTicker, the raw `serverShutdown` event and control replies, decoded into
//! typed values that borrow the input.
//!
//! Each decoder is a serde visitor over `sonic_rs::Deserializer`: strings are borrowed, prices and
//! quantities become integer units inside the visitor, and depth levels go into a caller-owned
//! [`LevelBuf`], so decoding allocates nothing once that buffer has grown. It does not split the
//! envelope ([`super::stream`]) and does not apply anything to a book.

use super::json::{
    check_depth, finish, from_slice, map_seed, missing, run_seed, wrong_event, Dec, DecodeError, ErrSlot,
};
use super::levels::{LevelBuf, Levels};
use crate::book::fixed::Units;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// A diff depth event's header; its levels are in the [`LevelBuf`] passed to [`decode_depth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthHeader<'a> {
    /// Event time `E` (milliseconds, or microseconds when `timeUnit=MICROSECOND`).
    pub event_time: i64,
    /// Symbol `s`, uppercase.
    pub symbol: &'a str,
    /// First update id in the event, `U`.
    pub first_id: u64,
    /// Final update id in the event, `u`.
    pub final_id: u64,
}

/// A USDⓈ-M futures diff depth event's header; its levels are in the [`LevelBuf`] passed to
/// [`decode_futures_depth`]. Futures ids are not contiguous: `pu` is what joins one diff to the
/// one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuturesDepthHeader<'a> {
    /// Event time `E` (milliseconds).
    pub event_time: i64,
    /// Transaction time `T` (milliseconds).
    pub transaction_time: i64,
    /// Symbol `s`, uppercase.
    pub symbol: &'a str,
    /// First update id in the event, `U`.
    pub first_id: u64,
    /// Final update id in the event, `u`.
    pub final_id: u64,
    /// Final update id of the previous event on the stream, `pu` (its `u`).
    pub prev_final_id: u64,
}

/// A `trade` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade<'a> {
    /// Event time `E`.
    pub event_time: i64,
    /// Symbol `s`.
    pub symbol: &'a str,
    /// Trade id `t`.
    pub trade_id: u64,
    /// Price `p` in 1e-8 units.
    pub price: Units,
    /// Quantity `q` in 1e-8 units.
    pub qty: Units,
    /// Trade time `T`.
    pub trade_time: i64,
    /// `m`: the buyer was the maker (the aggressor sold).
    pub buyer_is_maker: bool,
}

/// An `aggTrade` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggTrade<'a> {
    /// Event time `E`.
    pub event_time: i64,
    /// Symbol `s`.
    pub symbol: &'a str,
    /// Aggregate trade id `a`.
    pub agg_id: u64,
    /// Price `p` in 1e-8 units.
    pub price: Units,
    /// Quantity `q` in 1e-8 units.
    pub qty: Units,
    /// First trade id `f`.
    pub first_trade_id: u64,
    /// Last trade id `l`.
    pub last_trade_id: u64,
    /// Trade time `T`.
    pub trade_time: i64,
    /// `m`: the buyer was the maker.
    pub buyer_is_maker: bool,
}

/// A `bookTicker` event (no event type and no time on spot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTicker<'a> {
    /// The order book update id `u` this top of book belongs to.
    pub update_id: u64,
    /// Symbol `s`.
    pub symbol: &'a str,
    /// Best bid price `b`.
    pub bid_price: Units,
    /// Best bid quantity `B`.
    pub bid_qty: Units,
    /// Best ask price `a`.
    pub ask_price: Units,
    /// Best ask quantity `A`.
    pub ask_qty: Units,
}

/// The event names tickfeed knows outside the market streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEvent {
    /// `serverShutdown`: the server is about to close this connection.
    ServerShutdown {
        /// Event time `E`.
        event_time: i64,
    },
    /// Any other event type (counted, ignored).
    Other,
}

/// Shared visitor for spot and futures depth, which differ only in `T` and `pu` (read and
/// required for futures; on spot, like any other unknown key, skipped).
struct DepthVisitor<'b, 's> {
    futures: bool,
    bufs: &'b mut LevelBuf,
    err: &'s mut ErrSlot,
}

/// Both depth headers, before being split into the public types (`T` and `pu` are 0 on spot).
struct AnyDepth<'a> {
    event_time: i64,
    transaction_time: i64,
    symbol: &'a str,
    first_id: u64,
    final_id: u64,
    prev_final_id: u64,
}

map_seed!(DepthVisitor<'_, '_>, AnyDepth<'de>);

impl<'de> Visitor<'de> for DepthVisitor<'_, '_> {
    type Value = AnyDepth<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a depthUpdate object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut e_ok, mut time, mut sym, mut first, mut last) = (None, None, None, None, None);
        let (mut ttime, mut prev) = (None, None);
        let (mut saw_b, mut saw_a) = (false, false);
        while let Some(key) = m.next_key::<&str>()? {
            match key {
                "e" => e_ok = Some(m.next_value::<&str>()? == "depthUpdate"),
                "E" => time = Some(m.next_value::<i64>()?),
                "s" => sym = Some(m.next_value::<&str>()?),
                "U" => first = Some(m.next_value::<u64>()?),
                "u" => last = Some(m.next_value::<u64>()?),
                "T" if self.futures => ttime = Some(m.next_value::<i64>()?),
                "pu" if self.futures => prev = Some(m.next_value::<u64>()?),
                "b" => {
                    saw_b = true;
                    m.next_value_seed(Levels { out: &mut self.bufs.bids, err: &mut *self.err })?
                }
                "a" => {
                    saw_a = true;
                    m.next_value_seed(Levels { out: &mut self.bufs.asks, err: &mut *self.err })?
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        match e_ok {
            Some(true) => {}
            Some(false) => return Err(wrong_event(self.err)),
            None => return Err(missing(self.err, "e")),
        }
        if !saw_b {
            return Err(missing(self.err, "b"));
        }
        if !saw_a {
            return Err(missing(self.err, "a"));
        }
        let (transaction_time, prev_final_id) = if self.futures {
            (ttime.ok_or_else(|| missing(self.err, "T"))?, prev.ok_or_else(|| missing(self.err, "pu"))?)
        } else {
            (0, 0)
        };
        Ok(AnyDepth {
            event_time: time.ok_or_else(|| missing(self.err, "E"))?,
            transaction_time,
            symbol: sym.ok_or_else(|| missing(self.err, "s"))?,
            first_id: first.ok_or_else(|| missing(self.err, "U"))?,
            final_id: last.ok_or_else(|| missing(self.err, "u"))?,
            prev_final_id,
        })
    }
}

/// Decodes a `depthUpdate` payload; its levels replace the contents of `bufs`.
pub fn decode_depth<'a>(data: &'a [u8], bufs: &mut LevelBuf) -> Result<DepthHeader<'a>, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    if let Some(h) = super::fast::depth(data, &mut bufs.bids, &mut bufs.asks) {
        return Ok(h);
    }
    decode_depth_general(data, bufs)
}

/// [`decode_depth`] without its fast path: sonic-rs behind the nesting check.
pub(crate) fn decode_depth_general<'a>(data: &'a [u8], bufs: &mut LevelBuf) -> Result<DepthHeader<'a>, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    check_depth(data)?;
    let mut slot = ErrSlot::default();
    let r = run_seed(data, DepthVisitor { futures: false, bufs, err: &mut slot });
    let d = finish(r, slot)?;
    Ok(DepthHeader { event_time: d.event_time, symbol: d.symbol, first_id: d.first_id, final_id: d.final_id })
}

/// Decodes a USDⓈ-M futures `depthUpdate` payload (`e`, `E`, `T`, `s`, `U`, `u`, `pu`, `b`, `a`;
/// other keys, such as the `ps` or `st` some futures events carry, are skipped); its levels replace
/// the contents of `bufs`. Prices and quantities come at the symbol's precision (`"64336.00"`),
/// read into 1e-8 units like spot's.
pub fn decode_futures_depth<'a>(data: &'a [u8], bufs: &mut LevelBuf) -> Result<FuturesDepthHeader<'a>, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    if let Some(h) = super::fast::futures_depth(data, &mut bufs.bids, &mut bufs.asks) {
        return Ok(h);
    }
    decode_futures_depth_general(data, bufs)
}

/// [`decode_futures_depth`] without its fast path: sonic-rs behind the nesting check.
pub(crate) fn decode_futures_depth_general<'a>(
    data: &'a [u8],
    bufs: &mut LevelBuf,
) -> Result<FuturesDepthHeader<'a>, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    check_depth(data)?;
    let mut slot = ErrSlot::default();
    let r = run_seed(data, DepthVisitor { futures: true, bufs, err: &mut slot });
    let d = finish(r, slot)?;
    Ok(FuturesDepthHeader {
        event_time: d.event_time,
        transaction_time: d.transaction_time,
        symbol: d.symbol,
        first_id: d.first_id,
        final_id: d.final_id,
        prev_final_id: d.prev_final_id,
    })
}

/// Shared visitor for trade and aggTrade, which differ only in a few keys.
struct TradeVisitor<'s> {
    agg: bool,
    err: &'s mut ErrSlot,
}

/// Both trade shapes, before being split into the public types.
struct AnyTrade<'a> {
    event_time: i64,
    symbol: &'a str,
    id: u64,
    price: Units,
    qty: Units,
    first: u64,
    last: u64,
    trade_time: i64,
    maker: bool,
}

map_seed!(TradeVisitor<'_>, AnyTrade<'de>);

impl<'de> Visitor<'de> for TradeVisitor<'_> {
    type Value = AnyTrade<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a trade object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let want = if self.agg { "aggTrade" } else { "trade" };
        let id_key = if self.agg { "a" } else { "t" };
        let (mut e_ok, mut time, mut sym, mut id, mut price, mut qty) = (None, None, None, None, None, None);
        let (mut first, mut last, mut ttime, mut maker) = (None, None, None, None);
        while let Some(key) = m.next_key::<&str>()? {
            match key {
                "e" => e_ok = Some(m.next_value::<&str>()? == want),
                "E" => time = Some(m.next_value::<i64>()?),
                "s" => sym = Some(m.next_value::<&str>()?),
                "p" => price = Some(m.next_value_seed(Dec(&mut *self.err))?),
                "q" => qty = Some(m.next_value_seed(Dec(&mut *self.err))?),
                "T" => ttime = Some(m.next_value::<i64>()?),
                "m" => maker = Some(m.next_value::<bool>()?),
                k if k == id_key => id = Some(m.next_value::<u64>()?),
                "f" if self.agg => first = Some(m.next_value::<u64>()?),
                "l" if self.agg => last = Some(m.next_value::<u64>()?),
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        match e_ok {
            Some(true) => {}
            Some(false) => return Err(wrong_event(self.err)),
            None => return Err(missing(self.err, "e")),
        }
        let err = self.err;
        let (first, last) = if self.agg {
            (first.ok_or_else(|| missing(err, "f"))?, last.ok_or_else(|| missing(err, "l"))?)
        } else {
            (0, 0)
        };
        Ok(AnyTrade {
            event_time: time.ok_or_else(|| missing(err, "E"))?,
            symbol: sym.ok_or_else(|| missing(err, "s"))?,
            id: id.ok_or_else(|| missing(err, id_key))?,
            price: price.ok_or_else(|| missing(err, "p"))?,
            qty: qty.ok_or_else(|| missing(err, "q"))?,
            first,
            last,
            trade_time: ttime.ok_or_else(|| missing(err, "T"))?,
            maker: maker.ok_or_else(|| missing(err, "m"))?,
        })
    }
}

/// Decodes a `trade` payload.
pub fn decode_trade(data: &[u8]) -> Result<Trade<'_>, DecodeError> {
    match super::fast::trade(data) {
        Some(t) => Ok(t),
        None => decode_trade_general(data),
    }
}

/// [`decode_trade`] without its fast path.
pub(crate) fn decode_trade_general(data: &[u8]) -> Result<Trade<'_>, DecodeError> {
    check_depth(data)?;
    let mut slot = ErrSlot::default();
    let r = run_seed(data, TradeVisitor { agg: false, err: &mut slot });
    let t = finish(r, slot)?;
    Ok(Trade {
        event_time: t.event_time,
        symbol: t.symbol,
        trade_id: t.id,
        price: t.price,
        qty: t.qty,
        trade_time: t.trade_time,
        buyer_is_maker: t.maker,
    })
}

/// Decodes an `aggTrade` payload.
pub fn decode_agg_trade(data: &[u8]) -> Result<AggTrade<'_>, DecodeError> {
    match super::fast::agg_trade(data) {
        Some(t) => Ok(t),
        None => decode_agg_trade_general(data),
    }
}

/// [`decode_agg_trade`] without its fast path.
pub(crate) fn decode_agg_trade_general(data: &[u8]) -> Result<AggTrade<'_>, DecodeError> {
    check_depth(data)?;
    let mut slot = ErrSlot::default();
    let r = run_seed(data, TradeVisitor { agg: true, err: &mut slot });
    let t = finish(r, slot)?;
    Ok(AggTrade {
        event_time: t.event_time,
        symbol: t.symbol,
        agg_id: t.id,
        price: t.price,
        qty: t.qty,
        first_trade_id: t.first,
        last_trade_id: t.last,
        trade_time: t.trade_time,
        buyer_is_maker: t.maker,
    })
}

struct TickerVisitor<'s>(&'s mut ErrSlot);

map_seed!(TickerVisitor<'_>, BookTicker<'de>);

impl<'de> Visitor<'de> for TickerVisitor<'_> {
    type Value = BookTicker<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a bookTicker object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut u, mut s, mut b, mut bq, mut a, mut aq) = (None, None, None, None, None, None);
        while let Some(key) = m.next_key::<&str>()? {
            match key {
                "u" => u = Some(m.next_value::<u64>()?),
                "s" => s = Some(m.next_value::<&str>()?),
                "b" => b = Some(m.next_value_seed(Dec(&mut *self.0))?),
                "B" => bq = Some(m.next_value_seed(Dec(&mut *self.0))?),
                "a" => a = Some(m.next_value_seed(Dec(&mut *self.0))?),
                "A" => aq = Some(m.next_value_seed(Dec(&mut *self.0))?),
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        let e = self.0;
        Ok(BookTicker {
            update_id: u.ok_or_else(|| missing(e, "u"))?,
            symbol: s.ok_or_else(|| missing(e, "s"))?,
            bid_price: b.ok_or_else(|| missing(e, "b"))?,
            bid_qty: bq.ok_or_else(|| missing(e, "B"))?,
            ask_price: a.ok_or_else(|| missing(e, "a"))?,
            ask_qty: aq.ok_or_else(|| missing(e, "A"))?,
        })
    }
}

/// Decodes a `bookTicker` payload.
pub fn decode_book_ticker(data: &[u8]) -> Result<BookTicker<'_>, DecodeError> {
    match super::fast::book_ticker(data) {
        Some(t) => Ok(t),
        None => decode_book_ticker_general(data),
    }
}

/// [`decode_book_ticker`] without its fast path.
pub(crate) fn decode_book_ticker_general(data: &[u8]) -> Result<BookTicker<'_>, DecodeError> {
    check_depth(data)?;
    let mut slot = ErrSlot::default();
    let r = run_seed(data, TickerVisitor(&mut slot));
    finish(r, slot)
}

/// Decodes an unwrapped event (`{"e":...}`) that is not a market stream: `serverShutdown`.
pub fn decode_raw_event(data: &[u8]) -> Result<RawEvent, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Ev<'a> {
        #[serde(borrow)]
        e: &'a str,
        #[serde(rename = "E")]
        time: Option<i64>,
    }
    let ev: Ev = from_slice(data)?;
    Ok(match ev.e {
        "serverShutdown" => RawEvent::ServerShutdown { event_time: ev.time.ok_or(DecodeError::MissingField("E"))? },
        _ => RawEvent::Other,
    })
}

/// A control reply, for logging: the request id and whether it reports an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlReply {
    /// The `id` echoed from the request, as raw JSON text (`1`, `"abc"`, `null`), when present.
    pub id: Option<String>,
    /// `code` of an error reply; `None` for a success (`"result"`).
    pub error_code: Option<i64>,
    /// `msg` of an error reply.
    pub error_msg: Option<String>,
}

/// Decodes a control reply (rare; allocates, off the hot path). Errors are accepted in the shape
/// Binance documents, `{"code":2,"msg":".."}`, and in the nested shape servers have been seen to
/// send, `{"error":{"code":2,"msg":".."},"id":1}`.
pub fn decode_control(data: &[u8]) -> Result<ControlReply, DecodeError> {
    let v: sonic_rs::Value = from_slice(data)?;
    use sonic_rs::JsonValueTrait;
    let id = v.get("id").map(|x| sonic_rs::to_string(x).unwrap_or_default());
    let err = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let error_code = err.get("code").and_then(|c| c.as_i64());
    let error_msg = err.get("msg").and_then(|c| c.as_str()).map(str::to_owned);
    if v.get("result").is_none() && error_code.is_none() {
        return Err(DecodeError::UnknownShape);
    }
    Ok(ControlReply { id, error_code, error_msg })
}
