//! tickfeed-bench: the end-to-end benchmark behind `cargo run --release -p tickfeed-bench --bin e2e`.
//!
//! The simulator (`tickfeed-sim`, in this process) replays the real BTCUSDT recording over TLS at a
//! fixed rate or as fast as the client reads, and three clients take turns on that feed, each in
//! its own process on a fresh simulator: the release `tickfeed` binary, a floor client that only
//! reads, decrypts, finds each frame's `"E":` and stamps it ([`floor`]), and the usual Rust
//! approach, tokio + tokio-tungstenite + `serde_json::Value` + a `BTreeMap` book ([`usual`]). The
//! harness ([`harness`]) runs them, and [`report`] turns the results into the markdown table and
//! the JSON file.
//!
//! This crate is not part of the tickfeed binary, and is not a load generator against anything
//! but the simulator on loopback.

#![warn(missing_docs)]

pub mod client;
pub mod floor;
pub mod harness;
pub mod report;
pub mod usual;
