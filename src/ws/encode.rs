//! Frame encoding for the client side of RFC 6455: masked text, ping, pong and close frames
//! appended to a caller-owned output buffer, and the automatic answers to a ping or a close.
//!
//! Every client frame is masked, as RFC 6455 5.3 requires, with a 4-byte key drawn from an
//! xorshift64 generator seeded once by the caller, so sending costs no syscall. That is enough for
//! what masking is for: it stops a hostile script in a browser from choosing the bytes a
//! middlebox sees, and tickfeed sends only its own SUBSCRIBE messages and control replies. This
//! module is not a decoder, does not fragment outgoing messages and never sends binary data.

use crate::ws::decode::{close_code_is_valid, Event};
use crate::ws::error::WsError;

const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Control frame payloads are at most 125 bytes (RFC 6455 5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Encoder state for one connection's client-to-server direction.
///
/// Every method appends one complete frame to `out` or, on error, leaves `out` untouched. After a
/// close frame has been written ([`close`](Self::close) or [`reply_to`](Self::reply_to) on a
/// [`Event::Close`]) the encoder refuses further frames with [`WsError::SendAfterClose`].
#[derive(Debug, Clone)]
pub struct Encoder {
    /// xorshift64 state; never zero (zero is its fixed point).
    rng: u64,
    /// A close frame was written.
    closed: bool,
}

impl Encoder {
    /// An encoder whose mask keys come from an xorshift64 generator seeded with `seed` (e.g. a
    /// few bytes from the OS at startup, or the clock). Any seed works; 0 is remapped because it
    /// is the generator's fixed point.
    pub fn new(seed: u64) -> Self {
        Encoder { rng: if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed }, closed: false }
    }

    /// Whether a close frame has been written; nothing more can be sent.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Reopens the encoder for a new connection, keeping the generator's state.
    pub fn reset(&mut self) {
        self.closed = false;
    }

    /// Appends a masked text frame (e.g. a `SUBSCRIBE` request).
    pub fn text(&mut self, payload: &str, out: &mut Vec<u8>) -> Result<(), WsError> {
        self.frame(OP_TEXT, &[], payload.as_bytes(), out)
    }

    /// Appends a masked ping; `payload` is at most 125 bytes.
    pub fn ping(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), WsError> {
        self.frame(OP_PING, &[], payload, out)
    }

    /// Appends a masked pong; to answer a ping, `payload` must be the ping's (at most 125 bytes).
    pub fn pong(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), WsError> {
        self.frame(OP_PONG, &[], payload, out)
    }

    /// Appends a masked close frame with `code` and `reason` (at most 123 bytes) and marks the
    /// encoder closed. Used to start a close, or, through [`reply_to`](Self::reply_to), to answer
    /// one.
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) -> Result<(), WsError> {
        if !close_code_is_valid(code) {
            return Err(WsError::CloseCodeNotSendable { code });
        }
        self.frame(OP_CLOSE, &code.to_be_bytes(), reason.as_bytes(), out)?;
        self.closed = true;
        Ok(())
    }

    /// Writes what RFC 6455 requires in answer to `event`, and returns whether it wrote a frame:
    /// for a [`Event::Ping`] a pong with the same payload; for a [`Event::Close`] a close echoing
    /// its code (an empty close for an empty one), marking the encoder closed. Nothing for other
    /// events, and nothing once our own close is out (a close received then is the answer to ours).
    pub fn reply_to(&mut self, event: &Event<'_>, out: &mut Vec<u8>) -> Result<bool, WsError> {
        if self.closed {
            return Ok(false);
        }
        match *event {
            Event::Ping(payload) => self.pong(payload, out).map(|()| true),
            Event::Close { code: Some(code), .. } => self.close(code, "", out).map(|()| true),
            Event::Close { code: None, .. } => {
                self.frame(OP_CLOSE, &[], &[], out)?;
                self.closed = true;
                Ok(true)
            }
            Event::Text(_) | Event::Binary(_) | Event::Pong(_) => Ok(false),
        }
    }

    /// Appends one final, masked frame whose payload is `prefix` then `payload` (the prefix is a
    /// close code, kept separate so a close needs no temporary buffer).
    fn frame(&mut self, opcode: u8, prefix: &[u8], payload: &[u8], out: &mut Vec<u8>) -> Result<(), WsError> {
        if self.closed {
            return Err(WsError::SendAfterClose);
        }
        let len = prefix.len() + payload.len();
        if opcode >= OP_CLOSE && len > MAX_CONTROL_PAYLOAD {
            return Err(WsError::ControlPayloadTooLong { len });
        }
        out.push(0x80 | opcode);
        // The mask bit (0x80) is set in the length byte of every client frame.
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if let Ok(len16) = u16::try_from(len) {
            out.push(0x80 | 126);
            out.extend_from_slice(&len16.to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let key = self.next_mask();
        out.extend_from_slice(&key);
        let start = out.len();
        out.extend_from_slice(prefix);
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], key);
        Ok(())
    }

    /// The next 4-byte mask key: the high half of an xorshift64 step (its better-mixed bits).
    fn next_mask(&mut self) -> [u8; 4] {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        ((x >> 32) as u32).to_le_bytes()
    }
}

