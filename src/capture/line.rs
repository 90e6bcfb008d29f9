//! The line format of every recording, shared by the recorder and the reader:
//! `<receive time in ns> <frame exactly as received>`, and a REST snapshot preceded by its request
//! line `<ns> GET /api/v3/depth?symbol=..&limit=..`.
//!
//! A binary websocket frame (an SBE message, `--feed sbe`) is `<ns> ~<base64 of the frame>`:
//! standard alphabet, `=` padding, no line breaks. A JSON frame or body always starts with `{` (a
//! request line with `G`), so the `~` marker cannot be mistaken for either; a `~` line whose text
//! is not canonical base64 is skipped and counted (`bad_base64_lines` in replay).
//!
//! The receive time is written in ns by tickfeed and in the shared captures; recordings made by
//! other collectors carry µs (Binance's own public data since 2025) or ms. [`StampUnit`] tells
//! which from the magnitude of a stamp.
//!
//! Pure byte functions: no files, no clock.

/// One recorded line, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedLine<'a> {
    /// A frame or REST body and its receive time.
    Data {
        /// Local receive time, ns since the epoch.
        recv_ns: i64,
        /// The raw JSON.
        json: &'a [u8],
    },
    /// A binary websocket frame (SBE), as `~<base64>`: the base64 text, still encoded.
    Binary {
        /// Local receive time, ns since the epoch.
        recv_ns: i64,
        /// The base64 after the `~`.
        base64: &'a [u8],
    },
    /// A recorded REST request line (`GET /api/v3/depth?symbol=..&limit=..`).
    Request {
        /// When it was sent, ns since the epoch.
        recv_ns: i64,
        /// The request line.
        text: &'a [u8],
    },
    /// Blank.
    Empty,
    /// Not of the form `<ns> <payload>`.
    Malformed,
}

/// Splits a line (without its newline) into time and payload.
pub fn split_line(line: &[u8]) -> RecordedLine<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return RecordedLine::Empty;
    }
    // One pass over the time: at most 19 digits (u64 holds any 19), then the space.
    let mut acc: u64 = 0;
    let mut sp = 0;
    while let Some(&c) = line.get(sp) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if sp == 19 {
            return RecordedLine::Malformed;
        }
        acc = acc * 10 + u64::from(d);
        sp += 1;
    }
    if sp == 0 || line.get(sp) != Some(&b' ') {
        return RecordedLine::Malformed;
    }
    // 19 digits can pass i64::MAX (9,223,372,036,854,775,807): such a time is malformed, not an
    // overflow (cargo-fuzz found the panic with `9723161253937085768`).
    let Ok(recv_ns) = i64::try_from(acc) else { return RecordedLine::Malformed };
    let rest = &line[sp + 1..];
    if rest.first() == Some(&b'{') {
        RecordedLine::Data { recv_ns, json: rest }
    } else if let Some(b64) = rest.strip_prefix(BINARY_MARKER) {
        RecordedLine::Binary { recv_ns, base64: b64 }
    } else if rest.starts_with(b"GET ") {
        RecordedLine::Request { recv_ns, text: rest }
    } else {
        RecordedLine::Malformed
    }
}

/// What starts the payload of a binary frame's line (then its base64).
pub const BINARY_MARKER: &[u8] = b"~";

/// The symbol of a recorded depth request line, if it is one.
pub fn request_symbol(text: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(text).ok()?;
    // Spot's /api/v3/depth and USDⓈ-M futures' /fapi/v1/depth.
    let q = s.split_once("/api/v3/depth?").or_else(|| s.split_once("/fapi/v1/depth?"))?.1;
    let q = q.split_whitespace().next()?;
    q.split('&').find_map(|kv| kv.strip_prefix("symbol="))
}

/// Appends `<ns> <prefix><payload>\n`; a `\n` inside the payload becomes a space. Returns whether
/// one was replaced.
#[inline]
pub(crate) fn append_line(buf: &mut Vec<u8>, recv_ns: i64, prefix: &[u8], payload: &[u8]) -> bool {
    // Before 1970 is not a receive time; 0 keeps the line in the format rather than losing it.
    crate::book::fixed::push_u64(buf, recv_ns.max(0) as u64);
    buf.push(b' ');
    buf.extend_from_slice(prefix);
    let start = buf.len();
    buf.extend_from_slice(payload);
    let replaced = payload.contains(&b'\n');
    if replaced {
        for c in &mut buf[start..] {
            if *c == b'\n' {
                *c = b' ';
            }
        }
    }
    buf.push(b'\n');
    replaced
}

