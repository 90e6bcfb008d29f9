//! The book: one symbol's L2 order book kept equal to the exchange's. Fixed-point numbers
//! ([`fixed`]), the array-backed price ladder (`ladder`), the official sync procedure around it
//! (`sync`, the [`OrderBook`]), the bookTicker audit (`audit`) and the
//! top-of-book figures (`top`).
//!
//! Pure and sans-IO: integers in, integers out, no clock, no I/O, no f64. It knows nothing of
//! JSON or sockets: levels arrive already parsed.

pub(crate) mod audit;
pub mod fixed;
pub(crate) mod ladder;
pub(crate) mod sync;
pub(crate) mod top;

pub use audit::{Audit, AuditCounters, Mismatch, PENDING_CAP};
pub use ladder::{
    Ladder, LadderConfig, LadderStats, Level, Side, MAX_OVERFLOW_CAP, MAX_WINDOW_TICKS, MIN_WINDOW_TICKS,
};
pub use sync::{
    auto_ladder, BookConfig, DiffOutcome, OrderBook, Procedure, SnapshotOutcome, SyncCounters, SyncPoint, SyncState,
    MAX_DROPPED_AFTER_SNAPSHOT,
};
pub use top::{Top, TopMetrics};