/// XORs `data` with the repeating 4-byte `key`. Client payloads are small (SUBSCRIBE requests,
/// control frames), so the plain byte loop, which LLVM vectorises anyway, is fast enough.
fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    use tungstenite::protocol::frame::FrameHeader;

    /// A client frame parsed by tungstenite's header parser (an independent implementation) and
    /// unmasked here: (header, unmasked payload, frame length).
    fn parse_client_frame(bytes: &[u8]) -> (FrameHeader, Vec<u8>, usize) {
        let mut cur = Cursor::new(bytes);
        let (header, len) = FrameHeader::parse(&mut cur).unwrap().expect("complete header");
        let start = cur.position() as usize;
        let end = start + len as usize;
        let mask = header.mask.expect("client frames must be masked");
        let payload = bytes[start..end].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        (header, payload, end)
    }

    #[test]
    fn every_client_frame_is_masked_with_a_fresh_key() {
        let mut enc = Encoder::new(42);
        let mut out = Vec::new();
        enc.text("{\"method\":\"SUBSCRIBE\"}", &mut out).unwrap();
        let first_len = out.len();
        enc.text("{\"method\":\"SUBSCRIBE\"}", &mut out).unwrap();
        let (h1, p1, n1) = parse_client_frame(&out);
        let (h2, p2, _) = parse_client_frame(&out[first_len..]);
        assert_eq!(n1, first_len);
        assert_eq!(h1.opcode, OpCode::Data(Data::Text));
        assert!(h1.is_final && !h1.rsv1 && !h1.rsv2 && !h1.rsv3);
        assert_eq!(p1, b"{\"method\":\"SUBSCRIBE\"}");
        assert_eq!(p1, p2);
        assert_ne!(h1.mask, h2.mask, "keys differ frame to frame");
        assert_ne!(&out[6..n1], &p1[..], "payload is not sent in clear");
    }

    #[test]
    fn text_length_forms() {
        let mut enc = Encoder::new(1);
        for (len, header_len) in [(0, 6), (125, 6), (126, 8), (65535, 8), (65536, 14)] {
            let text = "s".repeat(len);
            let mut out = Vec::new();
            enc.text(&text, &mut out).unwrap();
            assert_eq!(out.len(), header_len + len);
            let (_, payload, n) = parse_client_frame(&out);
            assert_eq!((payload.as_slice(), n), (text.as_bytes(), out.len()));
        }
    }

    #[test]
    fn ping_is_answered_with_the_same_payload() {
        let mut enc = Encoder::new(7);
        let mut out = vec![0xAA]; // existing content is kept
        let ping = [0x13, 0x37, 0, 0xff, b'x'];
        assert_eq!(enc.reply_to(&Event::Ping(&ping), &mut out), Ok(true));
        assert_eq!(out[0], 0xAA);
        let (h, payload, n) = parse_client_frame(&out[1..]);
        assert_eq!(h.opcode, OpCode::Control(Control::Pong));
        assert_eq!(payload, ping);
        assert_eq!(n, out.len() - 1);
        // An empty ping and a full 125-byte ping.
        for ping in [&[][..], &[9u8; 125][..]] {
            let mut out = Vec::new();
            enc.reply_to(&Event::Ping(ping), &mut out).unwrap();
            assert_eq!(parse_client_frame(&out).1, ping);
        }
    }

    #[test]
    fn close_reply_echoes_the_code_and_closes() {
        let mut enc = Encoder::new(7);
        let mut out = Vec::new();
        let close = Event::Close { code: Some(1001), reason: "going away" };
        assert_eq!(enc.reply_to(&close, &mut out), Ok(true));
        let (h, payload, _) = parse_client_frame(&out);
        assert_eq!(h.opcode, OpCode::Control(Control::Close));
        assert_eq!(payload, 1001u16.to_be_bytes());
        assert!(enc.is_closed());
        // Nothing more goes out: not another close, not a pong, not data.
        let before = out.clone();
        assert_eq!(enc.reply_to(&close, &mut out), Ok(false));
        assert_eq!(enc.reply_to(&Event::Ping(b"x"), &mut out), Ok(false));
        assert_eq!(enc.text("late", &mut out), Err(WsError::SendAfterClose));
        assert_eq!(enc.pong(b"x", &mut out), Err(WsError::SendAfterClose));
        assert_eq!(out, before);
        // An empty close is answered with an empty close.
        let mut enc = Encoder::new(7);
        let mut out = Vec::new();
        assert_eq!(enc.reply_to(&Event::Close { code: None, reason: "" }, &mut out), Ok(true));
        let (_, payload, _) = parse_client_frame(&out);
        assert!(payload.is_empty());
        enc.reset();
        assert!(!enc.is_closed());
    }

    #[test]
    fn data_events_need_no_reply() {
        let mut enc = Encoder::new(7);
        let mut out = Vec::new();
        for e in [Event::Text("t"), Event::Binary(b"b"), Event::Pong(b"p")] {
            assert_eq!(enc.reply_to(&e, &mut out), Ok(false));
        }
        assert!(out.is_empty());
    }

    #[test]
    fn close_with_reason_and_limits() {
        let mut enc = Encoder::new(3);
        let mut out = Vec::new();
        assert_eq!(enc.close(1000, &"r".repeat(124), &mut out), Err(WsError::ControlPayloadTooLong { len: 126 }));
        assert_eq!(enc.close(1005, "", &mut out), Err(WsError::CloseCodeNotSendable { code: 1005 }));
        assert_eq!(enc.ping(&[0; 126], &mut out), Err(WsError::ControlPayloadTooLong { len: 126 }));
        assert!(out.is_empty() && !enc.is_closed());
        enc.close(1000, &"r".repeat(123), &mut out).unwrap();
        let (_, payload, _) = parse_client_frame(&out);
        assert_eq!(&payload[..2], &1000u16.to_be_bytes());
        assert_eq!(payload.len(), 125);
    }

    #[test]
    fn zero_seed_still_yields_changing_masks() {
        let mut enc = Encoder::new(0);
        let (a, b) = (enc.next_mask(), enc.next_mask());
        assert_ne!(a, b);
        assert_ne!(a, [0; 4]);
    }

    #[test]
    fn mask_round_trips() {
        let mut data: Vec<u8> = (0..=255).collect();
        apply_mask(&mut data, [1, 2, 3, 4]);
        assert_eq!(data[..4], [1, 3, 1, 7]);
        apply_mask(&mut data, [1, 2, 3, 4]);
        assert!(data.iter().enumerate().all(|(i, &b)| b == i as u8));
    }
}
