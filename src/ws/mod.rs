//! A sans-IO websocket client codec (RFC 6455, client side). So far: the opening handshake and the
//! layer's error type; frame decoding and encoding come next.
//!
//! Nothing here owns a socket, reads a clock or draws from an entropy source: bytes go in, bytes
//! and results come out, so the live event loop and tests drive it identically.

mod error;
mod handshake;

pub use error::{Refusal, WsError};
pub use handshake::{Endpoint, Handshake, HandshakeStatus, MAX_BODY_PREFIX, MAX_RESPONSE_HEADER};
