//! The book: one symbol's L2 order book kept equal to the exchange's. Fixed-point numbers
//! ([`fixed`]), the array-backed price ladder ([`ladder`]), the official sync procedure around it
//! ([`sync`], the [`OrderBook`](sync::OrderBook)), the bookTicker audit ([`audit`]) and the
//! top-of-book figures ([`top`]).
//!
//! Pure and sans-IO: integers in, integers out, no clock, no I/O, no f64. It knows nothing of
//! JSON or sockets: levels arrive already parsed.

pub mod audit;
pub mod fixed;
pub mod ladder;
pub mod sync;
pub mod top;
