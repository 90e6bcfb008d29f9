//! The `--output` line formats, appended to one reusable byte buffer.
//!
//! Lines are built with integer-to-text routines into a `Vec<u8>` that is reused for the whole run;
//! the caller hands the buffer to stdout in one write per batch (never a syscall per field or per
//! line). Nothing here allocates once the buffer has grown to its working size.
//!
//! Modes (the contract's `--output`):
//! - `tob`: an aligned human line per book change;
//! - `tob-json`: one JSON object per book change, prices as exact decimal strings;
//! - `ndjson`: the seed format, one line per market event:
//!   `{"ts_recv_ms":..,"latency_ms":..,"stream":"..","data":<raw payload>}`;
//! - `none`: nothing (for benchmarks).

use crate::book::fixed::{push_u64, push_units, push_units_trim};
use crate::book::top::TopMetrics;
use std::io::{self, Write};
use std::str::FromStr;

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Aligned human top-of-book lines.
    Tob,
    /// One JSON object per book change.
    TobJson,
    /// The seed's per-event NDJSON.
    Ndjson,
    /// No output.
    None,
}

/// An `--output` value that names no [`OutputMode`] (the value as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOutputMode(pub String);

impl std::fmt::Display for UnknownOutputMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown output mode '{}' (expected tob, tob-json, ndjson or none)", self.0)
    }
}

impl std::error::Error for UnknownOutputMode {}

impl FromStr for OutputMode {
    type Err = UnknownOutputMode;
    fn from_str(s: &str) -> Result<Self, UnknownOutputMode> {
        match s {
            "tob" => Ok(OutputMode::Tob),
            "tob-json" => Ok(OutputMode::TobJson),
            "ndjson" => Ok(OutputMode::Ndjson),
            "none" => Ok(OutputMode::None),
            _ => Err(UnknownOutputMode(s.to_owned())),
        }
    }
}

/// Appends `ns` as milliseconds with three decimals (microsecond resolution), e.g. `1723161254137.307`.
pub(super) fn push_ms3_from_ns(out: &mut Vec<u8>, ns: i64) {
    push_ms3_from_us(out, ns.div_euclid(1000));
}

/// Appends `us` microseconds as milliseconds with three decimals; negative values keep their sign.
pub(super) fn push_ms3_from_us(out: &mut Vec<u8>, us: i64) {
    if us < 0 {
        out.push(b'-');
    }
    let m = us.unsigned_abs();
    push_u64(out, m / 1000);
    out.push(b'.');
    let f = m % 1000;
    out.extend_from_slice(&[b'0' + (f / 100) as u8, b'0' + (f / 10 % 10) as u8, b'0' + (f % 10) as u8]);
}

/// One book state to print.
#[derive(Debug, Clone, Copy)]
pub struct BookLine<'a> {
    /// Uppercase symbol.
    pub symbol: &'a str,
    /// Decimals of the symbol's tick, for human prices.
    pub price_decimals: u32,
    /// The book's update id.
    pub update_id: u64,
    /// Local receive time of the frame that changed the book, ns since the epoch.
    pub recv_ns: i64,
    /// The figures.
    pub m: &'a TopMetrics,
}

/// The output writer: a mode and a growing-then-reused line buffer.
pub struct Output {
    mode: OutputMode,
    buf: Vec<u8>,
    field: Vec<u8>,
}

impl Output {
    /// A writer for `mode` with a buffer of `capacity` bytes reserved.
    pub fn new(mode: OutputMode, capacity: usize) -> Output {
        Output { mode, buf: Vec::with_capacity(capacity), field: Vec::with_capacity(64) }
    }

    /// The mode.
    pub fn mode(&self) -> OutputMode {
        self.mode
    }

    /// Bytes waiting to be written.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The buffered bytes (for tests and for callers that write them elsewhere).
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// Writes everything buffered in one call and empties the buffer (keeping its capacity).
    pub fn flush_to<W: Write>(&mut self, w: &mut W) -> io::Result<()> {
        if !self.buf.is_empty() {
            let r = w.write_all(&self.buf);
            self.buf.clear();
            r?;
        }
        Ok(())
    }

    /// Drops buffered bytes (when stdout is gone).
    pub fn discard(&mut self) {
        self.buf.clear();
    }

    /// Appends `text` as its own line in `tob` mode (a periodic summary for people); nothing in
    /// the machine-readable modes.
    pub fn summary_line(&mut self, text: &str) {
        if self.mode == OutputMode::Tob {
            self.buf.extend_from_slice(text.as_bytes());
            self.buf.push(b'\n');
        }
    }

