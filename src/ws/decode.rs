//! Frame decoding for the client side of RFC 6455: server frames in, borrowed [`Event`]s out.
//!
//! Sans-IO in the databento/dbn shape: the caller owns the read buffer and passes the unconsumed
//! bytes to [`Decoder::decode`], which answers with an event borrowed from those bytes (or from its
//! reassembly buffer, for a fragmented message) and how many bytes it consumed; no event means
//! "read more". An unfragmented frame, the hot path, is delivered as a slice of the caller's
//! buffer: no copy, no allocation. Fragments are copied once into a buffer reserved at
//! construction. Every protocol violation is an error value; no input can make it panic.
//!
//! It is not a writer (see [`Encoder`](crate::ws::Encoder)), does not answer pings by itself, and
//! knows nothing of extensions: `permessage-deflate` is never negotiated, so RSV bits are errors.

use crate::ws::error::WsError;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Longest header of a server frame: 2 bytes, 8 bytes of 64-bit length, no mask (servers never
/// mask). Size the read buffer for `max_frame + MAX_SERVER_HEADER` bytes.
pub const MAX_SERVER_HEADER: usize = 10;

/// Size limits, checked against each frame header before any payload is buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of one frame, in bytes. The caller's read buffer must hold
    /// `max_frame + MAX_SERVER_HEADER` bytes or an allowed frame can never complete.
    pub max_frame: usize,
    /// Largest message, in bytes (a single frame, or the sum of a fragmented message's frames).
    /// The reassembly buffer reserves this much once, at construction.
    pub max_message: usize,
}

impl Default for Limits {
    /// 1 MiB for both: Binance combined-stream messages are a few KiB at most (a full 5000-level
    /// depth snapshot comes over REST, not the websocket), so this is headroom, not a tuned figure.
    fn default() -> Self {
        Limits { max_frame: 1 << 20, max_message: 1 << 20 }
    }
}

/// One thing the server said. Payloads borrow the caller's buffer, or the decoder's reassembly
/// buffer for a message that arrived fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete text message, UTF-8 validated (the whole message, when fragmented).
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping: answer it with a pong carrying the same payload
    /// ([`Encoder::reply_to`](crate::ws::Encoder::reply_to) does). At most 125 bytes.
    Ping(&'a [u8]),
    /// A pong (unsolicited, or the answer to our ping). At most 125 bytes.
    Pong(&'a [u8]),
    /// The server is closing. `code` is `None` when the close frame had no payload (RFC 6455 7.1.5
    /// reports that as 1005); `reason` is UTF-8 validated, often empty. No event follows.
    Close {
        /// The status code, already checked to be one a peer may send.
        code: Option<u16>,
        /// The close reason.
        reason: &'a str,
    },
}

/// The answer to one [`Decoder::decode`] call.
#[must_use = "the caller must drop `consumed` bytes from its buffer"]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Bytes at the front of the buffer the decoder is done with. Drop them after handling
    /// `event`, whether or not there is one (fragments are absorbed without an event).
    pub consumed: usize,
    /// The next event, or `None` when the bytes after `consumed` are an incomplete frame (or
    /// there are none): read more, append, call again.
    pub event: Option<Event<'a>>,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: u8,
    header_len: usize,
    payload_len: usize,
}

