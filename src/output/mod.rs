//! Output: the `--output` line formats written into one reusable buffer (`lines`), the
//! `--dump-book` file (`dump`), and the run's counters, histograms and their `--stats` JSON and
//! `--hist` files (`stats`).
//!
//! Formatting only: these build bytes and strings; the command drivers write them.

pub(crate) mod dump;
mod lines;
pub(crate) mod stats;

pub(crate) use lines::BookLine;
pub use lines::{Output, OutputMode, UnknownOutputMode};
pub use stats::{
    percentile_distribution, stats_json, Stage, Stages, Stats, SymbolSummary, LATENCY_MAX_US, PROCESS_MAX_NS,
    STAGE_MAX_NS,
};
