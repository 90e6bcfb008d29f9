//! The client side of the RFC 6455 opening handshake: write the HTTP/1.1 upgrade request, then
//! parse the server's response incrementally from the caller's read buffer.
//!
//! Sans-IO: the caller sends [`Handshake::write_request`]'s bytes, appends whatever it reads to
//! one buffer and calls [`Handshake::parse_response`] with all of it until it answers `Done`; the
//! bytes after the header are the first websocket frames and stay in the caller's buffer. This is
//! not an HTTP client: no redirects, no proxies, no `Sec-WebSocket-Extensions` or subprotocol
//! negotiation (a response selecting either is refused), and the response header must end with an
//! empty line within [`MAX_RESPONSE_HEADER`] bytes. It runs once per connection, so it may allocate.

use crate::ws::error::{Refusal, WsError};
use tungstenite::handshake::derive_accept_key;

/// Bound on the response header (status line to empty line inclusive); a server that sends more
/// is refused rather than buffered without limit.
pub const MAX_RESPONSE_HEADER: usize = 16 * 1024;

/// At most this many body bytes of a refusal are kept for the error message.
pub const MAX_BODY_PREFIX: usize = 512;

/// Status lines and header lines quoted in errors are cut to this many bytes.
const MAX_QUOTED_LINE: usize = 200;

/// Where to connect: the pieces of a `ws://` or `wss://` URL the request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// DNS name or IP literal (bracket IPv6 literals: `[::1]`), e.g. `stream.binance.com`.
    pub host: &'a str,
    /// TCP port, e.g. 9443.
    pub port: u16,
    /// `true` for `wss://` (default port 443), `false` for `ws://` (default port 80). Only decides
    /// whether `Host` carries the port: the codec never sees TLS.
    pub tls: bool,
    /// Request target starting with `/`, query included, already percent-encoded, e.g.
    /// `/stream?streams=btcusdt@depth@100ms/btcusdt@trade&timeUnit=MICROSECOND`.
    pub path: &'a str,
}

/// What [`Handshake::parse_response`] needs next.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// The response is incomplete: read more bytes, append them, call again with the whole buffer.
    NeedMore,
    /// The server accepted the upgrade. The first `consumed` bytes were the HTTP response; drop
    /// them and hand the rest of the buffer (the first frames, possibly none) to the
    /// [`Decoder`](crate::ws::Decoder).
    Done {
        /// Length of the HTTP response header, in bytes.
        consumed: usize,
    },
}

/// One opening handshake: the key we send and the response parser state.
///
/// Calling contract for [`parse_response`](Self::parse_response): pass the whole response received
/// so far, starting at its first byte, each call extending the previous buffer (appending only).
/// The parser remembers how far it has scanned, so feeding a response one byte per call costs
/// O(total), not O(total²). A buffer shorter than last time restarts the scan (correct, slower).
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Base64 of 16 random bytes, the `Sec-WebSocket-Key`.
    key: String,
    /// `derive_accept_key(key)`: the only `Sec-WebSocket-Accept` we accept.
    accept: String,
    /// Response bytes already searched for the end of the header.
    scanned: usize,
    /// Start of the header line the scan is in.
    line_start: usize,
    /// Length of the header (through its empty line) once found.
    header_end: Option<usize>,
}

impl Handshake {
    /// A handshake whose key is the base64 of `nonce`. RFC 6455 4.1 asks for 16 random bytes,
    /// fresh per connection; the caller supplies them so the codec reads no entropy source.
    pub fn new(nonce: [u8; 16]) -> Self {
        Self::with_key(base64_16(&nonce))
    }

    /// A handshake with a key from tungstenite's `generate_key` (OS-seeded randomness).
    pub fn random() -> Self {
        Self::with_key(tungstenite::handshake::client::generate_key())
    }

    fn with_key(key: String) -> Self {
        let accept = derive_accept_key(key.as_bytes());
        Handshake { key, accept, scanned: 0, line_start: 0, header_end: None }
    }

    /// The `Sec-WebSocket-Key` this handshake sends.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends the HTTP/1.1 upgrade request for `endpoint` to `out`.
    ///
    /// `Host` carries the port only when it is not the scheme's default, as browsers and RFC 7230
    /// 5.4 do. Refuses a host or path that would break the request line or inject a header.
    pub fn write_request(&self, endpoint: &Endpoint<'_>, out: &mut Vec<u8>) -> Result<(), WsError> {
        self.write_request_with_key(endpoint, None, out)
    }

