//! The floor client: the least a websocket market-data client can do and still measure latency.
//! It reads the socket, decrypts with rustls, splits websocket frames with a few byte compares,
//! finds each text message's `"E":` digits and stamps it with one wall-clock read per socket read,
//! into an HdrHistogram. Nothing else: no JSON, no book, no check of the handshake's accept key.
//!
//! Busy mode spins on a non-blocking socket (as `tickfeed run` does by default); block mode sleeps
//! in `read(2)`. It answers pings (the bench's simulator sends none) and ends on a close frame,
//! end of stream, the stop signal or `max_events`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::ServerName;

use crate::client::{now_us, pin, tls_config, ClientConfig, ClientReport, Recorder, Stop};

/// Runs the floor client until it ends; `connected` gets a clone of the socket once the TCP
/// connection is up (what the stop signal shuts down).
pub fn run(cfg: &ClientConfig, stop: &Stop, connected: impl FnOnce(TcpStream)) -> Result<ClientReport, String> {
    pin(cfg.core)?;
    let tls = tls_config(&cfg.ca_der)?;
    let mut sock = TcpStream::connect(cfg.addr).map_err(|e| format!("connect {}: {e}", cfg.addr))?;
    let _ = sock.set_nodelay(true);
    connected(sock.try_clone().map_err(|e| format!("socket: {e}"))?);
    let name = ServerName::from(cfg.addr.ip());
    let mut conn = rustls::ClientConnection::new(Arc::clone(&tls), name).map_err(|e| format!("TLS: {e}"))?;

    // The upgrade, blocking: nothing is measured until it is done.
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        cfg.path, cfg.addr
    );
    let mut buf = Buffer::new();
    {
        let mut s = rustls::Stream::new(&mut conn, &mut sock);
        s.write_all(request.as_bytes()).map_err(|e| format!("upgrade request: {e}"))?;
        loop {
            let n = s.read(buf.spare()).map_err(|e| format!("upgrade answer: {e}"))?;
            if n == 0 {
                return Err("the server closed before answering the upgrade".into());
            }
            buf.filled(n);
            if let Some(end) = buf.data().windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf.data()[..end]).into_owned();
                if !head.starts_with("HTTP/1.1 101") {
                    return Err(format!("upgrade refused: {}", head.lines().next().unwrap_or("")));
                }
                buf.consume(end + 4);
                break;
            }
        }
    }
    if cfg.busy {
        sock.set_nonblocking(true).map_err(|e| format!("socket: {e}"))?;
    }

    let mut rec = Recorder::new();
    let mut report = ClientReport::default();
    let mut out = Vec::new();
    let max = cfg.max_events.unwrap_or(u64::MAX);
    // Frames already in hand from the upgrade read are stamped with the time they are parsed.
    let mut recv = now_us();
    let end = 'outer: loop {
        // Every whole frame in the buffer.
        loop {
            match next_frame(buf.data()) {
                Frame::Partial => break,
                Frame::Bad(why) => break 'outer format!("protocol error: {why}"),
                Frame::Whole { opcode, payload, len } => {
                    match opcode {
                        OP_TEXT => {
                            report.events += 1;
                            // bookTicker has no event time; a market message all the same.
                            if let Some(e) = crate::client::event_time(&buf.data()[payload..len]) {
                                rec.record(recv, e);
                            }
                        }
                        OP_CLOSE => break 'outer "closed".to_string(),
                        OP_PING => {
                            let p = buf.data()[payload..len].to_vec();
                            pong(&p, &mut out);
                            let _ = conn.writer().write_all(&out);
                            let _ = conn.write_tls(&mut sock);
                        }
                        _ => {}
                    }
                    buf.consume(len);
                    if report.events >= max {
                        break 'outer "max-events".to_string();
                    }
                }
            }
        }
        if stop.is_set() {
            break "stopped".to_string();
        }
        // One socket read.
        match conn.read_tls(&mut sock) {
            Ok(0) => break if stop.is_set() { "stopped" } else { "end of stream" }.to_string(),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::hint::spin_loop();
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break if stop.is_set() { "stopped".to_string() } else { format!("read: {e}") },
        }
        recv = now_us();
        if let Err(e) = conn.process_new_packets() {
            break format!("TLS: {e}");
        }
        loop {
            match conn.reader().read(buf.spare()) {
                Ok(0) => break,
                Ok(n) => buf.filled(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => break 'outer format!("TLS read: {e}"),
            }
        }
    };
    let (latency_us, negative) = rec.finish();
    report.latency_us = latency_us;
    report.negative_latency = negative;
    report.end = end;
    Ok(report)
}

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// One server frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    /// Not all of it yet.
    Partial,
    /// Opcode, where the payload starts and where the frame ends.
    Whole { opcode: u8, payload: usize, len: usize },
    /// Not a frame a server may send.
    Bad(&'static str),
}

