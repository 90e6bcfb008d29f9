//! Binance message decoding: combined-stream frames and REST bodies to typed, borrowed values.
//!
//! Every decoder is a serde visitor driven by `sonic_rs::Deserializer` over the caller's bytes:
//! strings are borrowed from the input, prices and quantities are parsed straight to integer
//! units inside the visitor, and depth levels are pushed into caller-owned, reused vectors, so
//! decoding a message allocates nothing once those vectors have grown. Errors are values: a
//! malformed frame is reported, never a panic, and the caller counts it and goes on.
//!
//! This module is not a general JSON layer: it knows the few message shapes tickfeed consumes
//! (`protocol` section 2 of the Binance notes) and refuses anything else.

use crate::fixed::{self, NumError, TickSize, Units};
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Why a message could not be decoded. None of these is fatal to a connection: the message is
/// counted as bad and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not well-formed JSON, or a value of the wrong JSON type where a field was expected.
    Json,
    /// A price or quantity string that is not a valid decimal.
    Number(NumError),
    /// A required field is absent.
    MissingField(&'static str),
    /// The payload's event type is not the one its stream name promises.
    WrongEvent,
    /// The stream name is not one tickfeed understands.
    UnknownStream,
    /// The frame is none of: combined-stream event, raw event, control reply, REST depth body.
    UnknownShape,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json => f.write_str("malformed JSON"),
            DecodeError::Number(e) => write!(f, "bad decimal: {e}"),
            DecodeError::MissingField(k) => write!(f, "missing field \"{k}\""),
            DecodeError::WrongEvent => f.write_str("event type does not match its stream"),
            DecodeError::UnknownStream => f.write_str("unknown stream"),
            DecodeError::UnknownShape => f.write_str("unrecognised message"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One depth level as it came off the wire: price and quantity in 1e-8 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLevel {
    /// Price in 1e-8 units.
    pub price: Units,
    /// Quantity in 1e-8 units; 0 removes the level.
    pub qty: Units,
}

/// Reused storage for the levels of one depth message or snapshot. Cleared by each decode; its
/// capacity stays, so after warm-up decoding does not allocate.
#[derive(Debug, Default)]
pub struct LevelBuf {
    /// Bid levels in wire order.
    pub bids: Vec<RawLevel>,
    /// Ask levels in wire order.
    pub asks: Vec<RawLevel>,
}

impl LevelBuf {
    /// Buffers with room for `n` levels per side.
    pub fn with_capacity(n: usize) -> LevelBuf {
        LevelBuf { bids: Vec::with_capacity(n), asks: Vec::with_capacity(n) }
    }
}

/// The kinds of market stream tickfeed consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `<sym>@depth` or `<sym>@depth@100ms`: diff depth.
    Depth,
    /// `<sym>@trade`.
    Trade,
    /// `<sym>@aggTrade`.
    AggTrade,
    /// `<sym>@bookTicker`.
    BookTicker,
}

impl StreamKind {
    /// The stream-name suffix tickfeed subscribes with (`depth` is the 100 ms stream).
    pub fn suffix(self) -> &'static str {
        match self {
            StreamKind::Depth => "depth@100ms",
            StreamKind::Trade => "trade",
            StreamKind::AggTrade => "aggTrade",
            StreamKind::BookTicker => "bookTicker",
        }
    }
}

/// A stream name split into its lowercase symbol and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamName<'a> {
    /// The symbol as written in the stream name (lowercase on Binance).
    pub symbol: &'a str,
    /// What the stream carries.
    pub kind: StreamKind,
}

/// Parses `btcusdt@depth@100ms`, `btcusdt@trade`, ... ; `None` for anything else.
pub fn parse_stream_name(name: &str) -> Option<StreamName<'_>> {
    let at = name.find('@')?;
    let (symbol, rest) = (&name[..at], &name[at + 1..]);
    if symbol.is_empty() {
        return None;
    }
    let kind = match rest {
        "depth" | "depth@100ms" => StreamKind::Depth,
        "trade" => StreamKind::Trade,
        "aggTrade" => StreamKind::AggTrade,
        "bookTicker" => StreamKind::BookTicker,
        _ => return None,
    };
    Some(StreamName { symbol, kind })
}