    /// [`Handshake::write_request`] with an `X-MBX-APIKEY: <api_key>` header (Binance's SBE
    /// streams). Refuses a key with characters a header value cannot carry.
    pub fn write_request_with_key(
        &self,
        endpoint: &Endpoint<'_>,
        api_key: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), WsError> {
        let visible = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if !visible(endpoint.host) || endpoint.host.contains('/') {
            return Err(WsError::InvalidRequest { field: "host" });
        }
        if !visible(endpoint.path) || !endpoint.path.starts_with('/') {
            return Err(WsError::InvalidRequest { field: "path" });
        }
        let default_port = if endpoint.tls { 443 } else { 80 };
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(endpoint.path.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(endpoint.host.as_bytes());
        if endpoint.port != default_port {
            out.push(b':');
            out.extend_from_slice(endpoint.port.to_string().as_bytes());
        }
        out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
        if let Some(k) = api_key {
            if !visible(k) {
                return Err(WsError::InvalidRequest { field: "api key" });
            }
            out.extend_from_slice(b"X-MBX-APIKEY: ");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// Parses the response received so far (see the calling contract on [`Handshake`]).
    ///
    /// Returns `NeedMore` until the header is complete, then `Done` or an error. For a refusal
    /// (status other than 101) with a `Content-Length`, it keeps answering `NeedMore` until the
    /// first `min(Content-Length, MAX_BODY_PREFIX)` body bytes are in, so the error can quote the
    /// server's explanation; without one it reports at once with whatever body has arrived.
    pub fn parse_response(&mut self, buf: &[u8]) -> Result<HandshakeStatus, WsError> {
        self.parse(buf, false)
    }

    /// The error to report when the connection ends during the handshake, given everything
    /// received: the refusal with whatever body arrived if the header was complete and not a 101,
    /// otherwise [`WsError::HandshakeEof`].
    pub fn eof(&mut self, buf: &[u8]) -> WsError {
        match self.parse(buf, true) {
            Err(e) => e,
            Ok(_) => WsError::HandshakeEof,
        }
    }

    fn parse(&mut self, buf: &[u8], eof: bool) -> Result<HandshakeStatus, WsError> {
        let Some(header_end) = self.find_header_end(buf)? else {
            return Ok(HandshakeStatus::NeedMore);
        };
        let head = &buf[..header_end];
        // The header is ASCII lines ending in CRLF; a bare LF is tolerated (RFC 7230 3.5).
        let mut lines =
            head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).take_while(|l| !l.is_empty());
        let status_line = lines.next().unwrap_or(b"");
        let Some(status) = parse_status_line(status_line) else {
            return Err(WsError::HandshakeMalformed { line: printable(status_line, MAX_QUOTED_LINE) });
        };

        let (mut upgrade, mut connection) = (false, false);
        let (mut accept_seen, mut accept_ok) = (false, true);
        let mut unrequested = None;
        let mut content_length = None;
        let mut retry_after = None;
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(WsError::HandshakeMalformed { line: printable(line, MAX_QUOTED_LINE) });
            };
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade |= value.eq_ignore_ascii_case(b"websocket");
            } else if name.eq_ignore_ascii_case(b"connection") {
                connection |= value.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(b"upgrade"));
            } else if name.eq_ignore_ascii_case(b"sec-websocket-accept") {
                accept_seen = true;
                // Every copy must match: a second, different value means a confused middlebox.
                accept_ok &= value == self.accept.as_bytes();
            } else if name.eq_ignore_ascii_case(b"sec-websocket-extensions") {
                unrequested = Some("Sec-WebSocket-Extensions");
            } else if name.eq_ignore_ascii_case(b"sec-websocket-protocol") {
                unrequested = Some("Sec-WebSocket-Protocol");
            } else if name.eq_ignore_ascii_case(b"content-length") {
                content_length = parse_decimal(value);
            } else if name.eq_ignore_ascii_case(b"retry-after") {
                // Delta-seconds only; the HTTP-date form is left to the caller's default wait.
                retry_after = parse_decimal(value).map(|v| v as u64);
            }
        }

        if status != 101 {
            let available = buf.len() - header_end;
            let wanted = content_length.map_or(0, |n| n.min(MAX_BODY_PREFIX));
            if available < wanted && !eof {
                return Ok(HandshakeStatus::NeedMore);
            }
            let take = available.min(MAX_BODY_PREFIX).min(content_length.unwrap_or(usize::MAX));
            let body = &buf[header_end..header_end + take];
            return Err(WsError::HandshakeRefused(Box::new(Refusal {
                status,
                status_line: printable(status_line, MAX_QUOTED_LINE),
                body: printable(body, MAX_BODY_PREFIX),
                retry_after,
            })));
        }
        if eof {
            // A complete 101 is reported as Done by parse_response; at EOF it is just a dead socket.
            return Err(WsError::HandshakeEof);
        }
        if !upgrade {
            return Err(WsError::HandshakeNoUpgrade);
        }
        if !connection {
            return Err(WsError::HandshakeNoConnectionUpgrade);
        }
        if !accept_seen {
            return Err(WsError::HandshakeMissingAccept);
        }
        if !accept_ok {
            return Err(WsError::HandshakeWrongAccept);
        }
        if let Some(header) = unrequested {
            return Err(WsError::HandshakeUnrequested { header });
        }
        Ok(HandshakeStatus::Done { consumed: header_end })
    }

    /// Resumes the scan for the empty line that ends the header; `Some(len)` once found.
    fn find_header_end(&mut self, buf: &[u8]) -> Result<Option<usize>, WsError> {
        if let Some(end) = self.header_end {
            if end <= buf.len() {
                return Ok(Some(end));
            }
        }
        if buf.len() < self.scanned || self.header_end.is_some() {
            // The caller broke the append-only contract: start over rather than trust stale state.
            self.scanned = 0;
            self.line_start = 0;
            self.header_end = None;
        }
        let limit = buf.len().min(MAX_RESPONSE_HEADER);
        for i in self.scanned..limit {
            if buf[i] == b'\n' {
                let line = &buf[self.line_start..i];
                if line.is_empty() || line == b"\r" {
                    self.scanned = i + 1;
                    self.header_end = Some(i + 1);
                    return Ok(self.header_end);
                }
                self.line_start = i + 1;
            }
        }
        self.scanned = limit;
        if buf.len() >= MAX_RESPONSE_HEADER {
            return Err(WsError::HandshakeTooLarge { limit: MAX_RESPONSE_HEADER });
        }
        Ok(None)
    }
}

