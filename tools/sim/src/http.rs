//! Minimal HTTP/1.1 for the simulator: find and parse a request head, split a target into path
//! and decoded query pairs, and write a response with Content-Length.
//!
//! Only what a feed handler's REST client and websocket handshake send is supported: GET-style
//! requests without bodies. No chunked encoding, no pipelining guarantees beyond keeping unread
//! bytes, no HTTP/2. Errors are values; a malformed head never panics.

use std::io::{self, Read, Write};

/// Largest request head accepted. Most are a few hundred bytes, but a combined-stream URL at
/// Binance's 1024-stream limit is about 25 KB (`xxxxxxxxusdt@depth@100ms/` times 1024): it must
/// reach the stream-limit check rather than fail as a malformed head.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub method: String,
    /// The raw target: path plus optional `?query`.
    pub target: String,
    /// "HTTP/1.1" or "HTTP/1.0".
    pub version: String,
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// A header's value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Decoded query pairs, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        match self.target.split_once('?') {
            Some((_, q)) => parse_query(q),
            None => Vec::new(),
        }
    }

    /// Whether the client wants the connection kept open after the response.
    pub fn keep_alive(&self) -> bool {
        match self.header("connection") {
            Some(v) if v.eq_ignore_ascii_case("close") => false,
            Some(v) if v.to_ascii_lowercase().contains("keep-alive") => true,
            _ => self.version == "HTTP/1.1",
        }
    }
}

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer closed before sending anything: a normal end of a keep-alive connection.
    Closed,
    /// I/O failure or timeout (including a failed TLS handshake).
    Io,
    /// Not HTTP, or too large.
    Malformed(&'static str),
}

/// Reads until the end of a request head. Returns the head and any bytes read past it.
pub(crate) fn read_head<R: Read>(r: &mut R) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Malformed("connection closed inside the request head")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Io),
        };
        let search_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf[search_from..]) {
            let end = search_from + end;
            let rest = buf[end..].to_vec();
            let head = parse_head(&buf[..end])?;
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::Malformed("request head too large"));
        }
    }
}

/// Index just past "\r\n\r\n".
fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses a complete head (including the blank line).
pub(crate) fn parse_head(bytes: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(bytes).map_err(|_| HeadError::Malformed("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("bad request line"));
    };
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed("bad request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(HeadError::Malformed("bad header line"));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(RequestHead { method: method.to_string(), target: target.to_string(), version: version.to_string(), headers })
}

/// Splits and percent-decodes `a=1&b=x%2Fy` (also `+` as space).
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-decodes; malformed escapes are kept literally.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes a complete response. `extra` headers come after Content-Type/Length.
pub(crate) fn write_response<W: Write>(
    w: &mut W,
    status: u16,
    extra: &[(&str, String)],
    body: &str,
    keep_alive: bool,
) -> io::Result<()> {
    let mut head = String::with_capacity(256);
    head.push_str("HTTP/1.1 ");
    head.push_str(&status.to_string());
    head.push(' ');
    head.push_str(reason(status));
    head.push_str("\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: ");
    head.push_str(&body.len().to_string());
    head.push_str("\r\n");
    for (k, v) in extra {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str(if keep_alive { "Connection: keep-alive\r\n\r\n" } else { "Connection: close\r\n\r\n" });
    let mut all = head.into_bytes();
    all.extend_from_slice(body.as_bytes());
    w.write_all(&all)?;
    w.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        418 => "I'm a teapot",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_head_and_keeps_the_rest() {
        let raw = b"GET /api/v3/depth?symbol=BTCUSDT&limit=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nEXTRA";
        let (h, rest) = read_head(&mut &raw[..]).unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.path(), "/api/v3/depth");
        assert_eq!(h.query(), vec![("symbol".into(), "BTCUSDT".into()), ("limit".into(), "5".into())]);
        assert_eq!(h.header("HOST"), Some("x"));
        assert!(!h.keep_alive());
        assert_eq!(rest, b"EXTRA");
    }

    #[test]
    fn decodes_percent_and_rejects_garbage() {
        assert_eq!(percent_decode("btcusdt%40depth%2Fethusdt%40trade"), "btcusdt@depth/ethusdt@trade");
        assert_eq!(percent_decode("a%zzb%4"), "a%zzb%4");
        assert!(matches!(read_head(&mut &b""[..]), Err(HeadError::Closed)));
        assert!(matches!(read_head(&mut &b"hello\r\n\r\n"[..]), Err(HeadError::Malformed(_))));
        assert!(matches!(read_head(&mut &b"GET / HTTP/1.1\r\nbad\r\n\r\n"[..]), Err(HeadError::Malformed(_))));
        assert!(matches!(read_head(&mut &b"GET / HTTP/1.1\r\n"[..]), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn writes_content_length() {
        let mut out = Vec::new();
        write_response(&mut out, 400, &[("Retry-After", "2".into())], "{}", true).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(s.contains("Content-Length: 2\r\n"));
        assert!(s.contains("Retry-After: 2\r\n"));
        assert!(s.ends_with("\r\n\r\n{}"));
    }
}
