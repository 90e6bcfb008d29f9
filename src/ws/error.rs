//! The websocket layer's one error type, [`WsError`], and the handshake refusal it can carry.
//!
//! Every variant is a value for a log line and a reconnect decision; none is built on the frame hot
//! path except as the (cold) return of a protocol violation, and only handshake errors own heap
//! text (the handshake runs once per connection). This module is not a place for I/O errors: the
//! codec never touches a socket, so the event loop wraps socket errors in its own layer's error.

use std::fmt;

/// Why the websocket layer refused a request, a response, a frame or a send.
///
/// Each variant says whether it is **fatal to the connection** (the caller must drop the socket and
/// reconnect with a fresh or [`reset`](crate::ws::Decoder::reset) codec) or not. [`WsError::is_fatal`]
/// answers the same question in code.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    // ---- Building the upgrade request ----
    /// The host or path passed to [`Handshake::write_request`](crate::ws::Handshake::write_request)
    /// cannot go in an HTTP/1.1 request (a space, control or non-ASCII byte, or a path not starting
    /// with `/`). `field` is `"host"` or `"path"`. Not fatal: nothing was written; it is a
    /// configuration error, so retrying the same endpoint will fail the same way.
    InvalidRequest {
        /// Which input was refused.
        field: &'static str,
    },

    // ---- The server's upgrade response: all fatal ----
    /// The response header grew past `limit` bytes without ending. Fatal.
    HandshakeTooLarge {
        /// The bound on the header, in bytes.
        limit: usize,
    },
    /// The response's status line or a header line is not HTTP/1.x. Fatal. `line` is a bounded,
    /// printable copy of the offending line.
    HandshakeMalformed {
        /// The offending line, truncated and with control characters replaced.
        line: Box<str>,
    },
    /// The server answered with a status other than 101 Switching Protocols (a 404 for a bad path,
    /// a 429 or 418 rate-limit ban, a 5xx...). Fatal; look at [`Refusal::status`] before retrying
    /// (back off on 429/418). Boxed to keep `WsError` small on the frame path.
    HandshakeRefused(Box<Refusal>),
    /// Status 101 but no `Upgrade: websocket` header. Fatal.
    HandshakeNoUpgrade,
    /// Status 101 but no `upgrade` token in a `Connection` header. Fatal.
    HandshakeNoConnectionUpgrade,
    /// Status 101 but no `Sec-WebSocket-Accept` header. Fatal.
    HandshakeMissingAccept,
    /// `Sec-WebSocket-Accept` is not the digest of our key: the response is not for our request
    /// (a confused proxy or cache). Fatal.
    HandshakeWrongAccept,
    /// The server selected an extension or subprotocol we never offered (`header` names it); with
    /// `permessage-deflate` every later frame would be compressed and unreadable. Fatal.
    HandshakeUnrequested {
        /// The response header that should not be there.
        header: &'static str,
    },
    /// The connection ended before the response header was complete. Fatal.
    HandshakeEof,

    // ---- Frames from the server (RFC 6455 section 5): all fatal ----
    /// The server masked a frame; RFC 6455 5.1 requires the client to fail the connection. Fatal.
    MaskedFrame,
    /// A reserved bit (RSV1-3, here `bits` = the three bits as 0b123) is set but no extension was
    /// negotiated. Fatal.
    ReservedBits {
        /// RSV1 RSV2 RSV3 as the low three bits.
        bits: u8,
    },
    /// An opcode RFC 6455 reserves (0x3-0x7, 0xB-0xF). Fatal.
    UnknownOpcode {
        /// The 4-bit opcode.
        opcode: u8,
    },
    /// A close, ping or pong declaring more than 125 payload bytes. Fatal.
    ControlTooLong {
        /// The control opcode (0x8, 0x9 or 0xA).
        opcode: u8,
    },
    /// A close, ping or pong without FIN: control frames cannot be fragmented. Fatal.
    ControlFragmented {
        /// The control opcode (0x8, 0x9 or 0xA).
        opcode: u8,
    },
    /// A continuation frame with no fragmented message open. Fatal.
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open. Fatal.
    InterleavedDataFrame {
        /// The data opcode (0x1 or 0x2).
        opcode: u8,
    },
    /// A text message (the whole of it, when fragmented) is not valid UTF-8. Fatal.
    InvalidUtf8,
    /// A frame header declares `len` payload bytes, over the configured `max`. Refused from the
    /// header alone, before any payload is buffered. Fatal.
    FrameTooLarge {
        /// The declared payload length.
        len: u64,
        /// The configured frame limit.
        max: usize,
    },
    /// A message would reach `len` bytes (fragments so far plus this frame's declared length), over
    /// the configured `max`. Refused from the header alone. Fatal.
    MessageTooLarge {
        /// The message length this frame would bring.
        len: u64,
        /// The configured message limit.
        max: usize,
    },
    /// A 64-bit payload length with its most significant bit set, which RFC 6455 5.2 forbids. Fatal.
    LengthTopBit,
    /// A close frame with a 1-byte payload: a status code needs two. Fatal.
    CloseLengthOne,
    /// A close frame's status code is not one a peer may send (below 1000, 1004-1006, 1015-2999,
    /// 5000 and above). Fatal.
    InvalidCloseCode {
        /// The code as received.
        code: u16,
    },
    /// A close frame's reason is not UTF-8. Fatal.
    CloseReasonNotUtf8,
    /// Bytes arrived after the server's close frame. Fatal.
    FrameAfterClose,

    // ---- Sending: caller errors, nothing was written ----
    /// A ping or pong payload over 125 bytes, or a close reason over 123. Not fatal: nothing was
    /// written.
    ControlPayloadTooLong {
        /// The payload length that was refused (including the 2-byte code for a close).
        len: usize,
    },
    /// [`Encoder::close`](crate::ws::Encoder::close) was given a code an endpoint may not send
    /// (1005, 1006, 1015 are reserved for reporting; see [`WsError::InvalidCloseCode`]). Not fatal:
    /// nothing was written.
    CloseCodeNotSendable {
        /// The refused code.
        code: u16,
    },
    /// A frame was to be sent after our close frame; RFC 6455 5.5.1 forbids it. Not fatal in itself
    /// (nothing was written), but the connection is already closing.
    SendAfterClose,
}

