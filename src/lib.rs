//! tickfeed: a single-threaded, low-latency Binance spot market-data feed handler.
//!
//! The crate is layered so that everything between "a complete websocket text payload" and "a line
//! on stdout" is sans-IO: pure functions of bytes and a caller-supplied time, driven identically by
//! the live event loop and by `tickfeed replay`.
//!
//! - [`fixed`]: decimal strings to integer units and ticks, and back.
//! - [`ladder`]: the array-backed price ladder (one per symbol).
//! - [`decode`]: sonic-rs decoding of combined-stream frames and REST bodies, borrowing the input.
//! - [`audit`]: bookTicker vs. book at equal update ids, online.
//! - [`sync`]: the official Binance local-book procedure (buffer, snapshot, align, gap, resync).
//! - [`metrics`]: top-of-book figures (spread, mid, microprice, imbalance) in integer arithmetic.
//! - [`output`]: the `--output` line formats, written into a reusable buffer.
//! - [`stats`]: counters and latency histograms, and the `--stats` JSON.
//! - [`pipeline`]: one frame in, books updated, lines out: the path shared by live and replay.
//! - [`replay`]: reading recordings (`<recv ns> <raw json>` lines, plain or gzip).
//! - [`ws`]: a sans-IO websocket client codec (handshake, frames, masking).

pub mod audit;
pub mod cli;
pub mod decode;
pub mod fixed;
pub mod ladder;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod record;
pub mod replay;
pub mod stats;
pub mod sync;
pub mod ws;
