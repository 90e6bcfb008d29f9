//! tickfeed-sim: a Binance spot market-data exchange simulator on loopback.
//!
//! This first layer is the oracle: fixed-point decimals, a seeded PRNG, the reference book with
//! its bounded history, per-symbol rules, and the deterministic synthetic market. It is
//! deliberately independent of the `tickfeed` crate: an oracle must not share code with what it
//! judges. Serving it over websocket/REST comes in the next layer.

pub mod book;
pub mod decimal;
#[allow(dead_code)]
mod event;
pub mod rng;
pub mod symbols;
#[allow(dead_code)]
mod synth;

pub use book::{Book, Level};
pub use symbols::SymbolSpec;
