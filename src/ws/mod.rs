//! A sans-IO websocket client codec (RFC 6455, client side): the opening handshake, server frames
//! decoded into borrowed events, masked client frames encoded into a caller-owned buffer.
//!
//! Nothing here owns a socket, reads a clock or draws from an entropy source: bytes go in, events
//! and bytes come out, so the live event loop, replay and tests drive it identically. The three
//! parts are independent values the connection owns:
//!
//! - [`Handshake`]: writes the `GET` upgrade request, parses the response incrementally.
//! - [`Decoder`]: the server-to-client direction. Unfragmented frames (the hot path) are delivered
//!   as slices of the caller's read buffer, without copying or allocating; fragments are
//!   reassembled into memory reserved once. Protocol violations are [`WsError`]s, never panics.
//! - [`Encoder`]: the client-to-server direction. Masks every frame with a key from a PRNG seeded
//!   once, and answers pings and closes ([`Encoder::reply_to`]).
//!
//! The read and write halves are separate so an [`Event`] (which borrows the decoder) can be
//! answered through the encoder while still held. Not supported, by design: extensions
//! (`permessage-deflate`), subprotocols, server role, sending fragmented messages.
//!
//! A connection, in outline:
//!
//! ```
//! use tickfeed::ws::{Decoder, Encoder, Endpoint, Event, Handshake, HandshakeStatus, Limits};
//! # fn main() -> Result<(), tickfeed::ws::WsError> {
//! let mut hs = Handshake::new([7; 16]); // 16 random bytes from the caller
//! let mut out = Vec::new();
//! hs.write_request(&Endpoint { host: "stream.binance.com", port: 9443, tls: true, path: "/ws" }, &mut out)?;
//! // ... send `out`; append what the socket returns to `rbuf` ...
//! # let accept = tungstenite::handshake::derive_accept_key(hs.key().as_bytes());
//! # let mut rbuf = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
//! #     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").into_bytes();
//! # rbuf.extend_from_slice(&[0x89, 0x02, b'h', b'b']);
//! match hs.parse_response(&rbuf)? {
//!     HandshakeStatus::NeedMore => { /* read more */ }
//!     HandshakeStatus::Done { consumed } => { rbuf.drain(..consumed); }
//! }
//! let (mut dec, mut enc) = (Decoder::new(Limits::default()), Encoder::new(0x9e37_79b9));
//! out.clear();
//! loop {
//!     let d = dec.decode(&rbuf)?;
//!     let Some(event) = d.event else { rbuf.drain(..d.consumed); break }; // read more
//!     enc.reply_to(&event, &mut out)?; // pong a ping, answer a close
//!     if let Event::Text(json) = event { /* parse it */ }
//!     rbuf.drain(..d.consumed);
//! }
//! assert_eq!(out.len(), 2 + 4 + 2); // the masked pong
//! # Ok(()) }
//! ```

mod decode;
mod encode;
mod error;
mod handshake;

pub use decode::{Decoded, Decoder, Event, Limits, MAX_SERVER_HEADER};
pub use encode::Encoder;
pub use error::{Refusal, WsError};
pub use handshake::{Endpoint, Handshake, HandshakeStatus, MAX_BODY_PREFIX, MAX_RESPONSE_HEADER};