/// The outer shape of one text frame or recorded line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    /// A combined-stream event `{"stream":..,"data":..}`: the name and the raw payload bytes.
    Stream {
        /// The stream name, e.g. `btcusdt@depth@100ms`.
        stream: &'a str,
        /// The raw JSON of `data`, exactly as received.
        data: &'a [u8],
    },
    /// An unwrapped event object with an `"e"` field (raw `/ws/` streams, raw serverShutdown).
    Event(&'a [u8]),
    /// A REST depth snapshot body `{"lastUpdateId":..}`.
    Snapshot(&'a [u8]),
    /// A reply to a control request (`{"result":null,"id":1}`) or an error (`{"code":..}`).
    Control(&'a [u8]),
}

const STREAM_PREFIX: &[u8] = b"{\"stream\":\"";
const DATA_INFIX: &[u8] = b"\",\"data\":";

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Splits a frame into its envelope without parsing the payload.
///
/// Binance writes combined events as `{"stream":"<name>","data":<payload>}` with no spaces; that
/// form is recognised with a few byte compares so the payload is parsed once, by its typed
/// decoder. Any other key order or spacing falls back to a full sonic-rs parse of the wrapper.
pub fn split_envelope(frame: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let f = trim(frame);
    if f.first() != Some(&b'{') || f.last() != Some(&b'}') {
        return Err(DecodeError::Json);
    }
    if let Some(rest) = f.strip_prefix(STREAM_PREFIX) {
        if let Some(q) = rest.iter().position(|&c| c == b'"' || c == b'\\') {
            if rest[q] == b'"' && rest[q..].starts_with(DATA_INFIX) {
                let name = &rest[..q];
                let data = trim(&rest[q + DATA_INFIX.len()..rest.len() - 1]);
                if let Ok(stream) = std::str::from_utf8(name) {
                    return Ok(Envelope::Stream { stream, data });
                }
            }
        }
    }
    classify_slow(f)
}

/// The general path: look at the top-level keys with a real parser.
fn classify_slow(f: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    struct Keys<'a> {
        stream: Option<&'a str>,
        data: Option<&'a [u8]>,
        has_e: bool,
        has_last_update_id: bool,
        has_control: bool,
    }
    struct KeysVisitor;
    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Keys<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Keys<'de>, A::Error> {
            let mut k = Keys { stream: None, data: None, has_e: false, has_last_update_id: false, has_control: false };
            while let Some(key) = m.next_key::<&str>()? {
                match key {
                    "stream" => k.stream = Some(m.next_value::<&str>()?),
                    "data" => {
                        let raw: sonic_rs::LazyValue<'de> = m.next_value()?;
                        // Only a borrowed raw value can be handed out; an owned one cannot
                        // outlive this call, so treat it as malformed.
                        k.data = match raw.as_raw_cow() {
                            std::borrow::Cow::Borrowed(s) => Some(s.as_bytes()),
                            std::borrow::Cow::Owned(_) => None,
                        };
                    }
                    "e" => {
                        k.has_e = true;
                        m.next_value::<IgnoredAny>()?;
                    }
                    "lastUpdateId" => {
                        k.has_last_update_id = true;
                        m.next_value::<IgnoredAny>()?;
                    }
                    "result" | "id" | "code" | "error" => {
                        k.has_control = true;
                        m.next_value::<IgnoredAny>()?;
                    }
                    _ => {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(k)
        }
    }
    let mut de = sonic_rs::Deserializer::from_str(utf8(f).map_err(|()| DecodeError::Json)?);
    let k = de.deserialize_map(KeysVisitor).map_err(|_| DecodeError::Json)?;
    de.end().map_err(|_| DecodeError::Json)?;
    match (k.stream, k.data) {
        (Some(stream), Some(data)) => Ok(Envelope::Stream { stream, data }),
        _ if k.has_e => Ok(Envelope::Event(f)),
        _ if k.has_last_update_id => Ok(Envelope::Snapshot(f)),
        _ if k.has_control => Ok(Envelope::Control(f)),
        _ => Err(DecodeError::UnknownShape),
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads

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

/// A field-by-field error carrier: serde's error type cannot hold our typed errors, so visitors
/// record the precise cause here and the caller reads it back after the parse fails.
#[derive(Default)]
struct ErrSlot(Option<DecodeError>);

impl ErrSlot {
    fn num<E: de::Error>(&mut self, r: Result<Units, NumError>) -> Result<Units, E> {
        r.map_err(|e| {
            self.0 = Some(DecodeError::Number(e));
            E::custom("number")
        })
    }
}

fn finish<T>(r: Result<T, ()>, slot: ErrSlot) -> Result<T, DecodeError> {
    r.map_err(|()| slot.0.unwrap_or(DecodeError::Json))
}

/// The input as `&str`, validated once. sonic-rs hands out a skipped value (the borrowed level
/// arrays, a `LazyValue`) as `&str` without checking its UTF-8 (a debug assertion only; undefined
/// behaviour in release), and `Deserializer::end` does not run its final UTF-8 check: so every
/// decoder validates here and gives sonic-rs a `&str`, which it then does not validate again.
fn utf8(data: &[u8]) -> Result<&str, ()> {
    std::str::from_utf8(data).map_err(|_| ())
}

fn run_seed<'de, S: DeserializeSeed<'de>>(data: &'de [u8], seed: S) -> Result<S::Value, ()> {
    let mut de = sonic_rs::Deserializer::from_str(utf8(data)?);
    let v = seed.deserialize(&mut de).map_err(|_| ())?;
    de.end().map_err(|_| ())?;
    Ok(v)
}

/// A decimal string field, parsed straight to units.
struct Dec<'s>(&'s mut ErrSlot);
impl<'de> DeserializeSeed<'de> for Dec<'_> {
    type Value = Units;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Units, D::Error> {
        let s = <&'de str as de::Deserialize>::deserialize(d)?;
        self.0.num(fixed::parse_units(s.as_bytes()))
    }
}

/// `[["price","qty"], ...]` pushed into a vector.
struct Levels<'v, 's> {
    out: &'v mut Vec<RawLevel>,
    err: &'s mut ErrSlot,
}

impl<'de> DeserializeSeed<'de> for Levels<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // sonic-rs validates the array and hands it over as a borrowed raw slice; the common
        // Binance shape is then read by a tight scanner, anything else by the serde visitor.
        let raw: sonic_rs::LazyValue<'de> = de::Deserialize::deserialize(d)?;
        let cow = raw.as_raw_cow();
        let bytes = cow.as_bytes();
        let start = self.out.len();
        match scan_levels(bytes, self.out) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(self.err.num::<D::Error>(Err(e)).unwrap_err()),
            None => {
                self.out.truncate(start);
                // `bytes` is a slice of input already validated as UTF-8 (see `utf8`).
                let mut de = sonic_rs::Deserializer::from_slice(bytes);
                de.deserialize_seq(self).map_err(|_| de::Error::custom("levels"))
            }
        }
    }
}

