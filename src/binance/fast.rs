//! Strict single-pass readers for the exact bytes Binance writes: keys in Binance's order, no
//! whitespace, no escapes. Each returns `None` for anything else, and the caller then takes the
//! general decoder (sonic-rs behind the nesting check), so the fast path changes speed, never a
//! result: whatever it accepts is valid JSON whose meaning the general decoder reads the same way
//! (a property test in `tests.rs` holds the two equal on the real recordings and on mutations of
//! them).
//!
//! What it needs no check for: the input it accepts is ASCII (digits, `.`, the literal keys, a
//! symbol of printable ASCII without `"` or `\`), nested two deep at most, so neither UTF-8
//! validation nor the nesting bound applies. A number that does not parse (a malformed decimal,
//! an id past `u64`) is `None` too: the general decoder then reports the error.

use super::levels::{quoted_units, RawLevel};
use super::market::{AggTrade, BookTicker, DepthHeader, FuturesDepthHeader, Trade};
use crate::book::fixed::Units;

/// A cursor over one message.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    #[inline]
    fn new(b: &'a [u8]) -> Scan<'a> {
        Scan { b, i: 0 }
    }

    /// The literal `s` next.
    #[inline]
    fn lit(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + s.len())? == s {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    /// A JSON non-negative integer that fits in `u64`: `0`, or digits without a leading zero.
    /// The byte after it is left to the caller's next literal, which never starts with a digit,
    /// `.`, `e` or `E`.
    #[inline]
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(d))?;
            self.i += 1;
        }
        let n = self.i - start;
        if n == 0 || (n > 1 && self.b[start] == b'0') {
            return None;
        }
        Some(v)
    }

    /// A non-negative JSON integer that fits in `i64` (event times; a negative one takes the
    /// general path).
    #[inline]
    fn time(&mut self) -> Option<i64> {
        i64::try_from(self.uint()?).ok()
    }

    /// The rest of a string whose opening quote was matched: printable ASCII other than `"` and
    /// `\`, up to the closing quote (consumed).
    #[inline]
    fn plain_str(&mut self) -> Option<&'a str> {
        let start = self.i;
        loop {
            let c = *self.b.get(self.i)?;
            if c == b'"' {
                break;
            }
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                return None;
            }
            self.i += 1;
        }
        let s = std::str::from_utf8(&self.b[start..self.i]).ok()?;
        self.i += 1;
        Some(s)
    }

    /// The rest of a decimal string whose opening quote was matched, closing quote consumed.
    #[inline]
    fn dec(&mut self) -> Option<Units> {
        let (v, end) = quoted_units(self.b, self.i)?.ok()?;
        self.i = end + 1;
        Some(v)
    }

    #[inline]
    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|()| false)
        }
    }

    /// `[["price","qty"],...]` into `out`.
    #[inline]
    fn levels(&mut self, out: &mut Vec<RawLevel>) -> Option<()> {
        self.lit(b"[")?;
        if self.lit(b"]").is_some() {
            return Some(());
        }
        loop {
            self.lit(b"[\"")?;
            let price = self.dec()?;
            self.lit(b",\"")?;
            let qty = self.dec()?;
            self.lit(b"]")?;
            out.push(RawLevel { price, qty });
            match self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The closing brace, and nothing after it.
    #[inline]
    fn end(&mut self) -> Option<()> {
        self.lit(b"}")?;
        (self.i == self.b.len()).then_some(())
    }
}

/// `{"e":"depthUpdate","E":..,"s":"..","U":..,"u":..,"b":[..],"a":[..]}`. On `None` the level
/// buffers may hold part of the message: the caller clears them.
pub(crate) fn depth<'a>(b: &'a [u8], bids: &mut Vec<RawLevel>, asks: &mut Vec<RawLevel>) -> Option<DepthHeader<'a>> {
    let mut s = Scan::new(b);
    s.lit(b"{\"e\":\"depthUpdate\",\"E\":")?;
    let event_time = s.time()?;
    s.lit(b",\"s\":\"")?;
    let symbol = s.plain_str()?;
    s.lit(b",\"U\":")?;
    let first_id = s.uint()?;
    s.lit(b",\"u\":")?;
    let final_id = s.uint()?;
    s.lit(b",\"b\":")?;
    s.levels(bids)?;
    s.lit(b",\"a\":")?;
    s.levels(asks)?;
    s.end()?;
    Some(DepthHeader { event_time, symbol, first_id, final_id })
}

