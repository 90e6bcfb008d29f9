//! Market events as the simulator publishes them: a stream id, a payload template whose time
//! fields are filled in at send time, and (for depth diffs) the structured diff the reference book
//! applies.
//!
//! Templates exist because `E`/`T` depend on the connection (`timeUnit=MICROSECOND` or not) and
//! on the moment of writing: E is stamped when the simulator writes the frame, so a handler's
//! `recv - E` measures transport plus handler, not simulator queueing. This module does not decide
//! what to send to whom; see `conn` for that.

use std::collections::HashMap;
use std::sync::Arc;

use crate::book::{Diff, Level};

/// What kind of stream an event belongs to; faults such as "drop the next diff" key on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// `@depth` or `@depth@100ms` diffs.
    Depth,
    /// `@trade`.
    Trade,
    /// `@aggTrade`.
    AggTrade,
    /// `@bookTicker`.
    BookTicker,
    /// Anything else a recording carries.
    Other,
}

impl StreamKind {
    /// Classifies a stream name by its suffix.
    pub fn of_name(name: &str) -> StreamKind {
        match name.split_once('@').map(|(_, rest)| rest) {
            Some("depth") | Some("depth@100ms") => StreamKind::Depth,
            Some("trade") => StreamKind::Trade,
            Some("aggTrade") => StreamKind::AggTrade,
            Some("bookTicker") => StreamKind::BookTicker,
            _ => StreamKind::Other,
        }
    }
}

/// The symbol part (as written) of a depth diff stream name such as `btcusdt@depth@100ms`;
/// `None` for any other stream. What "the depth stream of a symbol" means to per-symbol faults.
pub(crate) fn depth_symbol(name: &str) -> Option<&str> {
    let (sym, _) = name.split_once('@')?;
    (StreamKind::of_name(name) == StreamKind::Depth).then_some(sym)
}

/// A time field to write into a payload: at byte `at` of the template, the send time minus
/// `lag_us` microseconds (in ms or µs depending on the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeSlot {
    pub at: usize,
    pub lag_us: i64,
}

/// A raw payload (`data` of the combined form) with its time fields cut out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Payload {
    pub text: String,
    pub slots: Vec<TimeSlot>,
}

impl Payload {
    /// Starts an empty template.
    pub fn new() -> Payload {
        Payload::default()
    }

    /// Appends literal text.
    pub fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Appends one literal character.
    pub fn push(&mut self, c: char) {
        self.text.push(c);
    }

    /// Marks a time field here: send time minus `lag_us`.
    pub fn push_time(&mut self, lag_us: i64) {
        self.slots.push(TimeSlot { at: self.text.len(), lag_us });
    }

    /// Writes the payload with time fields as of `now_us` (µs since the Unix epoch), in
    /// microseconds if `micros`, else milliseconds.
    pub fn render_into(&self, out: &mut String, now_us: i64, micros: bool) {
        let mut from = 0;
        for slot in &self.slots {
            out.push_str(&self.text[from..slot.at]);
            let t = now_us - slot.lag_us;
            let v = if micros { t } else { t.div_euclid(1000) };
            out.push_str(&v.to_string());
            from = slot.at;
        }
        out.push_str(&self.text[from..]);
    }
}

/// Interned stream id: an index into [`StreamRegistry`].
pub(crate) type StreamId = u32;

/// Stream names interned to small ids so per-event subscription checks are integer lookups.
#[derive(Debug, Default)]
pub(crate) struct StreamRegistry {
    by_name: HashMap<Arc<str>, StreamId>,
}

impl StreamRegistry {
    /// The id of `name`, allocating one on first sight.
    pub fn intern(&mut self, name: &str) -> StreamId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.by_name.len() as StreamId;
        self.by_name.insert(Arc::from(name), id);
        id
    }
}

/// One published market message.
#[derive(Debug, Clone)]
pub(crate) struct MarketEvent {
    /// Index of the symbol in the market's symbol table.
    pub symbol: usize,
    /// Which stream it belongs to.
    pub stream: StreamId,
    /// Stream family, for faults.
    pub kind: StreamKind,
    /// The raw payload template.
    pub payload: Payload,
    /// Set on the symbol's primary depth stream: the reference book applies it on publication.
    pub reference: Option<Arc<Diff>>,
    /// What the payload says, structured, for the binary (SBE) encoder: `sbe::encode_event`
    /// turns it into the frame the `stream-sbe` endpoint sends.
    pub fields: Fields,
}

/// A market event's content as values rather than JSON text: what `sbe::encode_event` turns into
/// an SBE frame. Times are not here: like the JSON template's, they are stamped at send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fields {
    /// Nothing structured: aggTrades (the SBE streams have none) and replayed frames.
    Opaque,
    /// A depth diff (`@depth@100ms` or `@depth`).
    Depth(Arc<Diff>),
    /// One `@trade`; its trade time is `trade_lag_us` before the event time.
    Trade {
        /// `t`.
        id: u64,
        /// `p`, 1e-8 units.
        price: i64,
        /// `q`, 1e-8 units.
        qty: i64,
        /// `m`.
        buyer_is_maker: bool,
        /// `E - T`, microseconds.
        trade_lag_us: i64,
    },
    /// A `@bookTicker`.
    BookTicker {
        /// `u`.
        update_id: u64,
        /// `b`, `B`.
        bid: Level,
        /// `a`, `A`.
        ask: Level,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_times_in_either_unit() {
        let mut p = Payload::new();
        p.push_str("{\"E\":");
        p.push_time(0);
        p.push_str(",\"T\":");
        p.push_time(1_000);
        p.push_str("}");
        let mut ms = String::new();
        p.render_into(&mut ms, 1_723_161_255_208_123, false);
        assert_eq!(ms, r#"{"E":1723161255208,"T":1723161255207}"#);
        let mut us = String::new();
        p.render_into(&mut us, 1_723_161_255_208_123, true);
        assert_eq!(us, r#"{"E":1723161255208123,"T":1723161255207123}"#);
    }

    #[test]
    fn classifies_and_interns() {
        assert_eq!(StreamKind::of_name("btcusdt@depth@100ms"), StreamKind::Depth);
        assert_eq!(StreamKind::of_name("btcusdt@depth"), StreamKind::Depth);
        assert_eq!(StreamKind::of_name("btcusdt@depth5"), StreamKind::Other);
        assert_eq!(StreamKind::of_name("ethusdt@aggTrade"), StreamKind::AggTrade);
        assert_eq!(depth_symbol("btcusdt@depth@100ms"), Some("btcusdt"));
        assert_eq!(depth_symbol("btcusdt@depth"), Some("btcusdt"));
        assert_eq!(depth_symbol("btcusdt@depth5"), None);
        assert_eq!(depth_symbol("btcusdt@trade"), None);
        let mut r = StreamRegistry::default();
        let a = r.intern("a@trade");
        assert_eq!(r.intern("a@trade"), a);
        assert_ne!(r.intern("b@trade"), a);
    }
}