/// Reads `[["price","qty"],...]` written exactly as Binance writes it (no whitespace, no
/// escapes) into `out`. `None` when the bytes have any other shape (the caller then uses the
/// general parser, which gives the same levels); `Some(Err)` for a malformed number.
fn scan_levels(b: &[u8], out: &mut Vec<RawLevel>) -> Option<Result<(), NumError>> {
    let n = b.len();
    if n < 2 || b[0] != b'[' {
        return None;
    }
    if b[1] == b']' {
        return (n == 2).then_some(Ok(()));
    }
    let mut i = 1;
    loop {
        if b.get(i..i + 2)? != b"[\"" {
            return None;
        }
        let (price, p1) = match quoted_units(b, i + 2)? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        if b.get(p1..p1 + 3)? != b"\",\"" {
            return None;
        }
        let (qty, q1) = match quoted_units(b, p1 + 3)? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        if b.get(q1 + 1)? != &b']' {
            return None;
        }
        out.push(RawLevel { price, qty });
        i = q1 + 2;
        match b.get(i)? {
            b',' => i += 1,
            b']' if i + 1 == n => return Some(Ok(())),
            _ => return None,
        }
    }
}

/// Parses the decimal whose string content starts at `b[from]`, returning it and the index of
/// its closing quote. The Binance shape (digits, '.', 8 digits, '"') is parsed in the same pass
/// that finds the quote; anything else finds the quote first and takes the general parser.
/// `None` when there is no closing quote or an escape comes first.
#[inline]
fn quoted_units(b: &[u8], from: usize) -> Option<Result<(Units, usize), NumError>> {
    let mut j = from;
    let mut int: u64 = 0;
    while j < b.len() && j - from < 12 {
        let d = b[j].wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        int = int * 10 + d as u64;
        j += 1;
    }
    if j > from && j - from <= 11 && b.get(j) == Some(&b'.') && b.get(j + 9) == Some(&b'"') {
        if let Some(frac) = b.get(j + 1..j + 9).and_then(fixed::swar_8_digits) {
            let total = int * fixed::SCALE as u64 + frac;
            return Some(if total > i64::MAX as u64 { Err(NumError::Overflow) } else { Ok((total as i64, j + 9)) });
        }
    }
    let rel = b.get(from..)?.iter().position(|&c| c == b'"' || c == b'\\')?;
    let end = from + rel;
    if b[end] != b'"' {
        return None;
    }
    Some(fixed::parse_units(&b[from..end]).map(|v| (v, end)))
}

