//! tickfeed: a single-threaded, low-latency Binance market-data feed handler (spot, and USDⓈ-M
//! futures with `--venue usdm`).
//!
//! The layers, in the order bytes flow through them:
//!
//! ```text
//!  socket ─ net ─ ws ─┐                        ┌─ output ─ stdout, --stats, --dump-book
//!                     ├─ pipeline ─ binance ─ book
//!  file ── capture ───┘   (one frame in,        (sync engine, ladder, audit)
//!                          books updated, lines out)
//!           live: the event loop that owns connections;  cmd: the command drivers
//! ```
//!
//! - [`net`]: sockets, TLS (every rustls call), the receive clock, signals, reconnect backoff.
//! - [`ws`]: a sans-IO websocket client codec (handshake, frames, masking).
//! - [`binance`]: stream names and the envelope, the JSON decoders, REST client and weight gate, URLs.
//! - [`book`]: fixed point, the price ladder, the sync engine, the bookTicker audit, top-of-book figures.
//! - [`pipeline`]: one frame in, books updated, lines out: the path shared by live and replay.
//! - [`output`]: the `--output` line formats, the book dump, the stats JSON and histogram files.
//! - [`capture`]: the recording line format and layout, the recorder, the reader and replay.
//! - [`live`]: the live event loop (`tickfeed run`): connections, snapshots, timers.
//! - [`notice`]: what the layers below the drivers tell a person (gaps, resyncs, mismatches, ...),
//!   as values the drivers write through one rate-limited log.
//! - [`wire`]: the fan-out record set (books and trades as fixed-layout binary records) and the
//!   replica that rebuilds books from them.
//! - [`publish`]: the fan-out drivers (iceoryx2 on this host, NATS across machines) that carry
//!   the [`wire`] records.
//! - [`metrics`]: `--metrics`, Prometheus / OpenMetrics text from a helper thread.
//! - [`venue`]: Binance spot or USDⓈ-M futures (`--venue`): hosts, REST paths and weights, stream
//!   tiers, the book procedure.
//! - [`cmd`]: the command drivers (`run`, `replay`, `demo`, `sim`), the only code that prints.
//!
//! Everything between "a complete websocket text payload" and "a line in the output buffer" is
//! sans-IO: pure functions of bytes and a caller-supplied time, driven identically by the live
//! event loop, by replay, by the tests and by the benches.

#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

pub mod binance;
pub mod book;
pub mod capture;
pub mod cmd;
pub mod live;
pub mod metrics;
pub mod net;
pub mod notice;
pub mod output;
pub mod pipeline;
pub mod publish;
pub mod venue;
pub mod wire;
pub mod ws;

#[cfg(test)]
mod bounds_doc;