/// The USDⓈ-M futures diff in the key order of Binance's example:
/// `{"e":"depthUpdate","E":..,"T":..,"s":"..","U":..,"u":..,"pu":..,"b":[..],"a":[..]}`. On `None`
/// the level buffers may hold part of the message: the caller clears them.
pub(crate) fn futures_depth<'a>(
    b: &'a [u8],
    bids: &mut Vec<RawLevel>,
    asks: &mut Vec<RawLevel>,
) -> Option<FuturesDepthHeader<'a>> {
    let mut s = Scan::new(b);
    s.lit(b"{\"e\":\"depthUpdate\",\"E\":")?;
    let event_time = s.time()?;
    s.lit(b",\"T\":")?;
    let transaction_time = s.time()?;
    s.lit(b",\"s\":\"")?;
    let symbol = s.plain_str()?;
    s.lit(b",\"U\":")?;
    let first_id = s.uint()?;
    s.lit(b",\"u\":")?;
    let final_id = s.uint()?;
    s.lit(b",\"pu\":")?;
    let prev_final_id = s.uint()?;
    s.lit(b",\"b\":")?;
    s.levels(bids)?;
    s.lit(b",\"a\":")?;
    s.levels(asks)?;
    s.end()?;
    Some(FuturesDepthHeader { event_time, transaction_time, symbol, first_id, final_id, prev_final_id })
}

/// `{"e":"trade","E":..,"s":"..","t":..,"p":"..","q":"..","T":..,"m":..,"M":..}` (the `M` key
/// optional, as the general decoder ignores it).
pub(crate) fn trade(b: &[u8]) -> Option<Trade<'_>> {
    let mut s = Scan::new(b);
    s.lit(b"{\"e\":\"trade\",\"E\":")?;
    let event_time = s.time()?;
    s.lit(b",\"s\":\"")?;
    let symbol = s.plain_str()?;
    s.lit(b",\"t\":")?;
    let trade_id = s.uint()?;
    s.lit(b",\"p\":\"")?;
    let price = s.dec()?;
    s.lit(b",\"q\":\"")?;
    let qty = s.dec()?;
    s.lit(b",\"T\":")?;
    let trade_time = s.time()?;
    s.lit(b",\"m\":")?;
    let buyer_is_maker = s.boolean()?;
    if s.lit(b",\"M\":").is_some() {
        s.boolean()?;
    }
    s.end()?;
    Some(Trade { event_time, symbol, trade_id, price, qty, trade_time, buyer_is_maker })
}

/// `{"e":"aggTrade","E":..,"s":"..","a":..,"p":"..","q":"..","f":..,"l":..,"T":..,"m":..,"M":..}`.
pub(crate) fn agg_trade(b: &[u8]) -> Option<AggTrade<'_>> {
    let mut s = Scan::new(b);
    s.lit(b"{\"e\":\"aggTrade\",\"E\":")?;
    let event_time = s.time()?;
    s.lit(b",\"s\":\"")?;
    let symbol = s.plain_str()?;
    s.lit(b",\"a\":")?;
    let agg_id = s.uint()?;
    s.lit(b",\"p\":\"")?;
    let price = s.dec()?;
    s.lit(b",\"q\":\"")?;
    let qty = s.dec()?;
    s.lit(b",\"f\":")?;
    let first_trade_id = s.uint()?;
    s.lit(b",\"l\":")?;
    let last_trade_id = s.uint()?;
    s.lit(b",\"T\":")?;
    let trade_time = s.time()?;
    s.lit(b",\"m\":")?;
    let buyer_is_maker = s.boolean()?;
    if s.lit(b",\"M\":").is_some() {
        s.boolean()?;
    }
    s.end()?;
    Some(AggTrade { event_time, symbol, agg_id, price, qty, first_trade_id, last_trade_id, trade_time, buyer_is_maker })
}

/// `{"u":..,"s":"..","b":"..","B":"..","a":"..","A":".."}`.
pub(crate) fn book_ticker(b: &[u8]) -> Option<BookTicker<'_>> {
    let mut s = Scan::new(b);
    s.lit(b"{\"u\":")?;
    let update_id = s.uint()?;
    s.lit(b",\"s\":\"")?;
    let symbol = s.plain_str()?;
    s.lit(b",\"b\":\"")?;
    let bid_price = s.dec()?;
    s.lit(b",\"B\":\"")?;
    let bid_qty = s.dec()?;
    s.lit(b",\"a\":\"")?;
    let ask_price = s.dec()?;
    s.lit(b",\"A\":\"")?;
    let ask_qty = s.dec()?;
    s.end()?;
    Some(BookTicker { update_id, symbol, bid_price, bid_qty, ask_price, ask_qty })
}