impl<'de> Visitor<'de> for Levels<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of [price, qty] pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(()) = seq.next_element_seed(LevelSeed { out: &mut *self.out, err: &mut *self.err })? {}
        Ok(())
    }
}

struct LevelSeed<'v, 's> {
    out: &'v mut Vec<RawLevel>,
    err: &'s mut ErrSlot,
}

impl<'de> DeserializeSeed<'de> for LevelSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a [price, qty] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let price = seq.next_element_seed(Dec(self.err))?.ok_or_else(|| de::Error::invalid_length(0, &"2"))?;
        let qty = seq.next_element_seed(Dec(self.err))?.ok_or_else(|| de::Error::invalid_length(1, &"2"))?;
        // Binance sends exactly two strings; anything after them is tolerated and skipped.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.out.push(RawLevel { price, qty });
        Ok(())
    }
}

fn missing<E: de::Error>(slot: &mut ErrSlot, field: &'static str) -> E {
    slot.0 = Some(DecodeError::MissingField(field));
    E::custom("missing")
}

fn wrong_event<E: de::Error>(slot: &mut ErrSlot) -> E {
    slot.0 = Some(DecodeError::WrongEvent);
    E::custom("event")
}

/// A map visitor is also its own seed: deserialize it as a JSON object.
macro_rules! map_seed {
    ($t:ty, $v:ty) => {
        impl<'de> DeserializeSeed<'de> for $t {
            type Value = $v;
            fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }
        }
    };
}

struct DepthVisitor<'b, 's> {
    bufs: &'b mut LevelBuf,
    err: &'s mut ErrSlot,
}

map_seed!(DepthVisitor<'_, '_>, DepthHeader<'de>);

impl<'de> Visitor<'de> for DepthVisitor<'_, '_> {
    type Value = DepthHeader<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a depthUpdate object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
        let (mut e_ok, mut time, mut sym, mut first, mut last) = (None, None, None, None, None);
        let (mut saw_b, mut saw_a) = (false, false);
        while let Some(key) = m.next_key::<&str>()? {
            match key {
                "e" => e_ok = Some(m.next_value::<&str>()? == "depthUpdate"),
                "E" => time = Some(m.next_value::<i64>()?),
                "s" => sym = Some(m.next_value::<&str>()?),
                "U" => first = Some(m.next_value::<u64>()?),
                "u" => last = Some(m.next_value::<u64>()?),
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
        Ok(DepthHeader {
            event_time: time.ok_or_else(|| missing(self.err, "E"))?,
            symbol: sym.ok_or_else(|| missing(self.err, "s"))?,
            first_id: first.ok_or_else(|| missing(self.err, "U"))?,
            final_id: last.ok_or_else(|| missing(self.err, "u"))?,
        })
    }
}

/// Decodes a `depthUpdate` payload; its levels replace the contents of `bufs`.
pub fn decode_depth<'a>(data: &'a [u8], bufs: &mut LevelBuf) -> Result<DepthHeader<'a>, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    let mut slot = ErrSlot::default();
    let r = run_seed(data, DepthVisitor { bufs, err: &mut slot });
    finish(r, slot)
}

