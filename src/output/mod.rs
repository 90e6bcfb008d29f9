//! Output: the `--output` line formats written into one reusable buffer ([`lines`]), the
//! `--dump-book` file ([`dump`]), and the run's counters, histograms and their `--stats` JSON and
//! `--hist` files ([`stats`]).
//!
//! Formatting only: these build bytes and strings; the command drivers write them.

pub mod dump;
pub mod lines;
pub mod stats;

pub use lines::{BookLine, Output, OutputMode};