/// The kind of the fragmented message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Decoder state for one connection's server-to-client direction.
///
/// # Calling contract
///
/// 1. Keep the received, not yet consumed bytes contiguous in a buffer you own, and pass all of
///    them, oldest first, to [`decode`](Self::decode) (for a buffer with a read cursor:
///    `&buf[start..end]`).
/// 2. Handle the event (it borrows the buffer and the decoder), then drop `consumed` bytes from
///    the front: always, also when `event` is `None`.
/// 3. Repeat while `event` is `Some`. `None` means the rest is an incomplete frame: read more,
///    append and call again. Partial frames are never consumed, so the buffer must be able to hold
///    `max_frame + MAX_SERVER_HEADER` bytes ([`buffer_len`](Self::buffer_len)).
/// 4. Any `Err` is fatal: close the socket, reconnect, [`reset`](Self::reset) the decoder (which
///    keeps its reserved memory). After a `Close` event only an empty buffer is accepted.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Fragments of the open message. Capacity `max_message`, reserved in `new` and never grown,
    /// since every append is first checked against `max_message`.
    reassembly: Vec<u8>,
    /// The kind of the fragmented message in `reassembly`, if one is open.
    open: Option<Kind>,
    /// The last event borrowed `reassembly`: clear it at the start of the next call (it could
    /// not be cleared before the caller was done with the event).
    release: bool,
    /// A close frame was delivered.
    closed: bool,
}

impl Decoder {
    /// A decoder with `limits`, reserving `limits.max_message` bytes for reassembly now so that
    /// no frame ever allocates.
    ///
    /// # Panics
    ///
    /// Like `Vec::with_capacity`, if `max_message` exceeds `isize::MAX` or the allocation fails:
    /// a configuration error, not an input one.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            reassembly: Vec::with_capacity(limits.max_message),
            open: None,
            release: false,
            closed: false,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The read buffer size that guarantees progress: the largest allowed frame with its header.
    pub fn buffer_len(&self) -> usize {
        self.limits.max_frame.saturating_add(MAX_SERVER_HEADER)
    }

    /// Whether a fragmented message is partly received.
    pub fn in_message(&self) -> bool {
        self.open.is_some()
    }

    /// Whether the server's close frame has been delivered.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Forgets the connection (open message, closed flag) for a new one, keeping the memory.
    pub fn reset(&mut self) {
        self.reassembly.clear();
        self.open = None;
        self.release = false;
        self.closed = false;
    }

