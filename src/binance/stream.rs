//! Stream names and the combined-stream envelope: which stream a frame belongs to and where its
//! payload is, found with a few byte compares on Binance's own layout.
//!
//! It does not decode payloads (that is [`super::market`]) and knows no book or symbol list.

use super::json::{check_depth, utf8, DecodeError};
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use std::fmt;

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

impl StreamKind {
    /// Every kind, in the order [`ByStream`] stores them.
    pub const ALL: [StreamKind; 4] =
        [StreamKind::Depth, StreamKind::Trade, StreamKind::AggTrade, StreamKind::BookTicker];

    pub(crate) fn slot(self) -> usize {
        match self {
            StreamKind::Depth => 0,
            StreamKind::Trade => 1,
            StreamKind::AggTrade => 2,
            StreamKind::BookTicker => 3,
        }
    }
}

/// One value per stream kind, indexed by [`StreamKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByStream<T>([T; 4]);

impl<T> std::ops::Index<StreamKind> for ByStream<T> {
    type Output = T;
    fn index(&self, k: StreamKind) -> &T {
        &self.0[k.slot()]
    }
}

impl<T> std::ops::IndexMut<StreamKind> for ByStream<T> {
    fn index_mut(&mut self, k: StreamKind) -> &mut T {
        &mut self.0[k.slot()]
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

/// [`parse_stream_name`] for USDⓈ-M futures, which also names its diff depth streams
/// `<sym>@depth@500ms` and `<sym>@depth@0ms` (the real-time stream hftbacktest's futures
/// collector records); `@depth` there is the 250 ms stream.
pub fn parse_futures_stream_name(name: &str) -> Option<StreamName<'_>> {
    if let Some(sym) = name.strip_suffix("@depth@0ms").or_else(|| name.strip_suffix("@depth@500ms")) {
        return (!sym.is_empty() && !sym.contains('@')).then_some(StreamName { symbol: sym, kind: StreamKind::Depth });
    }
    parse_stream_name(name)
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
    check_depth(f)?;
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
