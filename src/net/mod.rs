//! The network layer of the live handler: everything that touches a socket, a TLS session, the
//! wall clock or a signal, kept out of the sans-IO core.
//!
//! - `tls`: every rustls call: client config (webpki roots + `--ca-file`), the websocket's TLS
//!   session over mio, and ureq's TLS layer for REST.
//! - `record`: tickfeed's own TLS record layer for the websocket after rustls' handshake
//!   (in-place decryption, no allocation; docs/tls.md).
//! - `conn`: one websocket connection over a non-blocking mio socket.
//! - `backoff`: reconnect delays (exponential, jittered, capped).
//! - `clock`: wall-clock receive times from one monotonic read.
//! - `signal`: SIGINT/SIGTERM as a polled flag.
//! - `cpu`: the warnings for a `--core` that is not isolated or has a busy hyperthread sibling.

pub(crate) mod backoff;
pub(crate) mod clock;
pub(crate) mod conn;
pub(crate) mod cpu;
pub mod record;
pub(crate) mod signal;
pub(crate) mod tls;
pub mod tsc;

pub use record::{Opened, RecordError, RecordLayer};
pub use tls::{TlsConfigError, TlsError, TlsSetup};