/// `HTTP/1.x SSS[ reason]` -> SSS.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    let rest = rest.strip_prefix(b" ")?;
    if !minor.is_ascii_digit() || rest.len() < 3 || (rest.len() > 3 && rest[3] != b' ') {
        return None;
    }
    let code = &rest[..3];
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(code.iter().fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0')))
}

/// A `Content-Length` value; `None` if not a plain decimal that fits.
fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0')))
}

fn trim(v: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ws(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// A log-safe copy of server-controlled bytes: at most `max` bytes, lossy UTF-8, control
/// characters (a CR/LF could forge a log line) replaced by spaces, trailing space trimmed.
fn printable(bytes: &[u8], max: usize) -> Box<str> {
    let cut = &bytes[..bytes.len().min(max)];
    let s: String = String::from_utf8_lossy(cut).chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    s.trim_end().into()
}

/// Standard base64 (RFC 4648, padded) of 16 bytes: the 24-character `Sec-WebSocket-Key`.
fn base64_16(bytes: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> shift & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 1.3's worked example: the nonce "the sample nonce".
    const RFC_NONCE: [u8; 16] = *b"the sample nonce";
    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    const BINANCE: Endpoint<'static> = Endpoint {
        host: "stream.binance.com",
        port: 9443,
        tls: true,
        path: "/stream?streams=btcusdt@depth@100ms/btcusdt@trade&timeUnit=MICROSECOND",
    };

    fn ok_response(accept: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn key_is_base64_of_nonce_and_accept_matches_rfc_example() {
        let hs = Handshake::new(RFC_NONCE);
        assert_eq!(hs.key(), RFC_KEY);
        assert_eq!(hs.accept, RFC_ACCEPT);
        // Every length of final group is exercised by 16 bytes (5 full groups + 1 byte).
        assert_eq!(base64_16(&[0xff; 16]), "/////////////////////w==");
        assert_eq!(base64_16(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
    }

    #[test]
    fn random_keys_are_24_chars_and_differ() {
        let (a, b) = (Handshake::random(), Handshake::random());
        assert_eq!(a.key().len(), 24);
        assert!(a.key().ends_with("=="));
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn request_shape() {
        let hs = Handshake::new(RFC_NONCE);
        let mut out = Vec::new();
        hs.write_request(&BINANCE, &mut out).unwrap();
        let expected = "GET /stream?streams=btcusdt@depth@100ms/btcusdt@trade&timeUnit=MICROSECOND HTTP/1.1\r\n\
                        Host: stream.binance.com:9443\r\n\
                        Upgrade: websocket\r\n\
                        Connection: Upgrade\r\n\
                        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                        Sec-WebSocket-Version: 13\r\n\r\n";
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
    }

    #[test]
    fn request_with_an_api_key_header() {
        let hs = Handshake::new(RFC_NONCE);
        let mut out = Vec::new();
        hs.write_request_with_key(&BINANCE, Some("abcKEY123"), &mut out).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(s.ends_with("Sec-WebSocket-Version: 13\r\nX-MBX-APIKEY: abcKEY123\r\n\r\n"), "{s}");
        for bad in ["", "a b", "a\r\nX-Evil: 1", "k\u{e9}"] {
            let mut out = Vec::new();
            assert_eq!(
                hs.write_request_with_key(&BINANCE, Some(bad), &mut out),
                Err(WsError::InvalidRequest { field: "api key" }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn request_host_port_only_when_not_default() {
        let hs = Handshake::new(RFC_NONCE);
        let host_line = |host, port, tls| {
            let mut out = Vec::new();
            hs.write_request(&Endpoint { host, port, tls, path: "/ws" }, &mut out).unwrap();
            let s = String::from_utf8(out).unwrap();
            s.lines().nth(1).unwrap().to_string()
        };
        assert_eq!(host_line("stream.binance.com", 443, true), "Host: stream.binance.com");
        assert_eq!(host_line("stream.binance.com", 9443, true), "Host: stream.binance.com:9443");
        assert_eq!(host_line("127.0.0.1", 80, false), "Host: 127.0.0.1");
        assert_eq!(host_line("127.0.0.1", 443, false), "Host: 127.0.0.1:443");
        assert_eq!(host_line("[::1]", 8080, false), "Host: [::1]:8080");
    }

    #[test]
    fn request_refuses_header_injection() {
        let hs = Handshake::new(RFC_NONCE);
        let mut out = Vec::new();
        for (host, path, field) in [
            ("a.com\r\nX: y", "/", "host"),
            ("a.com", "/a b", "path"),
            ("a.com", "/a\r\nX: y", "path"),
            ("a.com", "stream", "path"),
            ("", "/", "host"),
            ("a.com/x", "/", "host"),
            ("a.com", "/é", "path"),
        ] {
            let ep = Endpoint { host, port: 443, tls: true, path };
            assert_eq!(hs.write_request(&ep, &mut out), Err(WsError::InvalidRequest { field }));
        }
        assert!(out.is_empty(), "nothing is written on refusal");
    }

    #[test]
    fn good_response_keeps_leftover_frames() {
        let mut hs = Handshake::new(RFC_NONCE);
        let mut buf = ok_response(RFC_ACCEPT);
        let header_len = buf.len();
        buf.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        assert_eq!(hs.parse_response(&buf), Ok(HandshakeStatus::Done { consumed: header_len }));
        assert_eq!(&buf[header_len..], &[0x81, 0x02, b'h', b'i']);
    }

    #[test]
    fn header_names_and_values_are_case_insensitive_and_connection_is_a_token_list() {
        let mut hs = Handshake::new(RFC_NONCE);
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nserver: nginx\r\nUPGRADE:WebSocket\r\n\
             connection: keep-alive, Upgrade \r\nsec-websocket-accept:   {RFC_ACCEPT}\t\r\n\r\n"
        );
        let done = hs.parse_response(resp.as_bytes());
        assert_eq!(done, Ok(HandshakeStatus::Done { consumed: resp.len() }));
    }

    #[test]
    fn bare_lf_line_endings_are_tolerated() {
        let mut hs = Handshake::new(RFC_NONCE);
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\
             Sec-WebSocket-Accept: {RFC_ACCEPT}\n\n"
        );
        let done = hs.parse_response(resp.as_bytes());
        assert_eq!(done, Ok(HandshakeStatus::Done { consumed: resp.len() }));
    }

    #[test]
    fn refusal_carries_status_line_and_body() {
        let body = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
        let resp = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut hs = Handshake::new(RFC_NONCE);
        let err = hs.parse_response(resp.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"websocket handshake refused: HTTP/1.1 404 Not Found: {"code":-1121,"msg":"Invalid symbol."}"#
        );
        let WsError::HandshakeRefused(r) = err else { panic!("{err:?}") };
        assert_eq!(r.status, 404);
        assert!(err_is_fatal(&WsError::HandshakeRefused(r)));
    }

    fn err_is_fatal(e: &WsError) -> bool {
        e.is_fatal()
    }

    #[test]
    fn refusal_carries_retry_after_seconds() {
        let cases: &[(&str, Option<u64>)] = &[
            ("Retry-After: 120\r\n", Some(120)),
            ("retry-after:7\r\n", Some(7)),
            ("Retry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\n", None),
            ("", None),
        ];
        for (header, want) in cases {
            let resp = format!("HTTP/1.1 429 Too Many Requests\r\n{header}Content-Length: 0\r\n\r\n");
            let err = Handshake::new(RFC_NONCE).parse_response(resp.as_bytes()).unwrap_err();
            let WsError::HandshakeRefused(r) = err else { panic!("{err:?}") };
            assert_eq!(r.retry_after, *want, "{header}");
        }
    }

    #[test]
    fn refusal_waits_for_content_length_body_split_anywhere() {
        let body = r#"{"code":-1003,"msg":"Too many requests"}"#;
        let resp = format!("HTTP/1.1 429 Too Many Requests\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let resp = resp.as_bytes();
        let mut hs = Handshake::new(RFC_NONCE);
        for k in 0..resp.len() {
            assert_eq!(hs.parse_response(&resp[..k]), Ok(HandshakeStatus::NeedMore), "k={k}");
        }
        let err = hs.parse_response(resp).unwrap_err().to_string();
        assert_eq!(err, format!("websocket handshake refused: HTTP/1.1 429 Too Many Requests: {body}"));
    }

    #[test]
    fn refusal_without_length_reports_at_once_and_eof_reports_partial_body() {
        let mut hs = Handshake::new(RFC_NONCE);
        let resp = b"HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert_eq!(
            hs.parse_response(resp).unwrap_err().to_string(),
            "websocket handshake refused: HTTP/1.1 503 Service Unavailable"
        );
        // Content-Length promised more than arrived before the server hung up.
        let mut hs = Handshake::new(RFC_NONCE);
        let resp = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n\r\n{\"code\":";
        assert_eq!(hs.parse_response(resp), Ok(HandshakeStatus::NeedMore));
        assert_eq!(hs.eof(resp).to_string(), "websocket handshake refused: HTTP/1.1 400 Bad Request: {\"code\":");
        let mut hs = Handshake::new(RFC_NONCE);
        assert_eq!(hs.eof(b"HTTP/1.1 101 Swi"), WsError::HandshakeEof);
    }

    #[test]
    fn refusal_body_is_bounded_and_log_safe() {
        let body = "x".repeat(5000);
        let resp = format!("HTTP/1.1 500 Oops\r\nContent-Length: 5000\r\n\r\n{body}");
        let mut hs = Handshake::new(RFC_NONCE);
        let WsError::HandshakeRefused(r) = hs.parse_response(resp.as_bytes()).unwrap_err() else { panic!() };
        assert_eq!(r.body.len(), MAX_BODY_PREFIX);
        let mut hs = Handshake::new(RFC_NONCE);
        let resp = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\n\r\nline1\r\nFAKE\x00";
        let WsError::HandshakeRefused(r) = hs.parse_response(resp).unwrap_err() else { panic!() };
        assert_eq!(&*r.body, "line1  FAKE");
    }

    #[test]
    fn missing_or_wrong_accept_and_other_101_checks() {
        let cases: [(String, WsError); 6] = [
            (
                "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".into(),
                WsError::HandshakeMissingAccept,
            ),
            (
                String::from_utf8(ok_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo")).unwrap(),
                WsError::HandshakeWrongAccept,
            ),
            (
                format!("HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n"),
                WsError::HandshakeNoUpgrade,
            ),
            (
                format!("HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n"),
                WsError::HandshakeNoUpgrade,
            ),
            (
                format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n"),
                WsError::HandshakeNoConnectionUpgrade,
            ),
            (
                format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
                WsError::HandshakeUnrequested { header: "Sec-WebSocket-Extensions" },
            ),
        ];
        for (resp, want) in cases {
            let mut hs = Handshake::new(RFC_NONCE);
            assert_eq!(hs.parse_response(resp.as_bytes()), Err(want), "{resp}");
        }
        // The accept of another key (a response cached for someone else) is refused.
        let mut hs = Handshake::new([7; 16]);
        assert_eq!(hs.parse_response(&ok_response(RFC_ACCEPT)), Err(WsError::HandshakeWrongAccept));
    }

    #[test]
    fn malformed_status_or_header_line() {
        for resp in [
            &b"HTTP/2 101\r\n\r\n"[..],
            b"HTTP/1.1 1O1 Switching\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 101Switching\r\n\r\n",
            b"HTTP/1.1 101 OK\r\nno colon here\r\n\r\n",
        ] {
            let mut hs = Handshake::new(RFC_NONCE);
            let err = hs.parse_response(resp).unwrap_err();
            assert!(matches!(err, WsError::HandshakeMalformed { .. }), "{err:?}");
        }
    }

    #[test]
    fn response_split_at_every_byte() {
        let mut resp = ok_response(RFC_ACCEPT);
        let header_len = resp.len();
        resp.extend_from_slice(&[0x81, 0x00, 0x89, 0x00]);
        // Two reads: [0..k] then everything.
        for k in 0..=resp.len() {
            let mut hs = Handshake::new(RFC_NONCE);
            let first = hs.parse_response(&resp[..k]);
            if k < header_len {
                assert_eq!(first, Ok(HandshakeStatus::NeedMore), "k={k}");
            } else {
                assert_eq!(first, Ok(HandshakeStatus::Done { consumed: header_len }), "k={k}");
            }
            assert_eq!(hs.parse_response(&resp), Ok(HandshakeStatus::Done { consumed: header_len }));
        }
        // One byte per read.
        let mut hs = Handshake::new(RFC_NONCE);
        let mut done_at = None;
        for k in 1..=resp.len() {
            if let HandshakeStatus::Done { consumed } = hs.parse_response(&resp[..k]).unwrap() {
                done_at.get_or_insert((k, consumed));
            }
        }
        assert_eq!(done_at, Some((header_len, header_len)));
    }

    #[test]
    fn header_size_is_bounded() {
        let mut resp = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        while resp.len() < MAX_RESPONSE_HEADER + 100 {
            resp.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut hs = Handshake::new(RFC_NONCE);
        assert_eq!(hs.parse_response(&resp[..MAX_RESPONSE_HEADER - 1]), Ok(HandshakeStatus::NeedMore));
        assert_eq!(
            hs.parse_response(&resp[..MAX_RESPONSE_HEADER]),
            Err(WsError::HandshakeTooLarge { limit: MAX_RESPONSE_HEADER })
        );
        assert_eq!(hs.parse_response(&resp), Err(WsError::HandshakeTooLarge { limit: MAX_RESPONSE_HEADER }));
    }

    #[test]
    fn non_appending_caller_restarts_the_scan() {
        let mut hs = Handshake::new(RFC_NONCE);
        let resp = ok_response(RFC_ACCEPT);
        assert_eq!(hs.parse_response(&resp[..20]), Ok(HandshakeStatus::NeedMore));
        assert_eq!(hs.parse_response(&resp[..10]), Ok(HandshakeStatus::NeedMore));
        assert_eq!(hs.parse_response(&resp), Ok(HandshakeStatus::Done { consumed: resp.len() }));
    }
}