    /// Decodes the next event from `buf`, the caller's unconsumed bytes; see the calling contract
    /// on [`Decoder`]. Fragments of a message are absorbed (and counted in `consumed`) until its
    /// final frame; control frames between them are returned at once.
    pub fn decode<'a>(&'a mut self, buf: &'a [u8]) -> Result<Decoded<'a>, WsError> {
        if self.release {
            self.reassembly.clear();
            self.release = false;
        }
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            if self.closed {
                if rest.is_empty() {
                    return Ok(Decoded { consumed: pos, event: None });
                }
                return Err(WsError::FrameAfterClose);
            }
            let Some(h) = self.parse_header(rest)? else {
                return Ok(Decoded { consumed: pos, event: None });
            };
            // Saturating: with max_frame near usize::MAX such a frame can never fit, so it waits.
            let frame_len = h.header_len.saturating_add(h.payload_len);
            if rest.len() < frame_len {
                return Ok(Decoded { consumed: pos, event: None });
            }
            let payload = &rest[h.header_len..frame_len];
            pos += frame_len;
            let event = match h.opcode {
                OP_TEXT | OP_BINARY if h.fin => {
                    // The hot path: one frame, one message, borrowed straight from `buf`.
                    if h.opcode == OP_TEXT {
                        Event::Text(std::str::from_utf8(payload).map_err(|_| WsError::InvalidUtf8)?)
                    } else {
                        Event::Binary(payload)
                    }
                }
                OP_TEXT | OP_BINARY => {
                    // parse_header checked no message is open and the size fits the reservation.
                    self.reassembly.extend_from_slice(payload);
                    self.open = Some(if h.opcode == OP_TEXT { Kind::Text } else { Kind::Binary });
                    continue;
                }
                OP_CONTINUATION => {
                    self.reassembly.extend_from_slice(payload);
                    if !h.fin {
                        continue;
                    }
                    let kind = self.open.take();
                    self.release = true;
                    let message = &self.reassembly[..];
                    if kind == Some(Kind::Text) {
                        // Validated whole: a code point may straddle two fragments.
                        Event::Text(std::str::from_utf8(message).map_err(|_| WsError::InvalidUtf8)?)
                    } else {
                        Event::Binary(message)
                    }
                }
                OP_PING => Event::Ping(payload),
                OP_PONG => Event::Pong(payload),
                _ => {
                    // parse_header admits no other opcode than OP_CLOSE here.
                    let event = parse_close(payload)?;
                    self.closed = true;
                    event
                }
            };
            return Ok(Decoded { consumed: pos, event: Some(event) });
        }
    }

    /// Parses and checks the frame header at the start of `b`; `None` if incomplete. Each check
    /// fires as soon as the bytes it needs are present, so a bad frame is refused from its header
    /// alone and an oversized one is never buffered.
    fn parse_header(&self, b: &[u8]) -> Result<Option<Header>, WsError> {
        let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        if rsv != 0 {
            return Err(WsError::ReservedBits { bits: rsv });
        }
        let opcode = b0 & 0x0F;
        if b1 & 0x80 != 0 {
            return Err(WsError::MaskedFrame);
        }
        let len7 = b1 & 0x7F;
        match opcode {
            OP_CLOSE | OP_PING | OP_PONG => {
                if !fin {
                    return Err(WsError::ControlFragmented { opcode });
                }
                if len7 > 125 {
                    return Err(WsError::ControlTooLong { opcode });
                }
            }
            OP_CONTINUATION if self.open.is_none() => return Err(WsError::UnexpectedContinuation),
            OP_TEXT | OP_BINARY if self.open.is_some() => return Err(WsError::InterleavedDataFrame { opcode }),
            OP_CONTINUATION | OP_TEXT | OP_BINARY => {}
            _ => return Err(WsError::UnknownOpcode { opcode }),
        }
        let (header_len, len) = match len7 {
            126 => match b.get(2..4) {
                Some(&[hi, lo]) => (4, u64::from(u16::from_be_bytes([hi, lo]))),
                _ => return Ok(None),
            },
            127 => match b.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                Some(be) => {
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(WsError::LengthTopBit);
                    }
                    (10, len)
                }
                None => return Ok(None),
            },
            n => (2, u64::from(n)),
        };
        let max_frame = self.limits.max_frame;
        let payload_len = match usize::try_from(len) {
            Ok(n) if n <= max_frame => n,
            _ => return Err(WsError::FrameTooLarge { len, max: max_frame }),
        };
        if opcode < OP_CLOSE {
            // A data frame: the message it belongs to must fit, fragments so far included.
            let message = self.reassembly.len() as u64 + len;
            let max_message = self.limits.max_message;
            if message > max_message as u64 {
                return Err(WsError::MessageTooLarge { len: message, max: max_message });
            }
        }
        Ok(Some(Header { fin, opcode, header_len, payload_len }))
    }
}

/// The payload of a close frame: nothing, or a valid code and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Event<'_>, WsError> {
    match payload {
        [] => Ok(Event::Close { code: None, reason: "" }),
        [_] => Err(WsError::CloseLengthOne),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_is_valid(code) {
                return Err(WsError::InvalidCloseCode { code });
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::CloseReasonNotUtf8)?;
            Ok(Event::Close { code: Some(code), reason })
        }
    }
}