struct SnapshotVisitor<'b, 's> {
    bufs: &'b mut LevelBuf,
    err: &'s mut ErrSlot,
}

map_seed!(SnapshotVisitor<'_, '_>, u64);

impl<'de> Visitor<'de> for SnapshotVisitor<'_, '_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a depth snapshot object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<u64, A::Error> {
        let mut id = None;
        let (mut saw_b, mut saw_a) = (false, false);
        while let Some(key) = m.next_key::<&str>()? {
            match key {
                "lastUpdateId" => id = Some(m.next_value::<u64>()?),
                "bids" => {
                    saw_b = true;
                    m.next_value_seed(Levels { out: &mut self.bufs.bids, err: &mut *self.err })?
                }
                "asks" => {
                    saw_a = true;
                    m.next_value_seed(Levels { out: &mut self.bufs.asks, err: &mut *self.err })?
                }
                _ => {
                    m.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_b {
            return Err(missing(self.err, "bids"));
        }
        if !saw_a {
            return Err(missing(self.err, "asks"));
        }
        id.ok_or_else(|| missing(self.err, "lastUpdateId"))
    }
}

/// Decodes a REST depth snapshot body; returns its `lastUpdateId`, levels into `bufs`.
pub fn decode_snapshot(body: &[u8], bufs: &mut LevelBuf) -> Result<u64, DecodeError> {
    bufs.bids.clear();
    bufs.asks.clear();
    let mut slot = ErrSlot::default();
    let r = run_seed(body, SnapshotVisitor { bufs, err: &mut slot });
    finish(r, slot)
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
    let ev: Ev = sonic_rs::from_slice(data).map_err(|_| DecodeError::Json)?;
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
    let v: sonic_rs::Value = sonic_rs::from_slice(data).map_err(|_| DecodeError::Json)?;
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

/// A symbol's trading filters from `GET /api/v3/exchangeInfo?symbol=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolFilters {
    /// PRICE_FILTER tickSize (`None` when the rule is disabled: tick 0).
    pub tick: Option<TickSize>,
    /// LOT_SIZE stepSize in 1e-8 units (0 when disabled).
    pub step: Units,
}

/// Decodes the filters of `symbol` from an exchangeInfo body (off the hot path).
pub fn decode_exchange_info(body: &[u8], symbol: &str) -> Result<SymbolFilters, DecodeError> {
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};
    let v: sonic_rs::Value = sonic_rs::from_slice(body).map_err(|_| DecodeError::Json)?;
    let symbols = v.get("symbols").and_then(|s| s.as_array()).ok_or(DecodeError::MissingField("symbols"))?;
    let entry = symbols
        .iter()
        .find(|s| s.get("symbol").and_then(|x| x.as_str()).is_some_and(|x| x.eq_ignore_ascii_case(symbol)))
        .ok_or(DecodeError::MissingField("symbol"))?;
    let filters = entry.get("filters").and_then(|f| f.as_array()).ok_or(DecodeError::MissingField("filters"))?;
    let mut out = SymbolFilters { tick: None, step: 0 };
    let mut saw_price = false;
    for f in filters.iter() {
        match f.get("filterType").and_then(|t| t.as_str()) {
            Some("PRICE_FILTER") => {
                let t = f.get("tickSize").and_then(|t| t.as_str()).ok_or(DecodeError::MissingField("tickSize"))?;
                out.tick = TickSize::parse(t).map_err(DecodeError::Number)?;
                saw_price = true;
            }
            Some("LOT_SIZE") => {
                let s = f.get("stepSize").and_then(|t| t.as_str()).ok_or(DecodeError::MissingField("stepSize"))?;
                out.step = fixed::parse_units_str(s).map_err(DecodeError::Number)?;
            }
            _ => {}
        }
    }
    if !saw_price {
        return Err(DecodeError::MissingField("PRICE_FILTER"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPTH: &str = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}"#;

    fn data_of(frame: &str) -> &[u8] {
        match split_envelope(frame.as_bytes()).unwrap() {
            Envelope::Stream { data, .. } => data,
            other => panic!("not a stream: {other:?}"),
        }
    }

    #[test]
    fn splits_combined_frames_fast_and_slow() {
        let Envelope::Stream { stream, data } = split_envelope(DEPTH.as_bytes()).unwrap() else { panic!() };
        assert_eq!(stream, "btcusdt@depth@100ms");
        assert!(data.starts_with(b"{\"e\":\"depthUpdate\"") && data.ends_with(b"]]}"));
        // Other key order and spacing go through the general parser and give the same answer.
        let swapped = r#" { "data" : {"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"} , "stream" : "x@bookTicker" } "#;
        let Envelope::Stream { stream, data } = split_envelope(swapped.as_bytes()).unwrap() else { panic!() };
        assert_eq!(stream, "x@bookTicker");
        assert_eq!(data, br#"{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1"}"#);
        assert_eq!(split_envelope(br#"{"result":null,"id":1}"#), Ok(Envelope::Control(br#"{"result":null,"id":1}"#)));
        assert!(matches!(split_envelope(br#"{"lastUpdateId":1,"bids":[],"asks":[]}"#), Ok(Envelope::Snapshot(_))));
        assert!(matches!(split_envelope(br#"{"e":"serverShutdown","E":1}"#), Ok(Envelope::Event(_))));
        assert_eq!(split_envelope(br#"{"x":1}"#), Err(DecodeError::UnknownShape));
        for bad in ["", "[]", "{", "{\"stream\":\"a\",\"data\":", "not json", "{\"stream\":1,\"data\":{}}"] {
            assert!(split_envelope(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn decodes_depth() {
        let mut b = LevelBuf::default();
        let h = decode_depth(data_of(DEPTH), &mut b).unwrap();
        assert_eq!(
            h,
            DepthHeader { event_time: 1723161255308, symbol: "BTCUSDT", first_id: 50093239203, final_id: 50093239207 }
        );
        assert_eq!(b.bids, vec![RawLevel { price: 5_565_387_000_000, qty: 0 }]);
        assert_eq!(b.asks.len(), 2);
        assert_eq!(b.asks[1], RawLevel { price: 6_184_430_000_000, qty: 40_163_000 });
    }

    #[test]
    fn depth_errors_are_values() {
        let mut b = LevelBuf::default();
        let cases: &[(&str, DecodeError)] = &[
            (
                r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.2.3","1"]],"a":[]}"#,
                DecodeError::Number(NumError::TwoDots),
            ),
            (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"b":[],"a":[]}"#, DecodeError::MissingField("u")),
            (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"a":[]}"#, DecodeError::MissingField("b")),
            (r#"{"e":"trade","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}"#, DecodeError::WrongEvent),
            (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}"#, DecodeError::Json),
            (r#"{"e":"depthUpdate","E":1,"s":"X","U":-1,"u":2,"b":[],"a":[]}"#, DecodeError::Json),
            (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[[1,2]],"a":[]}"#, DecodeError::Json),
            (r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]} trailing"#, DecodeError::Json),
            (
                r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["-1","2"]],"a":[]}"#,
                DecodeError::Number(NumError::Negative),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(decode_depth(input.as_bytes(), &mut b).as_ref().map(|_| ()), Err(want), "{input}");
        }
    }

    #[test]
    fn decodes_trades_tickers_and_others() {
        let t = decode_trade(br#"{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}"#).unwrap();
        assert_eq!(
            (t.trade_id, t.price, t.qty, t.trade_time, t.buyer_is_maker),
            (3735683259, 6_183_763_000_000, 2_000_000, 1723161255342, true)
        );
        let a = decode_agg_trade(br#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}"#).unwrap();
        assert_eq!(
            (a.agg_id, a.first_trade_id, a.last_trade_id, a.price, a.qty),
            (12345, 100, 105, 100_000, 10_000_000_000)
        );
        assert_eq!(
            decode_trade(br#"{"e":"aggTrade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true}"#).unwrap_err(),
            DecodeError::WrongEvent
        );
        let bt = decode_book_ticker(
            br#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#,
        )
        .unwrap();
        assert_eq!((bt.update_id, bt.bid_price, bt.ask_qty), (400900217, 2_535_190_000, 4_066_000_000));
        assert_eq!(
            decode_raw_event(br#"{"e":"serverShutdown","E":1770123456789}"#),
            Ok(RawEvent::ServerShutdown { event_time: 1770123456789 })
        );
        let c = decode_control(br#"{"result":null,"id":1}"#).unwrap();
        assert_eq!((c.id.as_deref(), c.error_code), (Some("1"), None));
        let c = decode_control(br#"{"code":2,"msg":"Invalid request: too many parameters"}"#).unwrap();
        assert_eq!(c.error_code, Some(2));
        let nested = br#"{"error":{"code":2,"msg":"Invalid request: too many parameters"},"id":7}"#;
        assert_eq!(split_envelope(nested), Ok(Envelope::Control(nested)));
        let c = decode_control(nested).unwrap();
        assert_eq!(
            (c.error_code, c.error_msg.as_deref(), c.id.as_deref()),
            (Some(2), Some("Invalid request: too many parameters"), Some("7"))
        );
        assert_eq!(decode_control(br#"{"id":1}"#), Err(DecodeError::UnknownShape));
        let mut b = LevelBuf::default();
        assert_eq!(decode_snapshot(br#"{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}"#, &mut b), Ok(1027024));
        assert_eq!(b.asks, vec![RawLevel { price: 400_000_200, qty: 1_200_000_000 }]);
    }

    #[test]
    fn level_scanner_matches_general_parser() {
        let cases: &[&str] = &[
            r#"[]"#,
            r#"[["1.00000000","2.00000000"]]"#,
            r#"[["61837.63000000","3.78826000"],["61837.62000000","0.61700000"],["5","0"]]"#,
            r#"[ ["1.0","2.0"] ]"#,
            r#"[["1.0" , "2.0"]]"#,
            r#"[["1.0","2.0","extra"]]"#,
        ];
        for c in cases {
            let framed = format!(r#"{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":{c},"a":[]}}"#);
            let mut b = LevelBuf::default();
            decode_depth(framed.as_bytes(), &mut b).unwrap_or_else(|e| panic!("{c}: {e}"));
            let general: Vec<(String, String)> = serde_json::from_str::<Vec<Vec<String>>>(c)
                .unwrap()
                .into_iter()
                .map(|v| (v[0].clone(), v[1].clone()))
                .collect();
            let want: Vec<RawLevel> = general
                .iter()
                .map(|(p, q)| RawLevel {
                    price: fixed::parse_units_str(p).unwrap(),
                    qty: fixed::parse_units_str(q).unwrap(),
                })
                .collect();
            assert_eq!(b.bids, want, "{c}");
        }
        // Escaped digits are never sent by Binance and cannot be borrowed: refused, not misread.
        let esc = r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1\u0030","2"]],"a":[]}"#;
        assert!(decode_depth(esc.as_bytes(), &mut LevelBuf::default()).is_err());
        let mut out = vec![];
        assert_eq!(scan_levels(br#"[["1.0","2.0"]]"#, &mut out), Some(Ok(())));
        assert_eq!(scan_levels(br#"[["1.0","2.0"],]"#, &mut out), None);
        assert_eq!(scan_levels(br#"[["1.0","2.0"]] "#, &mut out), None);
        assert_eq!(scan_levels(br#"[["1..0","2.0"]]"#, &mut out), Some(Err(NumError::TwoDots)));
        assert_eq!(scan_levels(br#"[["92233720368.54775808","2.0"]]"#, &mut out), Some(Err(NumError::Overflow)));
        assert_eq!(scan_levels(br#"[["123456789012.00000000","2.0"]]"#, &mut out), Some(Err(NumError::Overflow)));
        assert_eq!(scan_levels(br#"[["1.0000000x","2.0"]]"#, &mut out), Some(Err(NumError::InvalidChar)));
        for bad in [r#"[["1.0","2.0"],["#, r#"[[""#, r#"[["1.0""#, r#"[["1.0","2.0""#] {
            assert_eq!(scan_levels(bad.as_bytes(), &mut out), None, "{bad}");
        }
    }

    proptest::proptest! {
        /// The fused quote-and-number scan agrees with finding the quote and parsing the slice.
        #[test]
        fn quoted_units_matches_general_parse(s in "[0-9.a\\\\]{0,24}") {
            let b = format!("{s}\"]");
            let want = b.find(['"', '\\']).filter(|&e| b.as_bytes()[e] == b'"').map(|e| fixed::parse_units(&b.as_bytes()[..e]).map(|v| (v, e)));
            proptest::prop_assert_eq!(quoted_units(b.as_bytes(), 0), want);
        }
    }

    #[test]
    fn invalid_utf8_anywhere_is_an_error_not_undefined_behaviour() {
        let mut b = LevelBuf::default();
        let mut depth =
            br#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.0","2.0"]],"a":[["3.0","\xff"]]}"#.to_vec();
        // The raw-string above spells \xff literally; put a real invalid byte in its place.
        let at = depth.windows(4).position(|w| w == b"\\xff").unwrap();
        depth.splice(at..at + 4, [0xff]);
        assert_eq!(decode_depth(&depth, &mut b).map(|_| ()), Err(DecodeError::Json));
        let mut snap = br#"{"lastUpdateId":1,"bids":[["1.0","2.0"]],"asks":[["3.0","4.0"]],"x":"?"}"#.to_vec();
        let q = snap.iter().rposition(|&c| c == b'?').unwrap();
        snap[q] = 0xc3; // a lone UTF-8 lead byte
        assert_eq!(decode_snapshot(&snap, &mut b), Err(DecodeError::Json));
        let mut wrapped =
            br#"{"data":{"u":1,"s":"X","b":"1","B":"1","a":"1","A":"1","z":"?"},"stream":"x@bookTicker"}"#.to_vec();
        let q = wrapped.iter().rposition(|&c| c == b'?').unwrap();
        wrapped[q] = 0xfe;
        assert_eq!(split_envelope(&wrapped), Err(DecodeError::Json));
    }

    #[test]
    fn stream_names() {
        assert_eq!(
            parse_stream_name("btcusdt@depth@100ms"),
            Some(StreamName { symbol: "btcusdt", kind: StreamKind::Depth })
        );
        assert_eq!(parse_stream_name("btcusdt@depth").map(|s| s.kind), Some(StreamKind::Depth));
        assert_eq!(parse_stream_name("ethusdt@aggTrade").map(|s| s.kind), Some(StreamKind::AggTrade));
        assert_eq!(parse_stream_name("ethusdt@bookTicker").map(|s| s.kind), Some(StreamKind::BookTicker));
        assert_eq!(parse_stream_name("btcusdt@kline_1m"), None);
        assert_eq!(parse_stream_name("@trade"), None);
        assert_eq!(parse_stream_name("!serverShutdown"), None);
    }

    #[test]
    fn exchange_info_filters() {
        let body = br#"{"timezone":"UTC","symbols":[{"symbol":"BTCUSDT","filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"}]}]}"#;
        let f = decode_exchange_info(body, "btcusdt").unwrap();
        assert_eq!(f.tick.unwrap().units(), 1_000_000);
        assert_eq!(f.step, 1_000);
        assert!(decode_exchange_info(body, "ETHUSDT").is_err());
    }
}
