//! `tickfeed-plot`: the latency plot of tickfeed's `--hist` files.
//!
//! `hist` reads HdrHistogram's percentile-distribution text (what `tickfeed run --hist FILE`
//! writes); `draw` turns one or more of them into the classic percentile plot as SVG. It lives in
//! its own workspace member so that the plotting crate is never linked into the handler.

#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod draw;
pub mod hist;