impl WsError {
    /// Whether the connection must be dropped (and the codec reset) after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            WsError::InvalidRequest { .. }
                | WsError::ControlPayloadTooLong { .. }
                | WsError::CloseCodeNotSendable { .. }
                | WsError::SendAfterClose
        )
    }
}

/// A non-101 answer to the upgrade request, kept for the log line and the backoff decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status code (404, 429, 418, 503...).
    pub status: u16,
    /// The status line as received, e.g. `HTTP/1.1 404 Not Found`, control characters replaced.
    pub status_line: Box<str>,
    /// A bounded prefix of the body (at most [`MAX_BODY_PREFIX`](crate::ws::MAX_BODY_PREFIX)
    /// bytes, lossily decoded, control characters replaced); empty if none had arrived.
    pub body: Box<str>,
    /// `Retry-After` in seconds, when the refusal carried one in delta-seconds form (Binance
    /// sends it with 429 and 418: the wait that avoids, or outlasts, a ban).
    pub retry_after: Option<u64>,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WsError::*;
        const PV: &str = "websocket protocol violation:";
        match self {
            InvalidRequest { field } => {
                write!(f, "websocket request: invalid {field} (space, control or non-ASCII byte)")
            }
            HandshakeTooLarge { limit } => {
                write!(f, "websocket handshake: response header over {limit} bytes")
            }
            HandshakeMalformed { line } => {
                write!(f, "websocket handshake: malformed response line: {line}")
            }
            HandshakeRefused(r) => {
                write!(f, "websocket handshake refused: {}", r.status_line)?;
                if !r.body.is_empty() {
                    write!(f, ": {}", r.body)?;
                }
                Ok(())
            }
            HandshakeNoUpgrade => f.write_str("websocket handshake: 101 without Upgrade: websocket"),
            HandshakeNoConnectionUpgrade => f.write_str("websocket handshake: 101 without Connection: upgrade"),
            HandshakeMissingAccept => f.write_str("websocket handshake: 101 without Sec-WebSocket-Accept"),
            HandshakeWrongAccept => f.write_str("websocket handshake: Sec-WebSocket-Accept does not match our key"),
            HandshakeUnrequested { header } => {
                write!(f, "websocket handshake: server sent {header} we did not request")
            }
            HandshakeEof => f.write_str("websocket handshake: connection closed mid-response"),
            MaskedFrame => write!(f, "{PV} masked frame from server"),
            ReservedBits { bits } => write!(f, "{PV} reserved bits {bits:#05b} set"),
            UnknownOpcode { opcode } => write!(f, "{PV} unknown opcode {opcode:#x}"),
            ControlTooLong { opcode } => {
                write!(f, "{PV} control frame (opcode {opcode:#x}) over 125 bytes")
            }
            ControlFragmented { opcode } => {
                write!(f, "{PV} fragmented control frame (opcode {opcode:#x})")
            }
            UnexpectedContinuation => write!(f, "{PV} continuation frame without a message start"),
            InterleavedDataFrame { opcode } => {
                write!(f, "{PV} new data frame (opcode {opcode:#x}) inside a fragmented message")
            }
            InvalidUtf8 => write!(f, "{PV} text message is not valid UTF-8"),
            FrameTooLarge { len, max } => {
                write!(f, "{PV} frame of {len} bytes over the {max}-byte limit")
            }
            MessageTooLarge { len, max } => {
                write!(f, "{PV} message of {len} bytes over the {max}-byte limit")
            }
            LengthTopBit => write!(f, "{PV} 64-bit payload length with the top bit set"),
            CloseLengthOne => write!(f, "{PV} close frame with a 1-byte payload"),
            InvalidCloseCode { code } => write!(f, "{PV} invalid close code {code}"),
            CloseReasonNotUtf8 => write!(f, "{PV} close reason is not valid UTF-8"),
            FrameAfterClose => write!(f, "{PV} data after the close frame"),
            ControlPayloadTooLong { len } => {
                write!(f, "websocket send: control payload of {len} bytes over 125")
            }
            CloseCodeNotSendable { code } => {
                write!(f, "websocket send: close code {code} may not be sent")
            }
            SendAfterClose => f.write_str("websocket send: frame after our close frame"),
        }
    }
}

impl std::error::Error for WsError {}