/// RFC 6455 section 5.2, for unmasked server frames.
fn next_frame(b: &[u8]) -> Frame {
    if b.len() < 2 {
        return Frame::Partial;
    }
    if b[1] & 0x80 != 0 {
        return Frame::Bad("masked server frame");
    }
    let (len, head) = match b[1] & 0x7f {
        126 if b.len() < 4 => return Frame::Partial,
        126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
        127 if b.len() < 10 => return Frame::Partial,
        127 => (u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]), 10),
        n => (u64::from(n), 2),
    };
    if len > 64 << 20 {
        return Frame::Bad("frame over 64 MiB");
    }
    let total = head + len as usize;
    if b.len() < total {
        return Frame::Partial;
    }
    Frame::Whole { opcode: b[0] & 0x0f, payload: head, len: total }
}

/// A masked pong carrying `payload` (at most 125 bytes, as pings are), into `out`.
fn pong(payload: &[u8], out: &mut Vec<u8>) {
    let p = &payload[..payload.len().min(125)];
    let mask = [0x5a, 0xa5, 0x3c, 0xc3];
    out.clear();
    out.push(0x80 | 0xA);
    out.push(0x80 | p.len() as u8);
    out.extend_from_slice(&mask);
    out.extend(p.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// A read buffer: bytes `start..end` are unparsed; reads go into `end..`, and the live bytes move
/// to the front only when the free tail runs short, so a read never zero-fills.
struct Buffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buffer {
    fn new() -> Buffer {
        Buffer { bytes: vec![0; 1 << 20], start: 0, end: 0 }
    }

    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn spare(&mut self) -> &mut [u8] {
        if self.bytes.len() - self.end < 64 << 10 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.bytes.len() - self.end < 64 << 10 {
                let n = self.bytes.len() * 2;
                self.bytes.resize(n, 0);
            }
        }
        &mut self.bytes[self.end..]
    }

    fn filled(&mut self, n: usize) {
        self.end += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames() {
        assert_eq!(next_frame(&[0x81]), Frame::Partial);
        assert_eq!(next_frame(&[0x81, 3, b'a', b'b']), Frame::Partial);
        assert_eq!(next_frame(&[0x81, 2, b'a', b'b', 0x81]), Frame::Whole { opcode: 1, payload: 2, len: 4 });
        let mut long = vec![0x81, 126, 0x01, 0x00];
        long.extend(std::iter::repeat_n(b'x', 256));
        assert_eq!(next_frame(&long), Frame::Whole { opcode: 1, payload: 4, len: 260 });
        assert_eq!(next_frame(&long[..100]), Frame::Partial);
        assert_eq!(next_frame(&[0x81, 0x82, 0, 0, 0, 0]), Frame::Bad("masked server frame"));
        let huge = [0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(next_frame(&huge), Frame::Bad("frame over 64 MiB"));
    }

    #[test]
    fn pong_is_masked() {
        let mut out = Vec::new();
        pong(b"hi", &mut out);
        assert_eq!(out[0], 0x8A);
        assert_eq!(out[1], 0x82);
        assert_eq!(out[6] ^ out[2], b'h');
    }

    #[test]
    fn buffer_keeps_unparsed_bytes() {
        let mut b = Buffer::new();
        let n = b.spare().len();
        b.spare()[..3].copy_from_slice(b"abc");
        b.filled(3);
        b.consume(1);
        assert_eq!(b.data(), b"bc");
        b.filled(n - 3);
        let _ = b.spare();
        assert_eq!(&b.data()[..2], b"bc");
    }
}