/// The unit of a recording's receive times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampUnit {
    /// Nanoseconds since the epoch (tickfeed, the shared captures).
    Nanos,
    /// Microseconds since the epoch.
    Micros,
    /// Milliseconds since the epoch.
    Millis,
}

impl StampUnit {
    /// The unit of a stamp, from its magnitude. A time since the epoch between 1973 and 5138 is
    /// 1e11..1e14 in ms, 1e14..1e17 in µs and at least 1e17 in ns; anything smaller is not a wall
    /// time at all (a test's or a hand-made file's counter) and is read as ns, as it is written.
    pub fn detect(stamp: i64) -> StampUnit {
        match stamp {
            100_000_000_000..=99_999_999_999_999 => StampUnit::Millis,
            100_000_000_000_000..=99_999_999_999_999_999 => StampUnit::Micros,
            _ => StampUnit::Nanos,
        }
    }

    /// `stamp` in ns (saturating).
    pub fn to_ns(self, stamp: i64) -> i64 {
        match self {
            StampUnit::Nanos => stamp,
            StampUnit::Micros => stamp.saturating_mul(1_000),
            StampUnit::Millis => stamp.saturating_mul(1_000_000),
        }
    }

    /// `ns`, `us` or `ms`.
    pub fn as_str(self) -> &'static str {
        match self {
            StampUnit::Nanos => "ns",
            StampUnit::Micros => "us",
            StampUnit::Millis => "ms",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_past_i64_is_a_malformed_line_not_an_overflow() {
        // Found by the line_and_decimal fuzz target (a panic in debug builds, a wrap in release).
        assert_eq!(split_line(b"9723161253937085768 {\"@}"), RecordedLine::Malformed);
        assert_eq!(split_line(b"9223372036854775808 {}"), RecordedLine::Malformed);
        assert_eq!(split_line(b"9223372036854775807 {}"), RecordedLine::Data { recv_ns: i64::MAX, json: b"{}" });
    }

    /// The split as first written (find the space, check the digits, fold them), kept as the
    /// reference for the one-pass split.
    fn split_reference(line: &[u8]) -> RecordedLine<'_> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return RecordedLine::Empty;
        }
        let Some(sp) = line.iter().position(|&c| c == b' ') else { return RecordedLine::Malformed };
        let (ts, rest) = (&line[..sp], &line[sp + 1..]);
        if ts.is_empty() || ts.len() > 19 || !ts.iter().all(u8::is_ascii_digit) {
            return RecordedLine::Malformed;
        }
        let Some(recv_ns) = ts.iter().try_fold(0i64, |a, &c| a.checked_mul(10)?.checked_add(i64::from(c - b'0')))
        else {
            return RecordedLine::Malformed;
        };
        if rest.first() == Some(&b'{') {
            RecordedLine::Data { recv_ns, json: rest }
        } else if rest.starts_with(b"GET ") {
            RecordedLine::Request { recv_ns, text: rest }
        } else {
            RecordedLine::Malformed
        }
    }

    proptest::proptest! {
        #[test]
        fn the_one_pass_split_agrees_with_the_reference(s in "[0-9]{0,21}[ a{G\\r]{0,2}(ET )?[{}x]{0,3}") {
            proptest::prop_assert_eq!(split_line(s.as_bytes()), split_reference(s.as_bytes()));
        }
    }

    #[test]
    fn stamp_units_from_their_magnitude() {
        // 2024-08-09 05:54:15.308 in each unit.
        assert_eq!(StampUnit::detect(1_723_182_855_308_000_000), StampUnit::Nanos);
        assert_eq!(StampUnit::detect(1_723_182_855_308_000), StampUnit::Micros);
        assert_eq!(StampUnit::detect(1_723_182_855_308), StampUnit::Millis);
        assert_eq!(StampUnit::Micros.to_ns(1_723_182_855_308_000), 1_723_182_855_308_000_000);
        assert_eq!(StampUnit::Millis.to_ns(1_723_182_855_308), 1_723_182_855_308_000_000);
        // Small counters (tests, hand-made files) stay as written; nothing overflows.
        assert_eq!(StampUnit::detect(5), StampUnit::Nanos);
        assert_eq!(StampUnit::detect(i64::MAX), StampUnit::Nanos);
        assert_eq!(StampUnit::Millis.to_ns(99_999_999_999_999), i64::MAX, "saturates");
    }
}
