//! The line format of every recording, shared by the recorder and the reader:
//! `<receive time in ns> <frame exactly as received>`, and a REST snapshot preceded by its request
//! line `<ns> GET /api/v3/depth?symbol=..&limit=..`.
//!
//! Pure byte functions: no files, no clock.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedLine<'a> {
    /// A frame or REST body and its receive time.
    Data {
        /// Local receive time, ns since the epoch.
        recv_ns: i64,
        /// The raw JSON.
        json: &'a [u8],
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
    let Some(sp) = line.iter().position(|&c| c == b' ') else { return RecordedLine::Malformed };
    let (ts, rest) = (&line[..sp], &line[sp + 1..]);
    if ts.is_empty() || ts.len() > 19 || !ts.iter().all(u8::is_ascii_digit) {
        return RecordedLine::Malformed;
    }
    let recv_ns = ts.iter().fold(0i64, |a, &c| a * 10 + (c - b'0') as i64);
    if rest.first() == Some(&b'{') {
        RecordedLine::Data { recv_ns, json: rest }
    } else if rest.starts_with(b"GET ") {
        RecordedLine::Request { recv_ns, text: rest }
    } else {
        RecordedLine::Malformed
    }
}

/// The symbol of a recorded depth request line, if it is one.
pub fn request_symbol(text: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(text).ok()?;
    let q = s.split_once("/api/v3/depth?")?.1;
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