/// Whether a peer may put `code` on the wire (RFC 6455 7.4 and the IANA registry): the defined
/// codes 1000-1003 and 1007-1014, and the application ranges 3000-4999. 1004 is reserved, 1005,
/// 1006 and 1015 are only for reporting locally, 1016-2999 are reserved for the protocol.
pub(crate) fn close_code_is_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
    use tungstenite::protocol::frame::{CloseFrame, Frame};

    const LIMITS: Limits = Limits { max_frame: 128 * 1024, max_message: 128 * 1024 };

    /// A server frame built by hand: unmasked, minimal length encoding.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xFFFF => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    /// A server frame serialised by tungstenite: an independent implementation of the wire format.
    fn tframe(f: Frame) -> Vec<u8> {
        let mut out = Vec::new();
        f.format(&mut out).unwrap();
        out
    }

    fn ttext(payload: &str, fin: bool) -> Vec<u8> {
        tframe(Frame::message(payload.as_bytes().to_vec(), OpCode::Data(Data::Text), fin))
    }

    fn tcont(payload: &[u8], fin: bool) -> Vec<u8> {
        tframe(Frame::message(payload.to_vec(), OpCode::Data(Data::Continue), fin))
    }

    /// An owned copy of an event, to compare event sequences across decoders.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String),
    }

    fn owned(e: Event<'_>) -> Owned {
        match e {
            Event::Text(t) => Owned::Text(t.to_owned()),
            Event::Binary(b) => Owned::Binary(b.to_vec()),
            Event::Ping(p) => Owned::Ping(p.to_vec()),
            Event::Pong(p) => Owned::Pong(p.to_vec()),
            Event::Close { code, reason } => Owned::Close(code, reason.to_owned()),
        }
    }

    /// Models the event loop: append each read to an owned buffer, decode until the decoder wants
    /// more, drop what it consumed. Returns the events, or the first error.
    fn run_reads<'s>(limits: Limits, reads: impl IntoIterator<Item = &'s [u8]>) -> Result<Vec<Owned>, WsError> {
        let mut dec = Decoder::new(limits);
        let mut buf: Vec<u8> = Vec::new();
        let mut events = Vec::new();
        for read in reads {
            buf.extend_from_slice(read);
            loop {
                let d = dec.decode(&buf)?;
                let (consumed, event) = (d.consumed, d.event.map(owned));
                buf.drain(..consumed);
                match event {
                    Some(e) => events.push(e),
                    None => break,
                }
            }
        }
        assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
        Ok(events)
    }

    fn decode_all(stream: &[u8]) -> Result<Vec<Owned>, WsError> {
        run_reads(LIMITS, [stream])
    }

    /// The first event of a complete buffer, or the error.
    fn first(bytes: &[u8]) -> Result<Option<Owned>, WsError> {
        let mut dec = Decoder::new(LIMITS);
        Ok(dec.decode(bytes)?.event.map(owned))
    }

    #[test]
    fn header_length_forms_and_boundaries() {
        for (len, header_len) in [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (70000, 10)] {
            let text = "a".repeat(len);
            let f = frame(true, OP_TEXT, text.as_bytes());
            assert_eq!(f.len(), header_len + len);
            assert_eq!(f, ttext(&text, true), "hand-built and tungstenite agree at len {len}");
            let mut dec = Decoder::new(LIMITS);
            let d = dec.decode(&f).unwrap();
            assert_eq!(d, Decoded { consumed: f.len(), event: Some(Event::Text(&text)) });
            // One byte short: nothing consumed, nothing delivered.
            let d = dec.decode(&f[..f.len() - 1]).unwrap();
            assert_eq!(d, Decoded { consumed: 0, event: None });
        }
    }

    #[test]
    fn non_minimal_length_encoding_is_accepted() {
        // RFC 6455 requires minimal encoding of the sender but not rejection by the receiver.
        let mut f = vec![0x81, 126, 0, 2];
        f.extend_from_slice(b"hi");
        assert_eq!(first(&f), Ok(Some(Owned::Text("hi".into()))));
        let mut f = vec![0x82, 127, 0, 0, 0, 0, 0, 0, 0, 1, 7];
        assert_eq!(first(&f), Ok(Some(Owned::Binary(vec![7]))));
        f.truncate(10);
        assert_eq!(first(&f), Ok(None));
    }

    #[test]
    fn unfragmented_text_is_zero_copy() {
        let f = frame(true, OP_TEXT, b"{\"stream\":\"btcusdt@trade\"}");
        let mut dec = Decoder::new(LIMITS);
        let Some(Event::Text(t)) = dec.decode(&f).unwrap().event else { panic!() };
        assert!(f.as_ptr_range().contains(&t.as_ptr()), "payload borrowed from the caller's buffer");
        assert_eq!(t.as_ptr(), f[2..].as_ptr());
    }

    #[test]
    fn masked_server_frame_is_refused() {
        let mut f = tframe(Frame::message(b"hi".to_vec(), OpCode::Data(Data::Text), true));
        f[1] |= 0x80;
        assert_eq!(first(&f[..2]), Err(WsError::MaskedFrame), "refused from the header");
        let mut masked = vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        assert_eq!(first(&masked), Err(WsError::MaskedFrame));
        masked[0] = 0x89;
        assert_eq!(first(&masked), Err(WsError::MaskedFrame));
    }

    #[test]
    fn reserved_bits_are_refused() {
        for (bit, bits) in [(0x40, 0b100), (0x20, 0b010), (0x10, 0b001), (0x70, 0b111)] {
            let mut f = frame(true, OP_TEXT, b"x");
            f[0] |= bit;
            assert_eq!(first(&f), Err(WsError::ReservedBits { bits }));
        }
    }

    #[test]
    fn unknown_opcodes_are_refused() {
        for opcode in (0x3..=0x7).chain(0xB..=0xF) {
            assert_eq!(first(&frame(true, opcode, b"")), Err(WsError::UnknownOpcode { opcode }));
        }
    }

    #[test]
    fn control_frame_over_125_is_refused_from_header() {
        for opcode in [OP_CLOSE, OP_PING, OP_PONG] {
            let f = frame(true, opcode, &[0; 126]);
            assert_eq!(first(&f[..2]), Err(WsError::ControlTooLong { opcode }));
            // 125 is allowed (for a close: a valid code and a 123-byte reason).
            let mut payload = [b'a'; 125];
            payload[..2].copy_from_slice(&1000u16.to_be_bytes());
            let ok = frame(true, opcode, &payload);
            assert!(first(&ok).unwrap().is_some(), "opcode {opcode:#x}");
        }
    }

    #[test]
    fn fragmented_control_frame_is_refused() {
        for opcode in [OP_CLOSE, OP_PING, OP_PONG] {
            let f = frame(false, opcode, b"x");
            assert_eq!(first(&f), Err(WsError::ControlFragmented { opcode }));
        }
    }

    #[test]
    fn continuation_without_start_is_refused() {
        assert_eq!(first(&frame(true, OP_CONTINUATION, b"x")), Err(WsError::UnexpectedContinuation));
        assert_eq!(first(&tcont(b"x", false)), Err(WsError::UnexpectedContinuation));
        // Also after a complete fragmented message.
        let mut s = ttext("a", false);
        s.extend(tcont(b"b", true));
        s.extend(tcont(b"c", true));
        assert_eq!(decode_all(&s), Err(WsError::UnexpectedContinuation));
    }

    #[test]
    fn new_data_frame_inside_fragmented_message_is_refused() {
        for opcode in [OP_TEXT, OP_BINARY] {
            let mut s = ttext("a", false);
            s.extend(frame(true, opcode, b"b"));
            assert_eq!(decode_all(&s), Err(WsError::InterleavedDataFrame { opcode }));
        }
    }

    #[test]
    fn invalid_utf8_text_is_refused() {
        assert_eq!(first(&frame(true, OP_TEXT, b"ok\xff")), Err(WsError::InvalidUtf8));
        // Overlong encoding and a lone surrogate.
        assert_eq!(first(&frame(true, OP_TEXT, b"\xc0\xaf")), Err(WsError::InvalidUtf8));
        assert_eq!(first(&frame(true, OP_TEXT, b"\xed\xa0\x80")), Err(WsError::InvalidUtf8));
        // Binary is not validated.
        assert_eq!(first(&frame(true, OP_BINARY, b"\xff")), Ok(Some(Owned::Binary(vec![0xff]))));
    }

    #[test]
    fn fragmented_text_is_validated_whole() {
        // "é" is C3 A9: split across two fragments it is valid only as a whole.
        let mut s = frame(false, OP_TEXT, b"caf\xc3");
        s.extend(frame(true, OP_CONTINUATION, b"\xa9!"));
        assert_eq!(decode_all(&s), Ok(vec![Owned::Text("café!".into())]));
        let mut s = frame(false, OP_TEXT, b"caf\xc3");
        s.extend(frame(true, OP_CONTINUATION, b"!"));
        assert_eq!(decode_all(&s), Err(WsError::InvalidUtf8));
        // A truncated code point at the very end of the message.
        let mut s = frame(false, OP_TEXT, b"ok");
        s.extend(frame(true, OP_CONTINUATION, b"\xc3"));
        assert_eq!(decode_all(&s), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn oversized_frame_is_refused_from_header_alone() {
        let limits = Limits { max_frame: 1000, max_message: 4000 };
        let mut dec = Decoder::new(limits);
        // Only the 4-byte header of a 1001-byte frame: no payload has arrived.
        let f = frame(true, OP_BINARY, &[0; 1001]);
        assert_eq!(dec.decode(&f[..4]), Err(WsError::FrameTooLarge { len: 1001, max: 1000 }));
        // A header declaring 2^62 bytes is refused without waiting for (or reserving) anything.
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        let mut dec = Decoder::new(limits);
        assert_eq!(dec.decode(&huge), Err(WsError::FrameTooLarge { len: 1 << 62, max: 1000 }));
        // The limit itself is allowed.
        let mut dec = Decoder::new(limits);
        let f = frame(true, OP_BINARY, &[0; 1000]);
        assert_eq!(dec.decode(&f).unwrap().consumed, f.len());
    }

    #[test]
    fn oversized_message_is_refused_from_header_alone() {
        let limits = Limits { max_frame: 1000, max_message: 2500 };
        let mut s = frame(false, OP_TEXT, &[b'a'; 1000]);
        s.extend(frame(false, OP_CONTINUATION, &[b'a'; 1000]));
        let exact = frame(true, OP_CONTINUATION, &[b'a'; 500]);
        let over = frame(true, OP_CONTINUATION, &[b'a'; 501]);
        let mut ok = s.clone();
        ok.extend(&exact);
        assert_eq!(run_reads(limits, [&ok[..]]).unwrap().len(), 1);
        // Only the header of the frame that would overflow the message.
        let mut bad = s.clone();
        bad.extend(&over[..4]);
        assert_eq!(run_reads(limits, [&bad[..]]), Err(WsError::MessageTooLarge { len: 2501, max: 2500 }));
        // A single frame under max_frame but over max_message.
        let limits = Limits { max_frame: 1000, max_message: 100 };
        assert_eq!(
            run_reads(limits, [&frame(true, OP_TEXT, &[b'a'; 101])[..2 + 2]]),
            Err(WsError::MessageTooLarge { len: 101, max: 100 })
        );
    }

    #[test]
    fn length_with_top_bit_is_refused() {
        let mut f = vec![0x82, 127];
        f.extend_from_slice(&(1u64 << 63 | 5).to_be_bytes());
        assert_eq!(first(&f), Err(WsError::LengthTopBit));
        // Incomplete 64-bit length: wait, do not guess.
        assert_eq!(first(&f[..9]), Ok(None));
    }

    #[test]
    fn close_frames() {
        let close = |code: u16, reason: &[u8]| {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(reason);
            frame(true, OP_CLOSE, &p)
        };
        assert_eq!(first(&frame(true, OP_CLOSE, b"")), Ok(Some(Owned::Close(None, String::new()))));
        assert_eq!(first(&frame(true, OP_CLOSE, b"\x03")), Err(WsError::CloseLengthOne));
        assert_eq!(first(&close(1000, b"bye")), Ok(Some(Owned::Close(Some(1000), "bye".into()))));
        assert_eq!(first(&close(1000, b"\xff")), Err(WsError::CloseReasonNotUtf8));
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
            assert_eq!(first(&close(code, b"")), Err(WsError::InvalidCloseCode { code }), "{code}");
        }
        for code in [1000, 1001, 1002, 1003, 1007, 1008, 1011, 1012, 1013, 1014, 3000, 4000, 4999] {
            assert_eq!(first(&close(code, b"")), Ok(Some(Owned::Close(Some(code), String::new()))));
        }
        // tungstenite's close frame decodes the same.
        let t = tframe(Frame::close(Some(CloseFrame { code: CloseCode::Away, reason: "maint".into() })));
        assert_eq!(first(&t), Ok(Some(Owned::Close(Some(1001), "maint".into()))));
    }

    #[test]
    fn nothing_may_follow_close() {
        let mut dec = Decoder::new(LIMITS);
        let mut s = frame(true, OP_CLOSE, &1000u16.to_be_bytes());
        let close_len = s.len();
        let d = dec.decode(&s).unwrap();
        assert_eq!(d.consumed, close_len);
        assert!(dec.is_closed());
        assert_eq!(dec.decode(&[]), Ok(Decoded { consumed: 0, event: None }));
        s.extend(frame(true, OP_TEXT, b"late"));
        assert_eq!(dec.decode(&s[close_len..]), Err(WsError::FrameAfterClose));
        // In one buffer: the close is delivered first, the error comes on the next call.
        let mut dec = Decoder::new(LIMITS);
        assert_eq!(dec.decode(&s).unwrap().consumed, close_len);
        assert_eq!(dec.decode(&s[close_len..]), Err(WsError::FrameAfterClose));
        dec.reset();
        assert_eq!(dec.decode(&s[close_len..]).unwrap().consumed, s.len() - close_len);
    }

    #[test]
    fn control_frames_inside_fragmented_message_are_delivered_at_once() {
        let mut s = ttext("{\"a\":", false);
        let first_len = s.len();
        s.extend(tframe(Frame::ping(b"p1".to_vec())));
        let ping_end = s.len();
        s.extend(tcont(b"1", false));
        s.extend(tframe(Frame::pong(b"p2".to_vec())));
        s.extend(tcont(b"}", true));
        let mut dec = Decoder::new(LIMITS);
        // The first fragment is absorbed and the ping returned in the same call.
        let d = dec.decode(&s).unwrap();
        assert_eq!(d, Decoded { consumed: ping_end, event: Some(Event::Ping(b"p1")) });
        assert!(dec.in_message());
        assert!(ping_end > first_len);
        assert_eq!(
            decode_all(&s),
            Ok(vec![Owned::Ping(b"p1".to_vec()), Owned::Pong(b"p2".to_vec()), Owned::Text("{\"a\":1}".into())])
        );
    }

    #[test]
    fn fragment_absorbed_without_event_is_still_consumed() {
        let mut s = ttext("abc", false);
        let frag_len = s.len();
        s.extend(&tcont(b"def", true)[..3]);
        let mut dec = Decoder::new(LIMITS);
        assert_eq!(dec.decode(&s), Ok(Decoded { consumed: frag_len, event: None }));
        let rest = tcont(b"def", true);
        let d = dec.decode(&rest).unwrap();
        assert_eq!(d, Decoded { consumed: rest.len(), event: Some(Event::Text("abcdef")) });
    }

    #[test]
    fn reassembly_buffer_is_reused_without_growing() {
        let limits = Limits { max_frame: 64, max_message: 256 };
        let mut dec = Decoder::new(limits);
        let cap = dec.reassembly.capacity();
        assert!(cap >= 256);
        for round in 0..3u8 {
            let mut s = frame(false, OP_BINARY, &[round; 64]);
            for _ in 0..2 {
                s.extend(frame(false, OP_CONTINUATION, &[round; 64]));
            }
            s.extend(frame(true, OP_CONTINUATION, &[round; 64]));
            let d = dec.decode(&s).unwrap();
            assert_eq!(d.event, Some(Event::Binary(&[round; 256])));
            assert_eq!(dec.reassembly.capacity(), cap);
        }
    }

    /// A stream mixing every frame shape, partly serialised by tungstenite.
    fn mixed_stream() -> (Vec<u8>, Vec<Owned>) {
        let big = "b".repeat(70_000); // 64-bit length
        let mid = "m".repeat(126); // smallest 16-bit length
        let mut s = Vec::new();
        s.extend(frame(true, OP_TEXT, b"{\"e\":\"trade\"}"));
        s.extend(ttext(&mid, true));
        s.extend(ttext(&big, true));
        s.extend(tframe(Frame::ping(b"hb-1".to_vec())));
        s.extend(ttext("{\"e\":\"depth", false));
        s.extend(tframe(Frame::ping(b"mid-message".to_vec())));
        s.extend(frame(false, OP_CONTINUATION, "Update\",\"s\":\"caf\u{e9}\u{20ac}".as_bytes()));
        s.extend(tcont(b"\"}", true));
        s.extend(frame(true, OP_PONG, b""));
        s.extend(tframe(Frame::message(vec![0, 1, 2, 255], OpCode::Data(Data::Binary), true)));
        s.extend(frame(true, OP_TEXT, b""));
        s.extend(tframe(Frame::close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() }))));
        let events = vec![
            Owned::Text("{\"e\":\"trade\"}".into()),
            Owned::Text(mid),
            Owned::Text(big),
            Owned::Ping(b"hb-1".to_vec()),
            Owned::Ping(b"mid-message".to_vec()),
            Owned::Text("{\"e\":\"depthUpdate\",\"s\":\"caf\u{e9}\u{20ac}\"}".into()),
            Owned::Pong(vec![]),
            Owned::Binary(vec![0, 1, 2, 255]),
            Owned::Text(String::new()),
            Owned::Close(Some(1000), "bye".into()),
        ];
        (s, events)
    }

    #[test]
    fn mixed_stream_in_one_read() {
        let (s, want) = mixed_stream();
        assert_eq!(decode_all(&s), Ok(want));
    }

    #[test]
    fn mixed_stream_split_into_two_reads_at_every_byte() {
        let (s, want) = mixed_stream();
        for k in 0..=s.len() {
            let got = run_reads(LIMITS, [&s[..k], &s[k..]]);
            assert_eq!(got.as_ref(), Ok(&want), "split at {k}");
        }
    }

    #[test]
    fn mixed_stream_one_byte_per_read() {
        let (s, want) = mixed_stream();
        assert_eq!(run_reads(LIMITS, s.chunks(1)), Ok(want));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any chunking of the stream (three random cut points) decodes to the same events.
        #[test]
        fn any_chunking_gives_the_same_events(cuts in proptest::collection::vec(any::<prop::sample::Index>(), 3)) {
            let (s, want) = mixed_stream();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(s.len() + 1)).collect();
            at.sort_unstable();
            let reads = [&s[..at[0]], &s[at[0]..at[1]], &s[at[1]..at[2]], &s[at[2]..]];
            prop_assert_eq!(run_reads(LIMITS, reads), Ok(want));
        }

        /// Arbitrary bytes, in arbitrary reads, never panic and never consume past the buffer.
        #[test]
        fn arbitrary_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512), split in any::<prop::sample::Index>()) {
            let limits = Limits { max_frame: 200, max_message: 300 };
            let mut dec = Decoder::new(limits);
            let k = split.index(data.len() + 1);
            let mut buf = Vec::new();
            'reads: for read in [&data[..k], &data[k..]] {
                buf.extend_from_slice(read);
                loop {
                    match dec.decode(&buf) {
                        Ok(d) => {
                            prop_assert!(d.consumed <= buf.len());
                            let more = d.event.is_some();
                            buf.drain(..d.consumed);
                            if !more { break; }
                        }
                        Err(_) => break 'reads,
                    }
                }
            }
        }
    }
}