    /// Appends a line for a book change (modes `tob` and `tob-json`; nothing otherwise).
    pub fn book(&mut self, l: &BookLine<'_>) {
        match self.mode {
            OutputMode::Tob => self.tob(l),
            OutputMode::TobJson => self.tob_json(l),
            OutputMode::Ndjson | OutputMode::None => {}
        }
    }

    /// Appends a line for a market event (mode `ndjson` only). `latency_us` is `None` for events
    /// without an exchange time (bookTicker).
    pub fn event(&mut self, recv_ns: i64, latency_us: Option<i64>, stream: &str, data: &[u8]) {
        if self.mode != OutputMode::Ndjson {
            return;
        }
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"ts_recv_ms\":");
        push_ms3_from_ns(b, recv_ns);
        b.extend_from_slice(b",\"latency_ms\":");
        match latency_us {
            Some(us) => push_ms3_from_us(b, us),
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"stream\":\"");
        // Stream names come from the exchange; they are plain ASCII identifiers, but escape
        // anything that would break the JSON rather than trust that.
        for &c in stream.as_bytes() {
            if c == b'"' || c == b'\\' || c < 0x20 {
                b.push(b'?');
            } else {
                b.push(c);
            }
        }
        b.extend_from_slice(b"\",\"data\":");
        let at = b.len();
        b.extend_from_slice(data);
        // One event, one line: a server's JSON may carry raw line breaks as whitespace between
        // tokens (never inside a string, where JSON forbids them), so they become spaces, which
        // leaves the JSON the same.
        for c in &mut b[at..] {
            if *c == b'\n' || *c == b'\r' {
                *c = b' ';
            }
        }
        b.extend_from_slice(b"}\n");
    }

    fn pad_field(&mut self, width: usize) {
        for _ in self.field.len()..width {
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(&self.field);
        self.field.clear();
    }

    fn tob(&mut self, l: &BookLine<'_>) {
        let m = l.m;
        let d = l.price_decimals;
        self.buf.extend_from_slice(l.symbol.as_bytes());
        for _ in l.symbol.len()..10 {
            self.buf.push(b' ');
        }
        push_units(&mut self.field, m.bid, d);
        self.pad_field(12);
        self.buf.extend_from_slice(b" x ");
        push_units(&mut self.field, m.bid_qty, 8);
        self.pad_field(16);
        self.buf.extend_from_slice(b"  |  ");
        push_units(&mut self.field, m.ask, d);
        self.pad_field(12);
        self.buf.extend_from_slice(b" x ");
        push_units(&mut self.field, m.ask_qty, 8);
        self.pad_field(16);
        self.buf.extend_from_slice(b"   spread ");
        push_units(&mut self.field, m.spread, d);
        self.pad_field(8);
        self.buf.extend_from_slice(b"  mid ");
        push_units(&mut self.field, m.mid, d + 1);
        self.pad_field(13);
        self.buf.extend_from_slice(b"  micro ");
        push_units(&mut self.field, m.microprice, (d + 2).min(8));
        self.pad_field(14);
        self.buf.extend_from_slice(b"  imb ");
        if m.imbalance >= 0 {
            self.field.push(b'+');
        }
        push_units(&mut self.field, m.imbalance, 4);
        self.pad_field(7);
        self.buf.extend_from_slice(b"  u ");
        push_u64(&mut self.buf, l.update_id);
        self.buf.push(b'\n');
    }

    fn tob_json(&mut self, l: &BookLine<'_>) {
        let m = l.m;
        let d = l.price_decimals;
        let b = &mut self.buf;
        b.extend_from_slice(b"{\"symbol\":\"");
        b.extend_from_slice(l.symbol.as_bytes());
        b.extend_from_slice(b"\",\"ts_recv_ms\":");
        push_ms3_from_ns(b, l.recv_ns);
        b.extend_from_slice(b",\"lastUpdateId\":");
        push_u64(b, l.update_id);
        let fields: [(&[u8], i64, u32); 8] = [
            (b",\"bid\":\"", m.bid, d),
            (b"\",\"bid_qty\":\"", m.bid_qty, 8),
            (b"\",\"ask\":\"", m.ask, d),
            (b"\",\"ask_qty\":\"", m.ask_qty, 8),
            (b"\",\"spread\":\"", m.spread, d),
            (b"\",\"mid\":\"", m.mid, d),
            (b"\",\"microprice\":\"", m.microprice, d),
            (b"\",\"imbalance\":\"", m.imbalance, 1),
        ];
        for (key, v, min_dec) in fields {
            b.extend_from_slice(key);
            push_units_trim(b, v, min_dec);
        }
        b.extend_from_slice(b"\"}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::top::compute;
    use crate::book::top::Top;

    fn metrics() -> TopMetrics {
        compute(Top { bid: Some((6_183_763_000_000, 378_826_000)), ask: Some((6_183_764_000_000, 160_520_000)) })
            .unwrap()
    }

    #[test]
    fn tob_json_line_is_valid_and_exact() {
        let m = metrics();
        let mut o = Output::new(OutputMode::TobJson, 1024);
        o.book(&BookLine {
            symbol: "BTCUSDT",
            price_decimals: 2,
            update_id: 50093239224,
            recv_ns: 1_723_161_254_137_307_667,
            m: &m,
        });
        let line = std::str::from_utf8(o.buffer()).unwrap();
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["symbol"], "BTCUSDT");
        assert_eq!(v["bid"], "61837.63");
        assert_eq!(v["bid_qty"], "3.78826000");
        assert_eq!(v["ask"], "61837.64");
        assert_eq!(v["spread"], "0.01");
        assert_eq!(v["mid"], "61837.635");
        assert_eq!(v["microprice"], "61837.6370238");
        assert_eq!(v["imbalance"], "0.40476058");
        assert_eq!(v["lastUpdateId"], 50093239224u64);
        assert_eq!(v["ts_recv_ms"].as_f64().unwrap(), 1723161254137.307);
    }

    #[test]
    fn tob_line_is_aligned() {
        let m = metrics();
        let mut o = Output::new(OutputMode::Tob, 1024);
        let l = BookLine { symbol: "BTCUSDT", price_decimals: 2, update_id: 1, recv_ns: 0, m: &m };
        o.book(&l);
        o.book(&BookLine { symbol: "ETHUSDT", update_id: 22, ..l });
        let text = std::str::from_utf8(o.buffer()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find('|'), lines[1].find('|'));
        assert!(lines[0].contains("61837.63 x       3.78826000"), "{}", lines[0]);
        assert!(lines[0].contains("spread     0.01"), "{}", lines[0]);
        assert!(lines[0].contains("imb +0.4047"), "{}", lines[0]);
    }

    #[test]
    fn ndjson_keeps_one_event_per_line_when_the_json_has_raw_line_breaks() {
        let mut o = Output::new(OutputMode::Ndjson, 1024);
        o.event(0, None, "btcusdt@trade", b"{\n  \"e\": \"trade\",\r\n  \"t\": 5\n}");
        o.event(0, None, "btcusdt@trade", b"{\"t\":6}");
        let text = std::str::from_utf8(o.buffer()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!((v["data"]["e"].as_str(), v["data"]["t"].as_u64()), (Some("trade"), Some(5)));
    }

    #[test]
    fn ndjson_line_embeds_raw_payload() {
        let mut o = Output::new(OutputMode::Ndjson, 1024);
        let data = br#"{"e":"trade","E":1723161255343,"s":"BTCUSDT"}"#;
        o.event(1_723_161_254_087_896_568, Some(-1_255_447), "btcusdt@trade", data);
        o.event(1_723_161_254_087_896_568, None, "btcusdt@bookTicker", b"{}");
        let text = std::str::from_utf8(o.buffer()).unwrap();
        let mut it = text.lines();
        let v: serde_json::Value = serde_json::from_str(it.next().unwrap()).unwrap();
        assert_eq!(v["latency_ms"].as_f64().unwrap(), -1255.447);
        assert_eq!(v["stream"], "btcusdt@trade");
        assert_eq!(v["data"]["E"], 1723161255343u64);
        let v: serde_json::Value = serde_json::from_str(it.next().unwrap()).unwrap();
        assert!(v["latency_ms"].is_null());
        // Other modes ignore events, and ndjson ignores book lines.
        let mut n = Output::new(OutputMode::Tob, 16);
        n.event(0, None, "x", b"{}");
        assert_eq!(n.pending(), 0);
    }

    #[test]
    fn ms_formatting() {
        let mut v = Vec::new();
        push_ms3_from_us(&mut v, -1_500);
        assert_eq!(v, b"-1.500");
        v.clear();
        push_ms3_from_us(&mut v, 7);
        assert_eq!(v, b"0.007");
    }
}
